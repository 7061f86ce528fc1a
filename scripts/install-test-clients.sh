#!/usr/bin/env bash
# Install the real third-party clients the tests drive (pymesos 0.3.15, marathon 0.13.0,
# chronos-python 1.2.1) into a venv.
# pymesos needs http-parser 0.9.0, whose shipped C file does not build on Python 3.11: we
# regenerate it with Cython 0.29 (in a throwaway venv) and build it without isolation.
set -euo pipefail
PY=${1:-.venv/bin/python}
install_marathon() {
  # marathon 0.13.0 uses collections.Iterable (moved to collections.abc in 3.10): a .pth shim
  # aliases the old names at interpreter start, the one change the client needs (spec clients.md).
  "$PY" -c 'import marathon' 2>/dev/null || "$PY" -m pip install -q marathon==0.13.0
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo 'import collections.abc; (lambda c: [setattr(c, n, getattr(c.abc, n)) for n in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable") if not hasattr(c, n)])(__import__("collections"))' \
    > "$site/meseta-collections-shim.pth"
}
install_marathon
"$PY" -c 'import chronos' 2>/dev/null || "$PY" -m pip install -q chronos-python==1.2.1
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
