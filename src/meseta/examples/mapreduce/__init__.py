"""A MapReduce framework on meseta.client (word count by default; see README.md here).

    tracker     the job's state machine (pure): splits, attempts, phases, placement, re-runs
    splits, job the inputs cut into map splits; the job's fields, checked (pure)
    tasks       TaskInfo for an attempt (pure)
    scheduler   the asyncio shell: meseta.client Scheduler, run_job()
    worker      what a task runs: the map and reduce workers
    records     the intermediate and output files, the partitioner
"""

# Kept light on purpose: every task imports this package, and a task should start fast (run_job is
# in meseta.examples.mapreduce.scheduler, which brings meseta.client and httpx).
from meseta.examples.mapreduce.effects import JobReport
from meseta.examples.mapreduce.job import InputFile, JobError, JobSpec

__all__ = ["InputFile", "JobError", "JobReport", "JobSpec"]
