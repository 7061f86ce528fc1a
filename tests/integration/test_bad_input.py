"""Bad input at the scheduler API gets the status or event the spec gives, and disturbs nothing else.

A pymesos framework keeps a real task running throughout; a raw HTTP framework sends the bad calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from meseta.testing.pymesos_recorder import Recorder, launch_running, start_driver
from meseta.testing.raw_framework import JSON, RawFramework


@pytest.mark.integration
def test_bad_input_is_rejected_and_disturbs_nothing(separate_processes: str) -> None:
    master = separate_processes
    bystander = Recorder()
    driver = start_driver(master, bystander)
    try:
        launch_running(driver, bystander, "bystander", "sleep 120")
        check_http_level_rejections(master)
        check_offer_and_task_rejections(master)
        # The bystander's stream is open and its task still runs: reconcile answers RUNNING.
        count = len(bystander.updates)
        driver.reconcileTasks([{"task_id": {"value": "bystander"}}])
        bystander.wait(lambda: len(bystander.updates) > count, what="reconcile answer")
        assert bystander.updates[-1]["state"] == "TASK_RUNNING"
    finally:
        driver.stop()
        driver.join()


def check_http_level_rejections(master: str) -> None:
    raw = RawFramework(master)
    fid = {"value": raw.framework_id}
    cases: list[tuple[bytes | dict[str, Any], dict[str, str], int, str]] = [
        (b"{not json", {}, 400, "Failed to parse"),
        ({"type": "FLY", "framework_id": fid}, {}, 400, "unknown call type 'FLY'"),
        ({"type": "UNKNOWN", "framework_id": fid}, {}, 501, "UNKNOWN"),
        ({"type": "ACCEPT", "framework_id": fid}, {}, 400, "'accept' to be present"),
        ({"type": "REVIVE"}, {}, 400, "'framework_id' to be present"),
        ({"type": "REVIVE", "framework_id": {"value": 7}}, {}, 400, "$.framework_id.value"),
        ({"type": "REVIVE", "framework_id": fid}, {"Mesos-Stream-Id": "wrong"}, 400, "stream ID 'wrong'"),
        ({"type": "REVIVE", "framework_id": {"value": "nobody"}}, {}, 400, "Framework cannot be found"),
        ({"type": "ACKNOWLEDGE", "framework_id": fid, "acknowledge": {
            "agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "short"}}, {}, 400, "uuid"),
        (b"x" * (17 * 1024 * 1024), {}, 413, "exceeds the limit"),
    ]
    for body, headers, status, fragment in cases:
        response = raw.post(body, headers)
        assert response.status_code == status, (body if isinstance(body, dict) else body[:20], response.text)
        assert fragment in response.text
    no_stream = raw.client.post(raw.url, content=json.dumps({"type": "REVIVE", "framework_id": fid}), headers=JSON)
    assert no_stream.status_code == 400 and "Mesos-Stream-Id" in no_stream.text
    wrong_type = raw.client.post(raw.url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert raw.client.get(raw.url).status_code == 405
    assert raw.call("REVIVE").status_code == 202  # the stream survived all of that
    assert raw.call("TEARDOWN").status_code == 202  # and hands its offers back
    raw.close()


def check_offer_and_task_rejections(master: str) -> None:
    raw = RawFramework(master)
    offers = raw.next_event("OFFERS")["offers"]["offers"]
    offer = offers[0]
    agent_id = offer["agent_id"]
    def launch(offer_ids: list[str], *tasks: dict[str, Any]) -> None:
        response = raw.call("ACCEPT", accept={"offer_ids": [{"value": o} for o in offer_ids],
                                              "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}],
                                              "filters": {"refuse_seconds": 0}})
        assert response.status_code == 202

    def command_task(task_id: str, cpus: float = 0.1) -> dict[str, Any]:
        return {"name": task_id, "task_id": {"value": task_id}, "agent_id": agent_id, "command": {"value": "true"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}]}

    launch(["no-such-offer"], command_task("t-unknown-offer"))
    status = raw.update_for("t-unknown-offer")
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_INVALID_OFFERS")
    assert "no longer valid" in status["message"] and "uuid" not in status

    launch([offer["id"]["value"]], command_task("dup"), command_task("dup"), command_task("too-big", cpus=1000))
    # the first 'dup' runs; the second is refused by the master
    duplicate = raw.next_event("UPDATE", where=lambda e: e["update"]["status"]["task_id"]["value"] == "dup"
                               and e["update"]["status"]["source"] == "SOURCE_MASTER")["update"]["status"]
    assert duplicate["state"] == "TASK_ERROR" and "duplicate ID" in duplicate["message"]
    too_big = raw.update_for("too-big")
    assert too_big["state"] == "TASK_ERROR" and too_big["reason"] == "REASON_TASK_INVALID"
    assert "more resources" in too_big["message"]

    launch([offer["id"]["value"]], command_task("t-used-offer"))  # the offer was consumed above
    status = raw.update_for("t-used-offer")
    assert (status["state"], status["reason"]) == ("TASK_LOST", "REASON_INVALID_OFFERS")
    assert raw.call("TEARDOWN").status_code == 202
    raw.close()
