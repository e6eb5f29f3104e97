"""Quote a training job on every backend, train on the cheapest, record what it actually cost.

Needs nothing but the package: prices come from the shipped catalog (or a refreshed one), the
on-prem cost settings are declared below, and with them your own workstation is the cheapest
backend the job can train on, so the demo trains on this host (on CPU when it has no GPU). Reports go under ``$AIRFLOW_HOME/trainkit/reports``.
On a real deployment, set ``pick_from_backends`` to the backends you have connections for.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.costs import CompareTrainingCostsOperator
from airflow_trainkit.operators.training import TrainModelOperator

DATA_DIR = trainkit_home() / "data"
TRAIN_URI = str(DATA_DIR / "churn_train.parquet")

# What a GPU workstation on your premises costs: the price of an hour is derived from these.
ONPREM_HOSTS = [
    {
        "name": "workstation-t4",
        "gpu_model": "T4",
        "gpu_count": 1,
        "purchase_price": 4000,
        "amortization_years": 4,
        "power_watts": 300,
        "electricity_per_kwh": 0.15,
        "utilization": 0.4,
    },
    {
        # The same host when a run falls back to CPU (no GPU here): its CPUs are what the run used.
        "name": "workstation-cpu",
        "purchase_price": 1500,
        "amortization_years": 4,
        "power_watts": 120,
        "electricity_per_kwh": 0.15,
        "utilization": 0.4,
    },
]

SPEC = {
    "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
    "inputs": {"train": TRAIN_URI},
    "hyperparameters": {"target": "churned", "drop_columns": "customer_id", "num_boost_round": 100},
    "accelerator": "T4:1",
    "allow_cpu": True,  # no GPU on this host: train on CPU instead of failing
    "max_runtime": "30m",
    "tags": {"model": "churn"},
}


@dag(
    dag_id="compare_cloud_costs",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["trainkit", "costs"],
    doc_md=__doc__,
)
def compare_cloud_costs():
    @task
    def prepare_data() -> str:
        """Write the demo training table once; later runs reuse it."""
        from airflow_trainkit.demo.data import write_churn_dataset

        if not (DATA_DIR / "churn_train.parquet").exists():
            write_churn_dataset(TRAIN_URI, rows=5000, seed=7)
        return TRAIN_URI

    # [START howto_compare_training_costs]
    quote = CompareTrainingCostsOperator(
        task_id="quote",
        spec=SPEC,
        hours=0.5,
        pick="cheapest",  # pushes XCom "backend": the cheapest backend this job can train on here
        onprem=ONPREM_HOSTS,
    )

    train = TrainModelOperator(
        task_id="train",
        backend="{{ ti.xcom_pull(task_ids='quote', key='backend') }}",
        spec=SPEC,
        poll_interval=1,
    )
    # [END howto_compare_training_costs]

    # [START howto_record_actual_cost]
    @task
    def record_cost(quotes: dict, result: dict) -> dict:
        """Put what the run cost next to what was quoted for it, and keep both in a report."""
        import json

        from airflow_trainkit.costs import actual_cost
        from airflow_trainkit.storage import write_folder_atomic

        cost = actual_cost(result, onprem=ONPREM_HOSTS)
        quoted = quotes["cheapest"]
        facts = {
            "backend": result["backend"],
            "job_id": result["job_id"],
            "quoted": {
                "total": quoted["total"],
                "hours": quoted["hours"],
                "instance_type": quoted["instance_type"],
            },
            "actual": cost,
            "quote_report": quotes["report_uri"],
        }
        lines = [
            f"# Quote and actual cost of {result['backend']} job {result['job_id']}",
            "",
            f"- quoted: {quoted['total']:.4f} {quoted['currency']} for {quoted['hours']:g} h on {quoted['instance_type']}",
        ]
        if cost is None:
            lines.append("- actual: no price for this run's instance")
        else:
            lines.append(
                f"- actual: {cost['amount']:.4f} {cost['currency']} for {cost['billable_hours']:.4f} h "
                f"at {cost['hourly_price']:.4f}/h ({cost['price_row']['instance_type']}, {cost['basis']})"
            )
        # Next to the quote's report: <reports>/costs/compare_cloud_costs/<run>/actual_cost
        uri = quotes["report_uri"].rstrip("/").rsplit("/", 1)[0] + "/actual_cost"
        facts["actual_report"] = uri
        write_folder_atomic(
            uri, {"actual_cost.json": json.dumps(facts, indent=1), "actual_cost.md": "\n".join(lines)}
        )
        return facts

    # [END howto_record_actual_cost]

    prepare_data() >> quote >> train
    record_cost(quote.output, train.output)


compare_cloud_costs()
