"""The register-and-promote example DAG: light to parse, and runs to success under dag.test()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
REPO = EXAMPLES.parent
HEAVY = ("mlflow", "xgboost", "pandas", "numpy", "sklearn", "great_expectations", "evidently", "boto3")


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def test_parsing_imports_nothing_heavy(tmp_path):
    code = (
        "import json, runpy, sys; runpy.run_path(sys.argv[1]);"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "example_register_and_promote.py")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.integration
def test_dag_test_succeeds(tmp_path):
    env = _env(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    code = (
        "import runpy, sys; ns = runpy.run_path(sys.argv[1]);"
        "r = ns['example_dag'].test(); print('STATE', r.state);"
        "print('TASKS', sorted((t.task_id, str(t.state)) for t in r.get_task_instances()));"
        "from airflow_trainkit.hooks.mlflow import MlflowHook;"
        "c = MlflowHook().get_client();"
        "print('CHAMPION', c.get_model_version_by_alias('churn-example', 'champion').version)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "example_register_and_promote.py")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "STATE success" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
    assert "CHAMPION 1" in out.stdout
    assert "('summary', 'success')" in out.stdout
    assert (tmp_path / "trainkit" / "mlflow" / "mlflow.db").exists()
