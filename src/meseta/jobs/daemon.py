"""Assembly of ``meseta jobs``: store, machine, framework shell and REST API on one loop.

    JobsOptions --build_jobs--> (JobsActor, ASGI app)
      store:   SQLite at <work-dir>/jobs.sqlite, or ZooKeeper under --zk's path (fenced)
      master:  HOST:PORT or zk://.../path (the framework follows the leading master)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meseta.jobs.machine import JobsMachine
from meseta.jobs.shell.actor import JobsActor
from meseta.jobs.shell.api import build_jobs_app
from meseta.jobs.task_builder import TaskDefaults
from meseta.runtime.kv_store import KvStore, SqliteKvStore


@dataclass
class JobsOptions:
    master: str = "127.0.0.1:5050"
    ip: str = "127.0.0.1"
    port: int = 4400
    work_dir: Path = Path("/tmp/meseta/jobs")
    framework_name: str = "chronos"
    role: str = "*"
    user: str = "root"  # Chronos's --user: runs of jobs without runAsUser
    zk: str | None = None  # zk://.../jobs: HA, state in ZooKeeper
    zk_session_timeout: float = 10.0
    task_epsilon: float = 60.0  # Chronos's --task_epsilon (s): how late a due run may still start
    task_cpus: float = 0.1  # --mesos_task_cpu: for a job with cpus 0
    task_mem: float = 128.0  # --mesos_task_mem (MB)
    task_disk: float = 256.0  # --mesos_task_disk (MB)


def build_jobs(options: JobsOptions, store: KvStore | None = None) -> tuple[JobsActor, Any]:
    store = store or SqliteKvStore(options.work_dir / "jobs.sqlite")
    machine = JobsMachine(role=options.role, epsilon=options.task_epsilon,
                          defaults=TaskDefaults(options.task_cpus, options.task_mem, options.task_disk, options.user))
    actor = JobsActor(machine, store, options.master, name=options.framework_name, role=options.role,
                      user=options.user, hostname=options.ip)
    return actor, build_jobs_app(actor, f"{options.ip}:{options.port}")
