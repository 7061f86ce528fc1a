#!/usr/bin/env bash
# Install the real third-party clients the tests drive (pymesos 0.3.15) into a venv.
# pymesos needs http-parser 0.9.0, whose shipped C file does not build on Python 3.11: we
# regenerate it with Cython 0.29 (in a throwaway venv) and build it without isolation.
set -euo pipefail
PY=${1:-.venv/bin/python}
if "$PY" -c 'import pymesos, http_parser.parser' 2>/dev/null; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip install -q wheel setuptools
python3 -m venv "$tmp/cython"
"$tmp/cython/bin/pip" install -q Cython==0.29.37
"$PY" -m pip download -q --no-deps --no-binary :all: -d "$tmp" http-parser==0.9.0
tar -xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
src="$tmp/http-parser-0.9.0"
rm -f "$src"/http_parser/*.so
(cd "$src/http_parser" && "$tmp/cython/bin/cython" parser.pyx -o parser.c 2>/dev/null)
"$PY" -m pip install -q --no-build-isolation "$src"
"$PY" -m pip install -q pymesos==0.3.15
"$PY" -c 'import pymesos, http_parser.parser'
