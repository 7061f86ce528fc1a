"""``python -m meseta.examples.mapreduce INPUT... --output DIR --master HOST:PORT``."""

from meseta.examples.mapreduce.cli import main

main()
