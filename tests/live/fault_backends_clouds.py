"""The cloud rows of the live fault matrix: SageMaker, Vertex AI and Azure ML, each its wire fake served
on loopback to the deployment's worker, triggerer and watchdogs (see ``fault_matrix.py``).

The fakes' jobs do not run our command: each row plans the jobs of attempts 1-3 of a case by name
(timed plans: pending ~1 s, running until ``seconds`` after the create, then failed or succeeded),
and reads their state now, without moving them on, to judge the case. A stop asked of a job makes it
stopping, then stopped by the fake's clock; only then is it counted as stopped. Faults are the
fakes' own: throttling and 5xx windows answered as each service does, the API unreachable (its
listening socket closed, kept-alive connections dropped, then back on the same port), and a create
whose answer never reaches its killed caller.

Besides its API, each backend reads a few things at the end of a job, served here too: SageMaker's
CloudWatch Logs (a moto server), Vertex AI's Cloud Storage and Cloud Logging (the fake), Azure ML's
datastores and blob store (the fake, with the workspace's stores as the Azure ML tests set them up).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from fault_backends import attempt_of, job_prefix
from fault_matrix import LiveBackend, LiveJob

BACKENDS = Path(__file__).resolve().parents[1] / "backends"
ATTEMPTS_PLANNED = 3
CLOUD_FAULTS = frozenset({"throttle", "5xx", "unreachable"})


def _import_from(folder: str) -> None:
    """Put one backend's test folder (its fake and its ``*_testing`` names) on the import path."""
    path = str(BACKENDS / folder)
    if path not in sys.path:
        sys.path.insert(0, path)


def _name(dag_id: str, run_id: str, attempt: int) -> str:
    from airflow_trainkit.training.identity import JobIdentity

    return JobIdentity(dag_id, run_id, "train").job_name(attempt)


class CloudRow(LiveBackend):
    """What the three cloud rows share: a wire fake, timed plans by name, its faults, its jobs.

    A subclass makes ``self.fake`` in ``start()`` and sets ``PHASES`` (the service's state -> the
    matrix's phase; any state not listed is ``active``) and ``name_of`` (our job name of a fake's job).
    """

    api_faults = CLOUD_FAULTS
    PHASES: ClassVar[dict[str, str]]
    fake: Any = None

    def name_of(self, job: Any, key: str) -> str:
        return key

    def stop(self) -> None:
        if self.fake is not None:
            print(f"\n{self.name} fake: {self.seen()}")
            self.fake.stop()

    def seen(self) -> str:
        """What the fake was asked, by operation (creates, lookups, stops, faults answered): the
        evidence behind a case's verdict (a lost create's retry looks its job up, never creates)."""
        with self.fake.lock:
            counts: dict[str, int] = {}
            for operation, _ in self.fake.requests:
                counts[operation] = counts.get(operation, 0) + 1
            left = sorted(self.fake.held_creates)
        text = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
        return text + (f"; create answers never held (no create came): {left}" if left else "")

    def prepare(self, dag_id: str, run_id: str, *, seconds: int, fail_tries: int) -> None:
        for attempt in range(1, ATTEMPTS_PLANNED + 1):
            plan = self.fake.timed_plan(seconds, failed=attempt <= fail_tries)
            self.fake.plan_for(_name(dag_id, run_id, attempt), plan)

    def jobs(self, dag_id: str, run_id: str) -> list[LiveJob]:
        prefix = job_prefix(dag_id, run_id) + "-a"
        with self.fake.lock:
            found = [(self.name_of(job, key), job.state) for key, job in self.fake.jobs.items()]
        return [  # the fake's jobs are in create order
            LiveJob(name, attempt_of(name), self.PHASES.get(state, "active"))
            for name, state in found
            if name.startswith(prefix)
        ]

    @contextmanager
    def api_fault(self, kind: str, seconds: float) -> Iterator[None]:
        with self.fake.fault(kind, seconds):
            yield

    def hold_create(self, dag_id: str, run_id: str) -> bool:
        self.fake.hold_create(_name(dag_id, run_id, 1))
        return True

    @staticmethod
    def _env(conn_id: str, connection: str) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": connection}


