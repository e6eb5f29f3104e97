"""Local AWS for the SageMaker backend: a moto server (S3, CloudWatch Logs) and the SageMaker fake."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _sagemaker_fake import FakeSageMaker  # noqa: E402
from sagemaker_testing import BUCKET, CONN_ID, FAKE_KEY_ID, FAKE_SECRET, IMAGE, ROLE_ARN, connection_json  # noqa: E402, F401
from trainkit_testing import environ_set  # noqa: E402


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def fake_server() -> FakeSageMaker:
    fake = FakeSageMaker().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str, fake_server: FakeSageMaker) -> dict[str, str]:
    """Connection env vars: ``aws_trainkit_test`` with a role, ``aws_trainkit_norole`` without."""
    env = {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": connection_json(
            moto_endpoint, fake_server.endpoint_url, execution_role_arn=ROLE_ARN
        ),
        "AIRFLOW_CONN_AWS_TRAINKIT_NOROLE": connection_json(moto_endpoint, fake_server.endpoint_url),
    }
    with environ_set(env):
        # Keep botocore off any real credentials or config on this machine.
        os.environ.setdefault("AWS_CONFIG_FILE", os.devnull)
        os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=FAKE_SECRET,
        )
        s3.create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture
def fake(fake_server: FakeSageMaker, aws_env: dict[str, str]) -> FakeSageMaker:
    fake_server.reset()
    return fake_server


@pytest.fixture
def backend(aws_env: dict[str, str]):
    from airflow_trainkit.backends.sagemaker import SageMakerBackend

    return SageMakerBackend(CONN_ID)
