"""``meseta mapreduce`` and ``python -m meseta.examples.mapreduce``: run one job, print its summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from meseta.examples.mapreduce.effects import JobReport
from meseta.examples.mapreduce.job import WORDCOUNT_MAP, WORDCOUNT_REDUCE, JobError, JobSpec

app = typer.Typer(add_completion=False)


@app.command()
def mapreduce(
    inputs: list[Path] = typer.Argument(..., help="Input files or directories (on a path every agent sees)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (must not exist, or be empty)."),
    master: str = typer.Option("127.0.0.1:5050", help="The master: host:port, a URL or zk://.../path."),
    reducers: int = typer.Option(4, help="Reduce tasks: the number of output files."),
    split_bytes: int = typer.Option(1 << 20, help="Bytes of input per map task (cut on line boundaries)."),
    map_function: str = typer.Option(WORDCOUNT_MAP, "--map", help="module:function, called with each line."),
    reduce_function: str = typer.Option(WORDCOUNT_REDUCE, "--reduce", help="module:function(key, values)."),
    combiner: str = typer.Option(None, help="module:function(key, values) run on each map's output "
                                 "(default: the reducer for word count, none for other jobs)."),
    cpus: float = typer.Option(0.25, help="CPUs per task."),
    mem: float = typer.Option(64.0, help="Memory (MB) per task."),
    tasks_per_agent: int = typer.Option(2, help="The job's tasks running at once on one agent, at most."),
    max_attempts: int = typer.Option(4, help="Failed attempts of one task before the job fails."),
    speculation: bool = typer.Option(True, help="Copy stragglers to other agents."),
    speculative_factor: float = typer.Option(3.0, help="A task running this many times its phase's median is "
                                             "a straggler..."),
    speculative_min_seconds: float = typer.Option(5.0, help="... once it has run at least this long."),
    shuffle_dir: Path = typer.Option(None, help="Shared directory for map outputs (default: the map tasks' "
                                     "sandboxes, fetched through the agents' /files/download)."),
    python_path: list[Path] = typer.Option([], help="Directory put on the tasks' PYTHONPATH (repeatable)."),
) -> None:
    """Run a MapReduce job (word count unless --map/--reduce say otherwise) and print its summary."""
    from meseta.examples.mapreduce.inputs import list_inputs
    from meseta.examples.mapreduce.scheduler import MapReduceFailed, run_job

    if combiner is None and (map_function, reduce_function) == (WORDCOUNT_MAP, WORDCOUNT_REDUCE):
        combiner = WORDCOUNT_REDUCE  # summing is associative: each map sends one count per word
    try:
        spec = JobSpec(list_inputs([str(i) for i in inputs]), str(output.absolute()), reducers, split_bytes,
                       map_function, reduce_function, combiner, cpus, mem, tasks_per_agent, max_attempts,
                       speculation, speculative_factor, speculative_min_seconds,
                       str(shuffle_dir.absolute()) if shuffle_dir else None,
                       tuple(str(p.absolute()) for p in python_path))
    except JobError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        report = asyncio.run(run_job(spec, master))
    except JobError as exc:
        raise typer.BadParameter(str(exc)) from None
    except MapReduceFailed as exc:
        typer.echo(f"job failed: {exc}\n{summary(exc.report)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{summary(report)}\noutput: {spec.output}")


def summary(report: JobReport) -> str:
    return (f"{report.maps} maps, {report.reducers} reducers in {report.seconds:.1f} s: {report.attempts} attempts, "
            f"{report.speculative} speculative ({report.speculative_won} won), {report.failed} failed, "
            f"{report.lost} lost, {report.maps_rerun} maps re-run")


def main(args: list[str] | None = None, prog_name: str = "python -m meseta.examples.mapreduce") -> None:
    app(args=args, prog_name=prog_name)
