"""Health check policy and verdicts: grace period, first healthy report, consecutive failures."""

from __future__ import annotations

import pytest

from meseta.agent.health import HealthCheckError, HealthPolicy, HealthTracker, Verdict, http_success


def test_defaults_and_kinds_follow_mesos() -> None:
    policy = HealthPolicy.from_json({"type": "HTTP", "http": {"port": 8080, "path": "/ping"}})
    assert (policy.delay, policy.interval, policy.timeout, policy.consecutive_failures, policy.grace_period) == (
        15.0, 10.0, 20.0, 3, 10.0)
    assert (policy.port, policy.path, policy.scheme) == (8080, "/ping", "http")
    assert HealthPolicy.from_json({"type": "TCP", "tcp": {"port": 5}}).kind == "TCP"
    assert HealthPolicy.from_json({"command": {"value": "true"}}).kind == "COMMAND"  # type inferred
    for bad, field in (({"type": "TCP", "tcp": {}}, "tcp.port"), ({"type": "COMMAND"}, "command.value"),
                       ({"type": "GRPC"}, "health_check.type"), ({"type": "HTTP", "http": {"port": 1,
                                                                  "scheme": "ftp"}}, "http.scheme")):
        with pytest.raises(HealthCheckError, match=field):
            HealthPolicy.from_json(bad)


def test_verdicts_over_a_tasks_life() -> None:
    tracker = HealthTracker(HealthPolicy("TCP", consecutive_failures=2, grace_period=10.0, port=1), launched_at=0.0)
    assert tracker.record(False, 5.0) == Verdict(None)  # within the grace period, before a success
    assert tracker.record(True, 6.0) == Verdict(True)  # turned healthy: reported once
    assert tracker.record(True, 7.0) == Verdict(None)
    assert tracker.record(False, 8.0) == Verdict(False)  # grace ends at the first success
    assert tracker.record(True, 9.0) == Verdict(True)  # healthy again: reported again
    assert tracker.record(False, 10.0) == Verdict(False)
    assert tracker.record(False, 11.0) == Verdict(False, kill=True)  # two in a row


def test_failures_after_the_grace_period_count_without_a_success() -> None:
    tracker = HealthTracker(HealthPolicy("TCP", consecutive_failures=1, grace_period=1.0, port=1), launched_at=0.0)
    assert tracker.record(False, 2.0) == Verdict(False, kill=True)
    assert [http_success(s) for s in (199, 200, 302, 399, 400, 503)] == [False, True, True, True, False, False]
