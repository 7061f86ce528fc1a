"""``meseta submit``: run COMMAND (or a job file) on the cluster, wait, print its output, exit with its code.

Every flag is checked before the master is contacted: a bad one exits 2 with a message naming it.
The work is done by ``meseta.batch`` (imported once the flags are good).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

DEFAULT_MASTER = "127.0.0.1:5050"
MAX_JOB_FILE_BYTES = 4 * 1024 * 1024  # a job file is a few hundred bytes; this is not one


def submit(
    command: str = typer.Argument(None, metavar="COMMAND", help="The command, run with `sh -c` in the task's sandbox."),
    file: Path = typer.Option(None, "--file", help="A JSON job file (command, cpus, mem, disk, env, uris, image, "
                              "role, constraints, count, max_parallel, retries, name); flags given win over it."),
    master: str = typer.Option(None, help="HOST:PORT or zk://host:port,.../path (default: $MESETA_MASTER, else "
                               f"{DEFAULT_MASTER})."),
    cpus: float = typer.Option(None, help="CPUs per task (default 1)."),
    mem: float = typer.Option(None, help="Memory per task, MB (default 128)."),
    disk: float = typer.Option(None, help="Disk per task, MB (default 0)."),
    image: str = typer.Option(None, help="Run in this MESOS container image (a tarball path, or NAME:TAG in the "
                              "agents' --docker-registry)."),
    env: list[str] = typer.Option(None, "--env", help="NAME=VALUE in the task's environment (repeatable)."),
    uri: list[str] = typer.Option(None, "--uri", help="Fetched into the sandbox first (repeatable)."),
    role: str = typer.Option(None, help="The role to run in (default *)."),
    constraint: list[str] = typer.Option(None, "--constraint", help="FIELD:OPERATOR[:VALUE] with UNIQUE, CLUSTER, "
                                         "LIKE or UNLIKE (repeatable)."),
    count: int = typer.Option(None, help="Run N tasks; task i gets MESETA_TASK_INDEX=i (default 1)."),
    max_parallel: int = typer.Option(None, help="At most M tasks at once; 0 = no limit (default)."),
    retries: int = typer.Option(None, help="Re-launch a failed task up to R times, on another agent if one "
                                "fits (default 0)."),
    name: str = typer.Option(None, help="The framework's name (default meseta-submit)."),
    follow: bool = typer.Option(False, "--follow", help="Stream stdout and stderr while the tasks run "
                                "(lines prefixed by \\[index] with --count)."),
    no_output: bool = typer.Option(False, "--no-output", help="Do not fetch the tasks' output."),
    report_after: float = typer.Option(10.0, help="Say on stderr why tasks wait once they have waited this many "
                                       "seconds for an offer they fit (and every 30 s after).", min=0.5, max=86400),
) -> None:
    """Run COMMAND on the cluster and wait; exit with its exit code (with --count: the first failing
    task's, by index). Output is printed when each task is done, in index order."""
    if follow and no_output:
        raise typer.BadParameter("--follow and --no-output: streaming the output is fetching it; give one")
    job = _job(command, file, {"cpus": cpus, "mem": mem, "disk": disk, "image": image, "role": role,
                               "count": count, "max_parallel": max_parallel, "retries": retries, "name": name},
               env or [], uri or [], constraint or [])
    where = master or os.environ.get("MESETA_MASTER") or DEFAULT_MASTER
    _check_master("--master" if master else "MESETA_MASTER", where)
    raise typer.Exit(_run(job, where, follow=follow, fetch=not no_output, report_after=report_after))


def _job(command: str | None, file: Path | None, flags: dict[str, Any], env: list[str], uris: list[str],
         constraints: list[str]) -> Any:
    from meseta.batch.job import JobError, check_job, check_job_file, merge, parse_env_flag

    try:
        from_file = check_job_file(_read_job_file(file)) if file is not None else {}
        given = {**flags, "command": command}
        if env:
            given["env"] = [parse_env_flag(item) for item in env]
        if uris:
            given["uris"] = list(uris)
        if constraints:
            given["constraints"] = list(constraints)
        return check_job(*merge(given, from_file))
    except JobError as exc:
        raise typer.BadParameter(str(exc)) from None


def _read_job_file(path: Path) -> Any:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_JOB_FILE_BYTES + 1)
    except OSError as exc:
        raise typer.BadParameter(f"--file: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_JOB_FILE_BYTES:
        raise typer.BadParameter(f"--file: {path} is larger than {MAX_JOB_FILE_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise typer.BadParameter(f"--file: {path} is not JSON: {exc}") from None


def _check_master(where: str, master: str) -> None:
    if master.startswith("zk://"):
        from meseta.runtime.zk import parse_zk_url

        try:
            parse_zk_url(master)
        except ValueError as exc:
            raise typer.BadParameter(f"{where}: {exc}") from None
        return
    host, _, port = master.removeprefix("http://").rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise typer.BadParameter(f"{where}: '{master[:100]}' is not HOST:PORT or zk://...")


def _run(job: Any, master: str, *, follow: bool, fetch: bool, report_after: float) -> int:
    import asyncio
    import logging
    import signal

    from meseta.batch.runner import run_batch
    from meseta.batch.terminal import Terminal

    logging.basicConfig(level=logging.WARNING, format="meseta submit: %(name)s: %(message)s")

    async def main() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        received: list[int] = []

        def on_signal(number: int) -> None:
            received.append(number)
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, int(sig))
        with Terminal(job.count) as terminal:
            code = await run_batch(job, master, terminal, follow=follow, fetch=fetch, report_after=report_after)
        return 128 + received[0] if received else code  # 130 after Ctrl-C, 143 after SIGTERM

    return asyncio.run(main())
