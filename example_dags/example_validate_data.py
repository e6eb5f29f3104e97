"""Validate the demo's churn data against its data contract before anything trains on it.

Needs the ``gx`` extra (great-expectations, pandas, pyarrow) and nothing else: the first task writes
the demo data under the trainkit home (``$AIRFLOW_HOME/trainkit``), the contract is
``example_dags/contracts/churn.yaml``, and the report (result JSON and GX Data Docs) is written to
``<trainkit home>/reports/validation/<dag>/<run>/<task>``. Nothing is read at parse time.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task

from airflow_trainkit.operators.validation import ValidateDataOperator

CONTRACT = str(Path(__file__).parent / "contracts" / "churn.yaml")


@dag(
    dag_id="example_validate_data",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["trainkit", "example", "validation"],
    doc_md=__doc__,
)
def example_validate_data():
    @task
    def write_partition(ds: str | None = None) -> str:
        """Write the day's partition of the demo data, as an upstream export would."""
        from airflow_trainkit.demo.data import write_churn_dataset
        from airflow_trainkit.home import trainkit_home

        path = trainkit_home() / "data" / "churn" / f"ds={ds}" / "churn.parquet"
        return str(write_churn_dataset(path, rows=5000, seed=7))

    # [START howto_operator_validate_data]
    validate = ValidateDataOperator(
        task_id="validate",
        data="{{ ti.xcom_pull(task_ids='write_partition') }}",
        contract=CONTRACT,
        on_failure="fail",  # a broken contract fails the task, after the report is stored
    )
    # [END howto_operator_validate_data]

    @task
    def train(summary: dict) -> None:
        """Stands in for training: it runs only on data that passed, and knows which data that was."""
        fingerprint = summary["fingerprint"]
        print(f"training on {fingerprint['rows']} rows, content hash {fingerprint['content_hash']}")

    write_partition() >> validate
    train(validate.output)


example_validate_data()
