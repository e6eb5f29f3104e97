"""Helpers of the SSH transport's tests: on-prem connections naming the fake hosts, waits."""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow_trainkit.training.spec import TrainingJobSpec

PYTHON = "/usr/bin/python3"  # the host's own Python: stdlib only, no trainkit


def onprem_ssh_connection(hosts: list[dict[str, Any]], grace_seconds: float = 1) -> str:
    return json.dumps(
        {
            "conn_type": "trainkit_onprem",
            "extra": {"transport": "ssh", "hosts": hosts, "grace_seconds": grace_seconds},
        }
    )


def host_entry(host: Any, gpus: str = "none", **extra: Any) -> dict[str, Any]:
    """One ``hosts`` item for a fake host, with a job root of its own below its private folder."""
    return {
        "ssh_conn_id": f"gpu_{host.name}",
        "root": f"{host.folder}/jobs-{uuid.uuid4().hex[:8]}",
        "gpus": gpus,
        "python": PYTHON,
        **extra,
    }


def spec(script: str, **extra: Any) -> TrainingJobSpec:
    return TrainingJobSpec.parse({"command": ["sh", "-c", script], **extra})
