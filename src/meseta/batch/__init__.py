"""Batch work from a shell: `meseta submit` runs a command (or N of them) on the cluster and waits."""
