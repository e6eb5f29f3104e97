"""``python -m airflow_trainkit.local.run_dag DAG_FILE --log LOG [--dag-id ID]``: ``dag.test()`` of one
DAG file, a line per task on stdout, everything else (Airflow's, the tasks' and the libraries'
output) in LOG. Exits 0 only if the run succeeded.

Run it in a fresh interpreter whose environment names the Airflow home, the DAGs folder and the
database (:func:`airflow_trainkit.local.runner.local_environment`): Airflow reads them on import.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import IO, Any

from airflow_trainkit.local.facts import fact

# The states a task can end a run in, and the word shown for each.
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
WIDTH = 16  # task id column


def task_line(task_id: str, state: str, detail: str = "") -> str:
    """``  train            success   onprem job ... succeeded: auc_roc 0.87``."""
    return f"  {task_id:<{WIDTH}} {state:<9} {detail}".rstrip()


def _error_fact(error: Any) -> str:
    if error is None:
        return ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if isinstance(error, BaseException) else text


class Progress:
    """An Airflow listener that writes a line when a task succeeds, fails or is skipped."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.reported: set[tuple[str, int]] = set()

    def write(self, task_id: str, map_index: int, state: str, detail: str) -> None:
        """Print one task's line (``task[i]`` for a mapped one) and remember that it was reported."""
        name = task_id if map_index < 0 else f"{task_id}[{map_index}]"
        self.reported.add((task_id, map_index))
        self.out.write(task_line(name, state, detail) + "\n")
        self.out.flush()

    def listener(self) -> Any:
        """The object to hand Airflow's listener manager: its hooks call :meth:`write`."""
        from airflow_trainkit._compat import hookimpl

        progress = self

        class Listener:
            @hookimpl
            def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
                try:
                    value = task_instance.xcom_pull(
                        task_ids=task_instance.task_id, map_indexes=task_instance.map_index
                    )
                except Exception:  # a value that cannot be read back is no reason to fail the run
                    value = None
                progress.write(task_instance.task_id, task_instance.map_index, "success", fact(value))

            @hookimpl
            def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
                progress.write(task_instance.task_id, task_instance.map_index, "failed", _error_fact(error))

            @hookimpl
            def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
                progress.write(task_instance.task_id, task_instance.map_index, "skipped", "")

        return Listener()


def _log_to(path: str) -> IO[str]:
    """Send this process's stdout and stderr (and its children's) to ``path``; return the terminal."""
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(log_fd, sys.stdout.fileno())
    os.dup2(log_fd, sys.stderr.fileno())
    os.close(log_fd)
    return terminal


def main(argv: list[str] | None = None) -> int:
    """Run the DAG with ``dag.test()``: 0 when the run succeeded, 1 when not, 2 for a bad file or DAG id."""
    parser = argparse.ArgumentParser(prog="python -m airflow_trainkit.local.run_dag")
    parser.add_argument("dag_file")
    parser.add_argument("--log", required=True, help="file that receives all other output")
    parser.add_argument("--dag-id", help="the DAG to run, when the file holds several")
    args = parser.parse_args(argv)
    out = _log_to(args.log)
    started = time.monotonic()

    from airflow_trainkit._compat import DagBag, get_listener_manager

    bag = DagBag(dag_folder=args.dag_file)
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            out.write(f"cannot import {path}:\n{error}\n")
        return 2
    if args.dag_id:
        if args.dag_id not in bag.dags:
            out.write(f"no DAG {args.dag_id!r} in {args.dag_file}; it holds: {', '.join(sorted(bag.dags))}\n")
            return 2
        dag = bag.dags[args.dag_id]
    elif len(bag.dags) == 1:
        dag = next(iter(bag.dags.values()))
    else:
        found = ", ".join(sorted(bag.dags)) or "none"
        out.write(f"{args.dag_file} holds {len(bag.dags)} DAGs ({found}): choose one with --dag-id\n")
        return 2

    progress = Progress(out)
    get_listener_manager().add_listener(progress.listener())
    out.write(f"running {dag.dag_id} ({len(dag.task_dict)} tasks):\n")
    out.flush()
    run = dag.test()
    states: dict[str, int] = {}
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.start_date is None, t.start_date or 0)):
        state = str(getattr(ti.state, "value", ti.state))
        states[state] = states.get(state, 0) + 1
        if (ti.task_id, ti.map_index) not in progress.reported:  # never ran: upstream failed, removed
            progress.write(ti.task_id, ti.map_index, state if state in FINISHED else f"{state}?", "")
    run_state = str(getattr(run.state, "value", run.state))
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    out.write(
        f"{dag.dag_id} run {run.run_id}: {run_state} ({counts}) in {time.monotonic() - started:.0f} s\n"
    )
    out.flush()
    return 0 if run_state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
