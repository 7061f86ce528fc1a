"""The pure parts of the services scheduler import in an interpreter that has no I/O libraries.

import-linter forbids the imports statically (pyproject.toml, "Services ... is pure"); this checks
the running truth: each pure module imports in a fresh interpreter where kazoo, httpx, starlette,
sqlite3 and uvicorn cannot be imported (``sys.modules[name] = None`` makes ``import name`` fail).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCKED = ("kazoo", "httpx", "starlette", "sqlite3", "_sqlite3", "uvicorn", "asyncio")
PURE = ("meseta.services.machine", "meseta.services.effects", "meseta.services.codec", "meseta.services.model",
        "meseta.services.wire", "meseta.services.spec.app_definition", "meseta.services.spec.group_definitions",
        "meseta.services.deploy.deployments", "meseta.services.deploy.readiness",
        "meseta.services.deploy.group_versions",
        "meseta.services.launch.offer_handling", "meseta.services.launch.launch_stats")


def import_without_io(module: str) -> subprocess.CompletedProcess[str]:
    script = "\n".join([
        "import sys",
        f"for name in {BLOCKED!r}:",
        "    sys.modules[name] = None",
        f"import {module}",
        f"loaded = sorted(n for n in sys.modules if n.split('.')[0] in {BLOCKED!r} and sys.modules[n] is not None)",
        "assert not loaded, loaded",
    ])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_without_io_libraries(module: str) -> None:
    result = import_without_io(module)
    assert result.returncode == 0, result.stderr


def test_a_shell_module_does_need_them() -> None:
    """The check can fail: the store imports kazoo and sqlite3."""
    result = import_without_io("meseta.services.shell.store")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr or "ImportError" in result.stderr
