"""`meseta lb` and `meseta local` refuse bad LB flags by name (exit 2) before starting anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from meseta.cli.main import app


@pytest.mark.parametrize(("args", "named"), [
    (["lb", "--lb-port-range", "5-1"], "--lb-port-range"),
    (["lb", "--lb-port-range", "10000"], "--lb-port-range"),
    (["lb", "--lb-port-range", "1-70000"], "--lb-port-range"),
    (["lb", "--mode", "fast"], "--mode"),
    (["lb", "--haproxy", "/nonexistent/haproxy"], "--haproxy"),
    (["lb", "--slots", "0"], "--slots"),
    (["lb", "--group", "ext ernal"], "--group"),
    (["local", "--lb-port-range", "a-b"], "--lb-port-range"),
])
def test_bad_lb_flags_exit_2_naming_the_flag(args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert named in result.output