class SageMakerRow(CloudRow):
    """SageMaker: the JSON 1.1 fake (our job names are SageMaker's), CloudWatch Logs from moto."""

    name = "sagemaker"
    backend = "sagemaker"
    PHASES: ClassVar[dict[str, str]] = {"Completed": "succeeded", "Failed": "failed", "Stopped": "stopped"}

    def __init__(self) -> None:
        self.moto: Any = None
        self.moto_endpoint = ""

    def start(self, workdir: Path) -> None:
        _import_from("sagemaker")
        from _sagemaker_fake import FakeSageMaker
        from moto.server import ThreadedMotoServer
        from sagemaker_testing import CONN_ID

        self.conn_id = CONN_ID
        self.fake = FakeSageMaker().start()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        super().stop()
        if self.moto is not None:
            self.moto.stop()

    def deployment_env(self, home: Path) -> dict[str, str]:
        from sagemaker_testing import CONN_ID, ROLE_ARN, connection_json

        return {
            **self._env(
                CONN_ID,
                connection_json(self.moto_endpoint, self.fake.endpoint_url, execution_role_arn=ROLE_ARN),
            ),
            # botocore reads no credentials or config of this machine's
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def spec(self) -> dict[str, Any]:
        from sagemaker_testing import BUCKET, IMAGE

        return {
            "command": ["python", "train.py"],
            "image": IMAGE,
            "inputs": {"train": f"s3://{BUCKET}/data/train/"},
            "output_uri": f"s3://{BUCKET}/models",
            "max_runtime": "1h",
        }


class VertexRow(CloudRow):
    """Vertex AI: the REST fake picks the job's resource name; ours is its display name."""

    name = "vertex_ai"
    backend = "vertex_ai"
    server_chosen_ids = True
    PHASES: ClassVar[dict[str, str]] = {
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "EXPIRED": "failed",
        "PARTIALLY_SUCCEEDED": "failed",
        "CANCELLED": "stopped",
        "PAUSED": "stopped",
    }

    def name_of(self, job: Any, key: str) -> str:
        return str(job.message.display_name)

    def start(self, workdir: Path) -> None:
        _import_from("vertex_ai")
        from _vertex_fake import FakeVertex
        from vertex_testing import CONN_ID

        self.conn_id = CONN_ID
        self.fake = FakeVertex().start()

    def deployment_env(self, home: Path) -> dict[str, str]:
        from vertex_testing import CONN_ID, connection_json

        return self._env(CONN_ID, connection_json(self.fake.endpoint_url))

    def spec(self) -> dict[str, Any]:
        from vertex_testing import BUCKET, IMAGE

        return {
            "command": ["python", "-m", "trainer.task"],
            "image": IMAGE,
            "inputs": {"train": f"gs://{BUCKET}/data/train/"},
            "output_uri": f"gs://{BUCKET}/models",
            "max_runtime": "1h",
        }


class AzureMLRow(CloudRow):
    """Azure ML: the ARM, token and blob fake with the workspace's data and artifact datastores."""

    name = "azure_ml"
    backend = "azure_ml"
    PHASES: ClassVar[dict[str, str]] = {
        "Completed": "succeeded",
        "Failed": "failed",
        "NotResponding": "failed",
        "Paused": "failed",
        "Canceled": "stopped",
    }

    def start(self, workdir: Path) -> None:
        _import_from("azure_ml")
        from _azure_ml_fake import FakeAzureML
        from azure_testing import CONN_ID, add_stores

        self.conn_id = CONN_ID
        self.fake = FakeAzureML().start()
        add_stores(self.fake)

    def deployment_env(self, home: Path) -> dict[str, str]:
        from azure_testing import CONN_ID, connection_json

        return self._env(CONN_ID, connection_json(self.fake.endpoint_url))

    def spec(self) -> dict[str, Any]:
        from azure_testing import IMAGE, store_uri

        return {
            "command": ["python", "-m", "airflow_trainkit.trainers.xgboost"],
            "image": IMAGE,
            "inputs": {"train": store_uri("data/train/")},
            "output_uri": store_uri("models"),
            "max_runtime": "1h",
        }
