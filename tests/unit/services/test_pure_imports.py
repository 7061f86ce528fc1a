"""The pure parts of the services scheduler import in an interpreter that has no I/O libraries.

import-linter forbids the imports statically (pyproject.toml, "Services ... is pure"); this checks
the running truth: each pure module imports in a fresh interpreter where kazoo, httpx, starlette,
sqlite3, uvicorn and asyncio cannot be imported (``sys.modules[name] = None`` makes ``import name`` fail).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

BLOCKED = ("kazoo", "httpx", "starlette", "sqlite3", "_sqlite3", "uvicorn", "asyncio")
PURE_PACKAGES = ("meseta.services.spec", "meseta.services.deploy", "meseta.services.launch")
PURE = (*PURE_PACKAGES, "meseta.services.machine", "meseta.services.effects", "meseta.services.codec",
        "meseta.services.model", "meseta.services.wire",
        *(f"{package}.{module.name}" for package in PURE_PACKAGES
          for module in pkgutil.iter_modules(importlib.import_module(package).__path__)))


def import_without_io(*modules: str) -> subprocess.CompletedProcess[str]:
    """Import ``modules`` in order in one fresh interpreter where BLOCKED cannot be imported."""
    script = "\n".join([
        "import importlib, sys",
        f"for name in {BLOCKED!r}:",
        "    sys.modules[name] = None",
        f"for module in {modules!r}:",
        "    print('importing', module, flush=True)",
        "    importlib.import_module(module)",
        f"loaded = sorted(n for n in sys.modules if n.split('.')[0] in {BLOCKED!r} and sys.modules[n] is not None)",
        "assert not loaded, loaded",
    ])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_every_pure_module_imports_without_io_libraries() -> None:
    result = import_without_io(*PURE)
    assert result.returncode == 0, result.stdout[-300:] + result.stderr


def test_a_shell_module_does_need_them() -> None:
    """The check can fail: the store imports kazoo and sqlite3."""
    result = import_without_io("meseta.runtime.kv_store")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr or "ImportError" in result.stderr
