"""The pure parts of the job scheduler import in an interpreter that has no I/O libraries.

import-linter forbids the imports statically (pyproject.toml, "Jobs schedule and spec are pure");
this checks the running truth: each module imports in a fresh interpreter where kazoo, httpx,
starlette, sqlite3, uvicorn and asyncio cannot be imported (``sys.modules[name] = None``).
"""

from __future__ import annotations

import subprocess
import sys

BLOCKED = ("kazoo", "httpx", "starlette", "sqlite3", "_sqlite3", "uvicorn", "asyncio")
PURE = ("meseta.jobs.wall_clock", "meseta.jobs.cron", "meseta.jobs.schedule", "meseta.jobs.job_fields",
        "meseta.jobs.spec")


def import_without_io(*modules: str) -> subprocess.CompletedProcess[str]:
    script = "\n".join([
        "import importlib, sys",
        f"for name in {BLOCKED!r}:",
        "    sys.modules[name] = None",
        f"for module in {modules!r}:",
        "    importlib.import_module(module)",
    ])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_every_pure_jobs_module_imports_without_io_libraries() -> None:
    result = import_without_io(*PURE)
    assert result.returncode == 0, result.stderr


def test_the_check_can_fail() -> None:
    assert import_without_io("httpx").returncode != 0
