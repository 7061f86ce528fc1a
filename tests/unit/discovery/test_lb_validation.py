"""What `haproxy -c` refuses is left out app by app (the rest is kept and reloaded), with HAProxy's reason."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path

from meseta.discovery.lb.driver import Driver, Options
from meseta.discovery.lb.model import Model, Server, Service

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def service(app_id: str, port: int, balance: str = "roundrobin") -> Service:
    return Service(name=f"{app_id[1:]}_{port}", app_id=app_id, bind_addr="127.0.0.1", port=port, mode="tcp",
                   balance=balance, servers=(Server(f"t{port}#0", f"t{port}", "127.0.0.1", 31000),))


def test_apps_haproxy_refuses_are_dropped_one_by_one_and_reported(tmp_path: Path) -> None:
    async def main() -> tuple[Model, str]:
        driver = Driver(Options(marathon=("http://127.0.0.1:9",), groups=("external",), work_dir=tmp_path,
                                haproxy=HAPROXY))
        tmp_path.mkdir(exist_ok=True)
        # labels never produce these; a model built by hand stands for what a future label might get wrong
        model = Model((service("/a", 10001), dataclasses.replace(service("/b", 10002), balance="bogus"),
                       dataclasses.replace(service("/c", 10003), mode="nonsense"), service("/d", 10004)))
        valid, placement = await driver._valid(model)
        await driver.feed.close()
        return valid, ",".join(sorted(placement))

    valid, backends = asyncio.run(main())
    assert [s.app_id for s in valid.services] == ["/a", "/d"] and backends == "a_10001,d_10004"
    assert set(valid.rejected) == {"/b", "/c"}
    assert "HAProxy refused its configuration" in valid.rejected["/b"] and "balance" in valid.rejected["/b"]
