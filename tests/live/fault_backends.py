"""The backend rows of the live fault matrix (see ``fault_matrix.py``), and where each is defined.

Local on-prem is here; the clouds (their wire fakes served on loopback to the deployment) and the
clusters (a real Ray cluster, real sshd hosts) each live in a module of their own, imported only when
the matrix runs their row.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from fault_matrix import LiveBackend, LiveJob

# name -> "module:Class"
ROWS = {
    "onprem": "fault_backends:LocalOnPrem",
    "onprem_ssh": "fault_backends_clusters:SshOnPrem",
    "ray": "fault_backends_clusters:RayRow",
    "sagemaker": "fault_backends_clouds:SageMakerRow",
    "vertex_ai": "fault_backends_clouds:VertexRow",
    "azure_ml": "fault_backends_clouds:AzureMLRow",
}

# Our command, for backends that run one: sleeps, then fails on the tries the scenario says.
COMMAND = [
    "sh",
    "-c",
    "echo started; sleep {{ params.seconds }}; "
    "if [ {{ ti.try_number }} -le {{ params.fail_tries }} ]; then echo failing; exit 3; fi; echo finished",
]
# A job's end state as state.json (and the other command runners) record it -> the matrix's phase.
ENDED = {"SUCCEEDED": "succeeded", "FAILED": "failed", "LOST": "failed", "STOPPED": "stopped"}


def row(name: str) -> LiveBackend:
    """A fresh backend row by name."""
    module, _, cls = ROWS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def attempt_of(name: str) -> int:
    """The attempt number at the end of one of our job names (``...-a2`` -> 2)."""
    return int(name.rsplit("-a", 1)[1])


def job_prefix(dag_id: str, run_id: str) -> str:
    """Our job names of a task instance without the attempt (``tk-...-<digest>``)."""
    from airflow_trainkit.training.identity import JobIdentity

    return JobIdentity(dag_id, run_id, "train").job_name(1)[: -len("-a1")]


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalOnPrem(LiveBackend):
    """On-prem on the deployment's own host: job directories under its trainkit home. No API between
    Airflow and the jobs, so no API faults; a job is active while its state says so and its runner
    or command still lives (a dead one is what a reboot leaves: not running, whatever the file says)."""

    name = "onprem"
    backend = "onprem"

    def __init__(self) -> None:
        self.root: Path | None = None

    def deployment_env(self, home: Path) -> dict[str, str]:
        self.root = home / "trainkit" / "onprem-jobs"
        return {"TRAINKIT_ONPREM_GPUS": "none"}

    def spec(self) -> dict[str, Any]:
        return {"command": COMMAND, "max_runtime": 900}

    def jobs(self, dag_id: str, run_id: str) -> list[LiveJob]:
        assert self.root is not None, "deployment_env() names the job root"
        found = []
        for folder in sorted(self.root.glob(f"{job_prefix(dag_id, run_id)}-a*")):
            try:
                state = json.loads((folder / "state.json").read_text())
            except (OSError, ValueError):  # being created: a job all the same
                state = {"state": "PENDING"}
            phase = ENDED.get(state.get("state", ""), "active")
            if phase == "active" and state.get("state") != "PENDING":
                if not (_alive(state.get("runner_pid")) or _alive(state.get("child_pid"))):
                    phase = "failed"
            reason = str(state.get("message", "")) if phase == "stopped" else ""
            found.append(LiveJob(folder.name, attempt_of(folder.name), phase, reason))
        return found
