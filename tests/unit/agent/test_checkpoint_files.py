"""The agent's checkpoint files on a real file system: a framework's framework.info is written once
for all its runs (again when it changes), and a restarted agent still finds every run under it."""

from __future__ import annotations

from pathlib import Path

from meseta.agent import checkpoint, paths

AGENT = "agent-1"


def framework(name: str = "f") -> dict[str, object]:
    return {"id": {"value": "fw-1"}, "user": "", "name": name, "checkpoint": True}


def run_dir(work_dir: Path, executor: str) -> Path:
    return paths.meta_run_dir(work_dir, AGENT, "fw-1", executor, f"c-{executor}")


def test_framework_info_is_written_once_for_every_run_and_again_when_it_changes(tmp_path: Path) -> None:
    files = checkpoint.FrameworkFiles(tmp_path)
    info_file = paths.meta_frameworks_dir(tmp_path, AGENT) / "fw-1" / "framework.info"
    for executor in ("e1", "e2", "e3"):
        files.save(AGENT, framework())
        if executor == "e1":
            first = info_file.stat().st_ino  # each write is a new file renamed in place
        checkpoint.save_run({"kind": "COMMAND", "executor_info": {"executor_id": {"value": executor}}},
                            run_dir(tmp_path, executor))
    assert info_file.stat().st_ino == first
    files.save(AGENT, framework("renamed"))
    assert info_file.stat().st_ino != first and b'"renamed"' in info_file.read_bytes()

    again = checkpoint.FrameworkFiles(tmp_path)  # a restarted agent process writes it once more
    again.save(AGENT, framework("renamed"))
    runs = checkpoint.load_runs(tmp_path, AGENT)
    assert sorted(r.info["executor_info"]["executor_id"]["value"] for r in runs) == ["e1", "e2", "e3"]
    assert {r.framework_info["name"] for r in runs} == {"renamed"}
