"""Every example DAG is a test: it parses cleanly and cheaply, and it runs to success."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "example_dags"
DAG_FILES = sorted(p.name for p in DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def parse_report() -> dict:
    """One fresh interpreter imports every example DAG, as a DAG processor would."""
    probe = Path(__file__).with_name("parse_probe.py")
    out = subprocess.run([sys.executable, str(probe), str(DAGS)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.integration  # parse_report imports the DAGs in a fresh interpreter
@pytest.mark.parametrize("name", DAG_FILES)
def test_parsing_imports_no_heavy_sdk_reads_no_data_and_opens_no_connection(parse_report, name):
    report = parse_report[name]
    assert report["error"] is None
    assert report["heavy"] == []
    assert report["io"] == []
    assert report["connections"] == []


@pytest.mark.integration  # imports every example DAG through Airflow's DagBag
def test_dagbag_has_no_import_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert len(bag.dags) >= len(DAG_FILES)


def _dag_ids() -> list[str]:
    import ast

    ids = []
    for path in sorted(DAGS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "dag_id"
                and isinstance(node.value, ast.Constant)
            ):
                ids.append(node.value.value)
    return ids


# DAGs that run under dag.test() in a test of their own, which checks what they produced too
# (or starts a local stand-in of the service they need); running them here again would be waste.
RUN_ELSEWHERE = {
    "example_sagemaker_spot_training": "tests/backends/sagemaker/test_sagemaker_example_dag.py",
    "example_vertex_ai_spot_training": "tests/backends/vertex_ai/test_vertex_example_dag.py",
    "example_azure_ml_spot_training": "tests/backends/azure_ml/test_azure_ml_example_dag.py",
    "compare_cloud_costs": "tests/costs/test_costs_example_dag.py",
    "example_validate_data": "tests/contracts/test_validation_example_dags.py",
    "example_validate_bad_partition": "tests/contracts/test_validation_example_dags.py",
    "weekly_drift_check": "tests/drift/test_drift_dags.py",
    "example_register_and_promote": "tests/example_dags/test_example_register_and_promote.py",
    "example_tune_and_register": "tests/example_dags/test_example_tune_and_register.py",
    "trainkit_demo": "tests/demo/test_demo_cli.py",
    "example_onprem_ssh_training": "tests/backends/onprem_ssh/test_ssh_example_dag.py",
    "example_ray_cluster_training": "tests/backends/ray/test_ray_example_dag.py",
}


def test_dags_run_elsewhere_have_their_test():
    for dag_id, test_file in RUN_ELSEWHERE.items():
        assert dag_id in (REPO / test_file).read_text(), test_file


@pytest.mark.integration
@pytest.mark.parametrize("dag_id", [d for d in _dag_ids() if d not in RUN_ELSEWHERE])
def test_runs_to_success_under_dag_test(airflow_db, dag_id, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.delenv("TRAINKIT_ONPREM_ROOT", raising=False)
    bag = DagBag(dag_folder=str(DAGS))
    run = bag.dags[dag_id].test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), states
