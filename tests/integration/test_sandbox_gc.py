"""Finished sandboxes are deleted once older than the disk allows, and kept until then."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from meseta.agent.gc import max_age
from meseta.runtime.serve import free_port

from .conftest import _stop, wait_for_agents
from .test_allocation_e2e import _proc
from .test_pymesos import Recorder, start_driver, task

pytestmark = pytest.mark.integration


def _sandboxes(work_dir: Path, task_id: str) -> list[Path]:
    return list(work_dir.glob(f"slaves/*/frameworks/*/executors/{task_id}/runs/*-*"))


def test_sandboxes_go_after_the_gc_delay_and_not_before(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [_proc(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"),
                    "--allocation-interval", "0.2"], tmp_path / "master.log")]
    for name, delay in (("short", "1"), ("long", "3600")):
        procs.append(_proc(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
                            str(tmp_path / name), "--no-switch-user", "--resources", "cpus:1;mem:256;disk:64",
                            "--attributes", f"gc:{name}", "--gc-delay", delay, "--disk-watch-interval", "0.2"],
                           tmp_path / f"{name}.log"))
    recorder, driver = Recorder(), None
    try:
        wait_for_agents(master, 2)
        driver = start_driver(master, recorder)
        offers = recorder.take_offers()
        while len(offers) < 2:
            offers += recorder.take_offers()
        for offer in offers:
            which = next(a["text"]["value"] for a in offer["attributes"] if a["name"] == "gc")
            driver.launchTasks(offer["id"], [task(which, offer, command={"value": "echo done"})])
        for which in ("short", "long"):
            recorder.wait(lambda w=which: "TASK_FINISHED" in recorder.states(w), 20, f"{which} finished")  # type: ignore[misc]
        deadline = time.monotonic() + 10
        while _sandboxes(tmp_path / "short", "short") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _sandboxes(tmp_path / "short", "short"), "the 1 s sandbox should be gone"
        disk = shutil.disk_usage(tmp_path)
        if max_age(3600, 0.1, disk.used / disk.total) > 10:  # a nearly full disk may take it at once
            time.sleep(1.0)  # five disk checks
            assert _sandboxes(tmp_path / "long", "long"), "the 1 h sandbox should still be there"
    finally:
        if driver is not None:
            driver.stop()
            driver.join()
        _stop(procs)
