"""The fetcher end to end: a pymesos framework's tasks fetch from a loopback HTTP server, with
extraction, an executable, the cache (one download for two tasks) and a failing URI."""

from __future__ import annotations

import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meseta.testing.clusters import master_and_agent
from meseta.testing.pymesos_recorder import Recorder, driver_for, task

pytestmark = pytest.mark.integration


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        script = b"echo extracted-and-run\n"
        info = tarfile.TarInfo("app/hello.sh")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    (root / "app.tar.gz").write_bytes(archive.getvalue())
    (root / "tool").write_text("#!/bin/sh\necho tool-ran\n")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()



def test_fetch_extract_execute_cache_and_fail(tmp_path: Path, files: tuple[str, list[str]]) -> None:
    base, requests = files
    recorder = Recorder()
    with master_and_agent(tmp_path, "--resources", "cpus:4;mem:1024;disk:256") as (master, _), \
            driver_for(master, recorder) as driver:

        def run(task_id: str, command: str, uris: list[dict[str, Any]]) -> dict[str, Any]:
            offer = recorder.take_offers()[0]
            driver.launchTasks(offer["id"], [task(task_id, offer, command={"value": command, "uris": uris})],
                               filters={"refuse_seconds": 0})
            return recorder.final(task_id)

        archive = {"value": f"{base}/app.tar.gz", "cache": True}
        check = 'test "$(sh app/hello.sh)" = extracted-and-run'
        assert run("first", check, [archive])["state"] == "TASK_FINISHED"
        assert run("second", check, [archive])["state"] == "TASK_FINISHED"
        assert requests.count("/app.tar.gz") == 1  # the second task was served from the cache
        tool = {"value": f"{base}/tool", "executable": True, "output_file": "mytool"}
        assert run("tool", 'test "$(./mytool)" = tool-ran', [tool])["state"] == "TASK_FINISHED"
        failed = run("missing", "true", [{"value": f"{base}/nothing-here.tar.gz"}])
        assert failed["state"] == "TASK_FAILED" and failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "nothing-here.tar.gz" in failed["message"] and "404" in failed["message"]
