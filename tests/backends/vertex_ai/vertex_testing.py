"""Names and connection settings shared by the Vertex AI tests (importable, unlike conftest)."""

from __future__ import annotations

import json
from functools import lru_cache

CONN_ID = "gcp_trainkit_test"
PROJECT = "trainkit-test-project"
REGION = "europe-west4"
BUCKET = "trainkit-vertex-tests"
IMAGE = "europe-docker.pkg.dev/vertex-ai/training/xgboost-cpu.2-1:latest"
CLIENT_EMAIL = "trainkit-test@trainkit-test-project.iam.gserviceaccount.com"


@lru_cache(maxsize=1)
def private_key_pem() -> str:
    """A fresh RSA key for a fake service account: real enough for google-auth to sign with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def secret_fragments() -> list[str]:
    """Pieces of the key that must never show up in a log line, an exception or a result."""
    lines = private_key_pem().splitlines()[1:-1]
    return [line[8:48] for line in lines[::4]]


def connection_json(api_endpoint: str, **extra: object) -> str:
    """A google_cloud_platform connection whose service account key signs its own tokens (no network)."""
    keyfile = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": private_key_pem(),
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": f"{api_endpoint}/token",
    }
    return json.dumps(
        {
            "conn_type": "google_cloud_platform",
            "extra": {
                "project": PROJECT,
                "region": REGION,
                "api_endpoint": api_endpoint,
                "storage_endpoint": api_endpoint,
                "logging_endpoint": api_endpoint,
                "keyfile_dict": json.dumps(keyfile),
                # The fake throttles only when told to: no account limit on it (the limiter itself
                # is tested in tests/training/test_ratelimit.py and measured by the triggerer benchmark).
                "status_calls_per_second": "unlimited",
                **extra,
            },
        }
    )
