"""The launcher with real processes: sessions, environments, exit statuses, group kills."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from meseta.agent.containerizer.launcher import FailingLauncher, LaunchError, LaunchSpec, PosixLauncher
from meseta.testing.waiting import async_wait_until


def spec(tmp_path: Path, command: str, env: dict[str, str] | None = None, user: str | None = None) -> LaunchSpec:
    return LaunchSpec(argv=("/bin/sh", "-c", command), env=env or {"PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                      stdout_path=tmp_path / "stdout", stderr_path=tmp_path / "stderr", user=user)


async def test_output_cwd_env_and_exit_status(tmp_path: Path) -> None:
    handle = await PosixLauncher().launch(spec(tmp_path, "echo out; echo err >&2; pwd; env; exit 3",
                                               {"PATH": "/usr/bin:/bin", "ONLY": "this"}))
    status = await handle.wait()
    assert (status.code, status.signal, status.succeeded) == (3, None, False)
    assert status.describe() == "Command exited with status 3"
    out = (tmp_path / "stdout").read_text()
    assert out.startswith(f"out\n{tmp_path}\n") and "ONLY=this" in out
    assert "HOME=" not in out  # nothing inherited from the agent's environment
    assert (tmp_path / "stderr").read_text() == "err\n"


async def test_child_leads_its_own_session(tmp_path: Path) -> None:
    handle = await PosixLauncher().launch(spec(tmp_path, "sleep 5"))
    try:
        assert os.getsid(handle.pid) == handle.pid != os.getsid(0)
    finally:
        await handle.terminate(0)


async def test_terminate_kills_the_whole_group_then_escalates(tmp_path: Path) -> None:
    # The shell ignores SIGTERM and has a background child: both must be gone, by SIGKILL.
    handle = await PosixLauncher().launch(spec(tmp_path, "trap '' TERM; sleep 300 & echo $! > child; wait"))
    await async_wait_until(lambda: (tmp_path / "child").exists() and (tmp_path / "child").read_text().strip(), 2,
                           "the background child's pid", interval=0.02)
    child = int((tmp_path / "child").read_text())
    started = time.monotonic()
    status = await handle.terminate(0.5)
    assert time.monotonic() - started >= 0.45
    assert status.signal == signal.SIGKILL and status.describe() == "Command terminated with signal Killed"
    await asyncio.sleep(0.1)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


async def test_sigterm_is_enough_for_a_polite_process(tmp_path: Path) -> None:
    handle = await PosixLauncher().launch(spec(tmp_path, "exec sleep 300"))
    status = await handle.terminate(5.0)
    assert status.signal == signal.SIGTERM


async def test_hundreds_of_children_need_no_threads_and_leave_no_zombies(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    launcher = PosixLauncher()
    handles = [await launcher.launch(spec(tmp_path, "true")) for _ in range(300)]
    assert threading.active_count() <= threads_before + 1
    statuses = await asyncio.gather(*(h.wait() for h in handles))
    assert all(s.succeeded for s in statuses)
    children = psutil.Process().children()
    assert not [c for c in children if c.pid in {h.pid for h in handles}]


async def test_missing_binary_and_unknown_user_raise_launch_error(tmp_path: Path) -> None:
    bad = LaunchSpec(argv=("/nonexistent/binary",), env={}, cwd=tmp_path, stdout_path=tmp_path / "o",
                     stderr_path=tmp_path / "e")
    with pytest.raises(LaunchError, match="nonexistent"):
        await PosixLauncher().launch(bad)
    with pytest.raises(LaunchError, match="no such user"):
        await PosixLauncher().launch(spec(tmp_path, "true", user="no-such-user-here"))
    with pytest.raises(LaunchError, match="injected"):
        await FailingLauncher("injected").launch(spec(tmp_path, "true"))


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_runs_as_the_requested_user(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    handle = await PosixLauncher().launch(spec(tmp_path, "id -u", user="nobody"))
    await handle.wait()
    assert (tmp_path / "stdout").read_text().strip() == str(pwd.getpwnam("nobody").pw_uid)


async def test_the_status_wrapper_records_exits_keeps_signals_and_is_adoptable(tmp_path: Path) -> None:
    from meseta.agent.containerizer.launcher import (
        AdoptedProcess,
        ExitStatus,
        is_task_wrapper,
        read_exit_status,
        wrap_with_status,
    )

    def wrapped(command: str, status: Path) -> LaunchSpec:
        base = spec(tmp_path, command)
        return LaunchSpec(wrap_with_status(base.argv, status), base.env, base.cwd, base.stdout_path, base.stderr_path)

    exited = tmp_path / "exited.status"
    assert await (await PosixLauncher().launch(wrapped("exit 3", exited))).wait() == ExitStatus(3, None)
    assert read_exit_status(exited) == ExitStatus(3, None)
    # the task keeps default dispositions: SIGINT kills it, though the wrapper traps it
    interrupted = tmp_path / "interrupted.status"
    handle = await PosixLauncher().launch(wrapped("kill -INT $$; sleep 5", interrupted))
    assert await handle.wait() == ExitStatus(None, signal.SIGINT)  # re-raised by the wrapper
    assert read_exit_status(interrupted) == ExitStatus(None, signal.SIGINT)
    # another agent process finds a running wrapper and learns how its task ended
    adopted_status = tmp_path / "adopted.status"
    running = await PosixLauncher().launch(wrapped("sleep 0.5; exit 7", adopted_status))
    await asyncio.sleep(0.1)  # past its exec
    assert is_task_wrapper(running.pid, adopted_status) and not is_task_wrapper(running.pid, exited)
    adopted = AdoptedProcess(running.pid, adopted_status)
    await running.wait()  # reaped here, as init would reap it after an agent's death
    assert await asyncio.wait_for(adopted.wait(), 5) == ExitStatus(7, None)


async def test_the_status_wrapper_forks_nothing_but_the_task(tmp_path: Path) -> None:
    """The exit status is written with the shell's builtins alone: with no PATH to find any
    program, a task made of builtins still leaves its status (a helper such as `mv`, forked for
    every task, would be missing here). An empty file, as a wrapper killed mid-write leaves it,
    reads as no status."""
    from meseta.agent.containerizer.launcher import ExitStatus, read_exit_status, wrap_with_status

    status = tmp_path / "exit.status"
    bare = LaunchSpec(wrap_with_status(("/bin/sh", "-c", "exit 4"), status), {"PATH": str(tmp_path / "none")},
                      tmp_path, tmp_path / "stdout", tmp_path / "stderr")
    assert await (await PosixLauncher().launch(bare)).wait() == ExitStatus(4, None)
    assert read_exit_status(status) == ExitStatus(4, None)
    assert (tmp_path / "stderr").read_text() == ""
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("exit.status")] == ["exit.status"]
    status.write_text("")
    assert read_exit_status(status) is None
