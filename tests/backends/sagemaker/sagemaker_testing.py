"""Names and connection settings shared by the SageMaker tests (importable, unlike conftest)."""

from __future__ import annotations

import json

FAKE_KEY_ID = "AKIATRAINKITTESTKEY1"
# Must never show up in a log line, an exception or a result.
FAKE_SECRET = "trainkit-fake-secret-Zq8wX2"
CONN_ID = "aws_trainkit_test"
BUCKET = "trainkit-sm-tests"
ROLE_ARN = "arn:aws:iam::123456789012:role/TrainkitSageMakerRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def connection_json(moto_endpoint: str, sagemaker_endpoint: str, **extra: object) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": FAKE_KEY_ID,
            "password": FAKE_SECRET,
            "extra": {
                "region_name": "us-east-1",
                "endpoint_url": moto_endpoint,
                "service_config": {"sagemaker": {"endpoint_url": sagemaker_endpoint}},
                # The trigger does its own backoff; botocore's retries would hide the fake's throttling.
                "config_kwargs": {"retries": {"mode": "standard", "total_max_attempts": 1}},
                # The fake throttles only when told to: no account limit on it (the limiter itself
                # is tested in tests/training/test_ratelimit.py and measured by the triggerer benchmark).
                "status_calls_per_second": "unlimited",
                **extra,
            },
        }
    )
