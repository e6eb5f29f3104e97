"""A partition that breaks its data contract: validation skips training and logs where the report is.

Needs the ``gx`` extra (great-expectations, pandas, pyarrow). The first task writes a damaged day of
the demo's churn data under the trainkit home (missing ids, impossible ages, text in a numeric
column, a dropped column); ``ValidateDataOperator`` with ``on_failure="skip"`` stores the report
(result JSON and GX Data Docs), logs each failed check and the report location, and skips the task,
so the downstream training task is skipped too and the run itself does not fail.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task

from airflow_trainkit.operators.validation import ValidateDataOperator

CONTRACT = str(Path(__file__).parent / "contracts" / "churn.yaml")


@dag(
    dag_id="example_validate_bad_partition",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["trainkit", "example", "validation"],
    doc_md=__doc__,
)
def example_validate_bad_partition():
    @task
    def write_bad_partition(ds: str | None = None) -> str:
        """Write a day of data with the faults a broken export produces."""
        import io

        from airflow_trainkit.demo.data import make_churn_frame
        from airflow_trainkit.home import trainkit_home
        from airflow_trainkit.storage import write_bytes_atomic

        frame = make_churn_frame(rows=5000, seed=11)
        frame.loc[:99, "customer_id"] = None  # ids lost in a join
        frame.loc[100:149, "age"] = 250  # impossible ages
        frame["tenure_months"] = frame["tenure_months"].astype(str)  # numbers exported as text
        frame = frame.drop(columns=["region"])  # a column the export forgot
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        path = trainkit_home() / "data" / "churn_bad" / f"ds={ds}" / "churn.parquet"
        write_bytes_atomic(str(path), buffer.getvalue())
        return str(path)

    # [START howto_operator_validate_skip]
    validate = ValidateDataOperator(
        task_id="validate",
        data="{{ ti.xcom_pull(task_ids='write_bad_partition') }}",
        contract=CONTRACT,
        on_failure="skip",  # store the report, log the failed checks, skip downstream training
    )
    # [END howto_operator_validate_skip]

    @task
    def train() -> None:
        """Never runs on this partition: the validation task is skipped."""
        raise RuntimeError("training must not run on data that broke its contract")

    write_bad_partition() >> validate >> train()


example_validate_bad_partition()
