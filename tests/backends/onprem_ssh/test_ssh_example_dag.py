"""example_onprem_ssh_training under dag.test(): the built-in trainer shipped to a GPU host via sshd."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ssh_testing import host_entry, onprem_ssh_connection, spec

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.integration


def test_example_dag_runs_under_dag_test_through_sshd(airflow_db, gpu_hosts, monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    host = gpu_hosts["a"]
    # This venv's Python stands for a GPU host's Python with the trainer's libraries (no trainkit
    # needed: the job is shipped with the trainer's modules, which come first on its path).
    entry = host_entry(host, python=sys.executable)
    monkeypatch.setenv("AIRFLOW_CONN_TRAINKIT_ONPREM_SSH", onprem_ssh_connection([entry]))
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    bag = DagBag(dag_folder=str(REPO / "example_dags" / "example_onprem_ssh_training.py"))
    run = bag.dags["example_onprem_ssh_training"].test()
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), {k: str(t.state) for k, t in tis.items()}
    (job_id,) = [n for n in host.run(f"ls {entry['root']}").split() if n.startswith("tk-")]
    # The trainer's modules were shipped into the job; the job ran from them, on the host.
    shipped = host.run(f"ls {entry['root']}/{job_id}/src/airflow_trainkit/trainers").split()
    assert "xgboost.py" in shipped
    models = list((tmp_path / "trainkit" / "shared" / "models").iterdir())
    assert len(models) == 1 and any(models[0].iterdir())  # on storage the worker reads
    assert json.loads((models[0] / "metrics.json").read_text())["auc_roc"] > 0.5


def test_a_host_python_without_the_trainers_libraries_is_refused_before_anything_starts(
    onprem_ssh, gpu_hosts
):
    entry = host_entry(gpu_hosts["a"])  # /usr/bin/python3: the standard library only
    backend = onprem_ssh([entry])
    job = spec("true")
    job = type(job).parse({"command": ["python", "-m", "airflow_trainkit.trainers.xgboost"]})
    with pytest.raises(ValueError) as refused:
        backend.submit(job, "no-libs")
    assert str(refused.value) == (
        "spec.command 'python -m airflow_trainkit.trainers.xgboost': the Python '/usr/bin/python3' of host "
        "'gpu_a' lacks xgboost, numpy, pandas, sklearn, pyarrow, which the built-in trainer needs; install "
        "them there or set the host's 'python' to one that has them"
    )
    assert gpu_hosts["a"].run(f"ls {entry['root']} 2>/dev/null || true").split() == []
