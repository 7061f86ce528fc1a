"""Finished sandboxes are deleted once older than the disk allows, and kept until then."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from meseta.agent.gc import max_age
from meseta.runtime.serve import free_port
from meseta.testing.clusters import FAST_ALLOCATION, start_daemon, wait_for_agents
from meseta.testing.processes import stop_processes
from meseta.testing.pymesos_recorder import Recorder, start_driver, task
from meseta.testing.waiting import wait_until

pytestmark = pytest.mark.integration


def _sandboxes(work_dir: Path, task_id: str) -> list[Path]:
    return list(work_dir.glob(f"slaves/*/frameworks/*/executors/{task_id}/runs/*-*"))


def test_sandboxes_go_after_the_gc_delay_and_not_before(tmp_path: Path) -> None:
    port = free_port()
    master = f"127.0.0.1:{port}"
    procs = [start_daemon(["master", "--port", str(port), "--work-dir", str(tmp_path / "master"), *FAST_ALLOCATION],
                          tmp_path / "master.log")]
    for name, delay in (("short", "1"), ("long", "3600")):
        procs.append(start_daemon(["agent", "--master", master, "--port", str(free_port()), "--work-dir",
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
        wait_until(lambda: not _sandboxes(tmp_path / "short", "short"), 10, "the 1 s sandbox to go")
        disk = shutil.disk_usage(tmp_path)
        if max_age(3600, 0.1, disk.used / disk.total) > 10:  # a nearly full disk may take it at once
            time.sleep(1.0)  # five disk checks
            assert _sandboxes(tmp_path / "long", "long"), "the 1 h sandbox should still be there"
    finally:
        if driver is not None:
            driver.stop()
            driver.join()
        stop_processes(procs)
