"""Train on SageMaker managed spot capacity with checkpoints, and report the billed seconds.

Needs an ``aws`` connection ``aws_default`` (credentials and region as the amazon provider reads
them) whose extra carries ``execution_role_arn``, or a ``role_arn`` param, plus an S3 bucket for data,
checkpoints and the model. Nothing is read and no connection is opened when the DAG is parsed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_trainkit.operators.training import TrainModelOperator

# [START example_sagemaker_spot_training]
with DAG(
    dag_id="example_sagemaker_spot_training",
    start_date=datetime(2026, 1, 1),
    schedule=None,
    catchup=False,
    params={
        "bucket": Param("trainkit-demo", type="string"),
        "image": Param("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", type="string"),
    },
    tags=["trainkit", "sagemaker"],
) as dag:
    train = TrainModelOperator(
        task_id="train_churn_model",
        backend="sagemaker",
        backend_conn_id="aws_default",
        spec={
            "image": "{{ params.image }}",
            "command": ["python", "train.py"],
            "inputs": {"train": "s3://{{ params.bucket }}/churn/train/"},
            "output_uri": "s3://{{ params.bucket }}/churn/models/",
            "hyperparameters": {"objective": "binary:logistic", "num_round": 200, "max_depth": 5},
            "spot": True,
            "max_runtime": "2h",
            "max_wait": "4h",
            "checkpoint_uri": "s3://{{ params.bucket }}/churn/checkpoints/{{ run_id | replace(':', '-') }}/",
        },
    )
# [END example_sagemaker_spot_training]
