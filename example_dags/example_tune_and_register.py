"""Tune the churn model on-prem within a budget, then register and promote the best trial.

Needs the ``tuning``, ``xgboost`` and ``mlflow`` extras, nothing else: the data is generated in a
task, the trials run on this host (CPU if it has no GPU), and without a ``trainkit_mlflow_default``
connection the search and the model go to the embedded registry under ``$AIRFLOW_HOME/trainkit``.

Eight trials, two at a time, each a job of the built-in trainer. The task defers while they run and
wakes when one ends (or, with pruning, when a trial's per-round log-loss is worth a look). The on-prem
cost settings let every trial be quoted before it starts and costed after it; the search stops asking
for trials before the budget would be passed. The report (result, trials, Optuna's plots) is written
under ``$AIRFLOW_HOME/trainkit/reports/tuning``; MLflow holds a parent run with one child per trial.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_trainkit.home import trainkit_home
from airflow_trainkit.operators.registry import PromoteModelOperator, RegisterModelOperator
from airflow_trainkit.operators.tuning import TuneModelOperator

MODEL_NAME = "churn-tuned"
DATA_URI = str(trainkit_home() / "data" / "churn_tune_example.parquet")
# What one hour of this host costs (a machine rented by the hour; docs/costs.md shows an owned one).
ONPREM_COSTS = [{"name": "this-host", "vcpus": 2, "memory_gib": 24, "hourly_price": 0.10}]


@dag(
    dag_id="example_tune_and_register",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["trainkit", "example", "tuning"],
    doc_md=__doc__,
)
def example_tune_and_register() -> None:
    @task
    def churn_table() -> str:
        from airflow_trainkit.demo.data import write_churn_dataset

        return str(write_churn_dataset(DATA_URI, rows=4000, seed=11))

    # [START howto_tune_model]
    tune = TuneModelOperator(
        task_id="tune",
        backend="onprem",
        spec={
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "inputs": {"train": DATA_URI},
            "hyperparameters": {"target": "churned", "drop_columns": "customer_id"},
            "max_runtime": "20m",
        },
        search_space={
            "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
            "max_depth": {"type": "int", "low": 2, "high": 8},
            "min_child_weight": {"type": "float", "low": 1, "high": 10},
            "subsample": {"type": "float", "low": 0.6, "high": 1.0, "step": 0.1},
        },
        objective="auc_roc",
        n_trials=8,
        parallel=2,
        budget=0.50,  # USD, the catalog's currency
        trial_hours="15m",  # each trial is quoted for this long (0.025 USD at 0.10 an hour)
        onprem_costs=ONPREM_COSTS,
        quote_options={"vcpus": 2},  # a CPU-only spec is quoted on a host with this many vCPUs
        pruning={"metric": "validation-logloss", "direction": "minimize", "warmup_rounds": 10},
        seed=7,
        poll_interval=1,
    )
    # [END howto_tune_model]
    churn_table() >> tune

    # The search's result is the best trial's training result: registered as any training is.
    register = RegisterModelOperator(task_id="register", model_name=MODEL_NAME, training_result=tune.output)
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        thresholds={"auc_roc": 0.80, "f1_weighted": 0.70, "log_loss": 0.35},
        on_failure="skip",
    )

    @task
    def summary(tuned: dict[str, Any], registered: dict[str, Any], decision: dict[str, Any]) -> str:
        money = tuned["money"]
        text = (
            f"Best of {tuned['trials']['total']} trials ({tuned['trials']['pruned']} pruned, "
            f"{tuned['trials']['failed']} failed): trial {tuned['best_trial']}, "
            f"auc_roc {tuned['objective']['value']:.4f} with {tuned['params']}; spent "
            f"{money['spent']:.4f} of {money['budget']} {money['currency']}. Report: {tuned['report_uri']}. "
            f"{MODEL_NAME} version {registered['version']}: {decision['decision']}."
        )
        print(text)
        return text

    register >> promote
    summary(tune.output, register.output, promote.output)


example_dag = example_tune_and_register()
