"""The steps that make ``dag.test()`` work in a fresh Airflow home, in order: the environment (the
home, a sqlite database in it, the DAG's folder as the DAGs folder), ``airflow db migrate``, then the
run in a fresh interpreter. Standard library only: the command line imports it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


def local_environment(home: Path, dags_folder: Path) -> dict[str, str]:
    """The variables a local run sets: its own Airflow home and sqlite database, no example DAGs.

    The database is always sqlite in ``home``: a local run never migrates or writes the database
    of a deployment that ``AIRFLOW_HOME`` or ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` may name.
    """
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_ENABLE_TELEMETRY": "false",
    }


@dataclass
class LocalRun:
    """What a local run left: its exit code (0: the DAG run succeeded) and its full log."""

    code: int
    log: Path


def log_path(home: Path, name: str) -> Path:
    """``<home>/logs/trainkit/<name>-<UTC time>.log``, a new file for each run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return home / "logs" / "trainkit" / f"{name}-{stamp}.log"


def run_dag_file(
    dag_file: Path,
    *,
    home: Path,
    dag_id: str | None = None,
    out: IO[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> LocalRun:
    """Migrate the home's database, then ``dag.test()`` the DAG in ``dag_file`` in a fresh
    interpreter; a line per task goes to ``out``, everything else to the log file.

    :param dag_file: a Python file holding the DAG; its folder becomes the DAGs folder (Airflow 3.3
        refuses to create a run for a DAG outside it), so every file there is parsed too.
    :param home: the Airflow home, created if missing.
    :param dag_id: the DAG to run when the file holds several.
    :raises ValueError: ``dag_file`` is not a Python file.
    """
    out = out or sys.stdout
    dag_file = dag_file.resolve()
    if not dag_file.is_file() or dag_file.suffix != ".py":
        raise ValueError(f"dag file {str(dag_file)!r} is not a Python file")
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **local_environment(home, dag_file.parent), **(extra_env or {})}
    log = log_path(home, dag_id or dag_file.stem)
    log.parent.mkdir(parents=True, exist_ok=True)
    out.write(f"AIRFLOW_HOME={home}\nfull log: {log}\n")
    out.flush()
    with open(log, "ab") as sink:
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, stdout=sink, stderr=sink
        )
    if migrate.returncode != 0:
        out.write(f"airflow db migrate failed (exit {migrate.returncode}); see the log\n")
        return LocalRun(migrate.returncode, log)
    command = [sys.executable, "-m", "airflow_trainkit.local.run_dag", str(dag_file), "--log", str(log)]
    if dag_id:
        command += ["--dag-id", dag_id]
    # A fresh interpreter, so Airflow reads this environment from its first import. It writes only
    # the task lines to its stdout (the rest goes to the log), copied to ``out`` as they come.
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        for line in child.stdout or ():
            out.write(line)
            out.flush()
    code = child.returncode
    if code != 0:
        out.write(f"the DAG run did not succeed: the full log is {log}\n")
    return LocalRun(code, log)
