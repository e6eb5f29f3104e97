"""Vertex AI backend through the real aiplatform_v1 REST client, against the local JobService fake."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from _vertex_fake import Plan
from vertex_testing import (
    BUCKET,
    CLIENT_EMAIL,
    CONN_ID,
    IMAGE,
    PROJECT,
    REGION,
    connection_json,
    secret_fragments,
)

from airflow_trainkit.exceptions import TrainingJobNotFound
from airflow_trainkit.training.backend import JobPhase
from airflow_trainkit.training.identity import JobIdentity
from airflow_trainkit.training.spec import TrainingJobSpec

NETWORK = "projects/123456789012/global/networks/trainkit-vpc"


def make_spec(**overrides: object) -> TrainingJobSpec:
    data: dict[str, object] = {
        "command": ["python", "-m", "trainer.task", "--epochs", "3"],
        "image": IMAGE,
        "output_uri": f"gs://{BUCKET}/models",
        "inputs": {"train": f"gs://{BUCKET}/data/train/", "validation": f"gs://{BUCKET}/data/valid.csv"},
        "hyperparameters": {"eta": 0.1, "num_round": 50, "early_stop": True},
        "env": {"LOG_LEVEL": "info"},
        "accelerator": "T4:1",
        "spot": True,
        "max_runtime": "1h",
        "checkpoint_uri": f"gs://{BUCKET}/checkpoints/churn",
        "tags": {"team": "ML Platform"},
    }
    data.update(overrides)
    return TrainingJobSpec.parse(data)


def env_of(pool: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pool["container_spec"]["env"]}


def test_spot_request_reaches_the_service_as_a_valid_custom_job(backend, fake):
    spec = make_spec(instance_count=3, options={"service_account": CLIENT_EMAIL, "network": NETWORK})
    backend.validate(spec)
    status = backend.submit(spec, "tk-spot-fields-a2")
    assert (status.job_id, status.phase) == ("tk-spot-fields-a2", JobPhase.PENDING)
    # The fake parsed the body into aiplatform.v1.CustomJob with json_format (unknown fields refused).
    (body,) = fake.calls("CreateCustomJob")
    job_spec = body["job_spec"]
    assert job_spec["scheduling"] == {"timeout": "3600s", "strategy": "SPOT"}
    assert job_spec["base_output_directory"] == {
        "output_uri_prefix": f"gs://{BUCKET}/models/tk-spot-fields-a2"
    }
    assert job_spec["service_account"] == CLIENT_EMAIL and job_spec["network"] == NETWORK
    chief, workers = job_spec["worker_pool_specs"]
    assert (chief["replica_count"], workers["replica_count"]) == ("1", "2")  # int64 travels as a string
    assert chief["machine_spec"] == {
        "machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 1,
    }
    container = chief["container_spec"]
    assert container["image_uri"] == IMAGE
    assert container["command"] == ["python"]
    assert container["args"] == ["-m", "trainer.task", "--epochs", "3"]
    env = env_of(chief)
    assert json.loads(env["TRAINKIT_HYPERPARAMETERS"]) == {"eta": 0.1, "num_round": 50, "early_stop": True}
    # Cloud Storage FUSE paths: the trainer needs neither gcsfs nor Airflow in the image.
    assert json.loads(env["TRAINKIT_INPUTS"])["train"] == f"/gcs/{BUCKET}/data/train/"
    assert env["TRAINKIT_INPUT_VALIDATION"] == f"/gcs/{BUCKET}/data/valid.csv"
    assert env["TRAINKIT_OUTPUT_URI"] == f"/gcs/{BUCKET}/models/tk-spot-fields-a2/model"
    assert env["TRAINKIT_CHECKPOINT_URI"] == f"/gcs/{BUCKET}/checkpoints/churn"
    assert env["TRAINKIT_GPU_COUNT"] == "1" and env["LOG_LEVEL"] == "info"
    assert workers["container_spec"] == container
    assert body["display_name"] == "tk-spot-fields-a2"
    assert body["labels"]["trainkit-job-id"] == "tk-spot-fields-a2"
    assert body["labels"]["airflow-attempt"] == "2"
    assert body["labels"]["team"] == "ml_platform"
    assert status.instance_count == 3 and status.instance_type == "n1-standard-8"
    assert status.details["spot"] is True


def test_trainer_reads_what_the_job_is_given(backend):
    """The built-in trainer's contract reads the env this backend sets."""
    from airflow_trainkit.trainers.contract import TrainerEnv

    spec = make_spec()
    chief = backend.build_request(spec, "tk-env-a1")["job_spec"]["worker_pool_specs"][0]
    env = TrainerEnv.from_env(env_of(chief))
    assert env.inputs == {name: "/gcs/" + uri[5:] for name, uri in spec.inputs.items()}
    assert env.hyperparameters == spec.hyperparameters
    assert env.output_uri == f"/gcs/{BUCKET}/models/tk-env-a1/model"
    assert env.checkpoint_uri == f"/gcs/{BUCKET}/checkpoints/churn" and env.gpu_count == 1


def test_on_demand_job_has_a_timeout_and_no_spot(backend, fake):
    backend.submit(
        make_spec(spot=False, checkpoint_uri=None, accelerator=None, max_runtime="90m"), "tk-od-a1"
    )
    (body,) = fake.calls("CreateCustomJob")
    assert body["job_spec"]["scheduling"] == {"timeout": "5400s"}
    assert body["job_spec"]["worker_pool_specs"][0]["machine_spec"] == {"machine_type": "n1-standard-4"}
    assert len(body["job_spec"]["worker_pool_specs"]) == 1


@pytest.mark.parametrize(
    ("overrides", "machine"),
    [
        (
            {"accelerator": "A100:8"},
            {"machine_type": "a2-highgpu-8g", "accelerator_type": "NVIDIA_TESLA_A100"},
        ),
        ({"accelerator": "L4:1"}, {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4"}),
        ({"accelerator": "gpu:1"}, {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4"}),
        (
            {"accelerator": "T4:1", "instance_type": {"vertex_ai": "n1-highmem-16"}},
            {"machine_type": "n1-highmem-16", "accelerator_type": "NVIDIA_TESLA_T4"},
        ),
        ({"accelerator": None, "instance_type": "e2-standard-8"}, {"machine_type": "e2-standard-8"}),
    ],
)
def test_machine_spec_from_the_shared_accelerator_table(backend, overrides, machine):
    got = backend.machine_spec(make_spec(**overrides))
    assert {k: v for k, v in got.items() if k != "accelerator_count"} == machine


def test_every_vertex_row_of_the_table_is_a_real_accelerator_type():
    from google.cloud.aiplatform_v1.types import AcceleratorType

    from airflow_trainkit.training.instances import instance_table

    rows = [r for r in instance_table() if r.provider == "vertex_ai"]
    assert rows
    for row in rows:
        assert row.accelerator_type in AcceleratorType.__members__, row


def test_identity_labels_follow_vertex_label_rules(backend, fake):
    identity = JobIdentity("Churn.Weekly", "manual__2026-01-05T10:00:00+00:00", "Train#1", map_index=3)
    labels = backend.build_request(make_spec(), "tk-labels-a1", identity=identity)["labels"]
    assert labels["airflow-dag-id"] == "churn_weekly"
    assert labels["airflow-run-id"] == "manual__2026-01-05t10_00_00_00_00"
    assert labels["airflow-task-id"] == "train_1"
    assert labels["airflow-map-index"] == "3"
    for key, value in labels.items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key) and re.fullmatch(r"[a-z0-9_-]{0,63}", value)
    # The fake checks every label as Vertex does; a long tag key is cut to 63 characters too.
    backend.submit(make_spec(tags={"9" + "x" * 80: "Y" * 80}), "tk-labels-a1")
    (body,) = fake.calls("CreateCustomJob")
    assert "k9" + "x" * 61 in body["labels"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"inputs": {"train": "/data/train.csv"}}, "spec.inputs['train']"),
        ({"inputs": {"train": "s3://bucket/train.csv"}}, "spec.inputs['train']"),
        ({"inputs": {"train-set": f"gs://{BUCKET}/t.csv"}}, "spec.inputs"),
        ({"accelerator": "A10G:1"}, "spec.accelerator"),
        ({"accelerator": "T4:3"}, "spec.accelerator"),
        ({"image": None}, "spec.image"),
        ({"output_uri": "s3://bucket/models"}, "spec.output_uri"),
        ({"output_uri": None}, "spec.output_uri"),
        ({"checkpoint_uri": "/tmp/ckpt"}, "spec.checkpoint_uri"),
        ({"instance_type": "N1 Standard"}, "spec.instance_type"),
        ({"options": {"serviceaccount": CLIENT_EMAIL}}, "spec.options"),
        ({"options": {"project": "other-project"}}, "spec.options['project']"),
        ({"options": {"region": "us-east1"}}, "spec.options['region']"),
        ({"options": {"service_account": "not an email"}}, "spec.options['service_account']"),
        ({"options": {"network": "default"}}, "spec.options['network']"),
        ({"options": {"boot_disk_size_gb": 10}}, "spec.options['boot_disk_size_gb']"),
        ({"env": {"BAD-NAME": "x"}}, "spec.env"),
    ],
)
def test_bad_input_is_refused_before_any_call(backend, fake, overrides, field):
    with pytest.raises(ValueError, match=re.escape(field)) as err:
        backend.validate(make_spec(**overrides))
    value = next(iter(overrides.values()))
    if isinstance(value, str):
        assert value in str(err.value)  # names the value too
    assert fake.requests == []


def test_spot_without_checkpoint_is_refused_unless_the_user_opts_out(backend):
    with pytest.raises(ValueError, match=r"spec\.checkpoint_uri: required when spec\.spot"):
        TrainingJobSpec(command=["train"], image=IMAGE, output_uri=f"gs://{BUCKET}/m", spot=True)
    opted_out = TrainingJobSpec(
        command=["train"],
        image=IMAGE,
        output_uri=f"gs://{BUCKET}/m",
        spot=True,
        allow_spot_without_checkpoint=True,
    )
    backend.validate(opted_out)
    assert backend.build_request(opted_out, "tk-x-a1")["job_spec"]["scheduling"]["strategy"] == "SPOT"


def test_state_enum_is_the_sdks_job_state():
    from google.cloud.aiplatform_v1.types import JobState

    from airflow_trainkit.backends.vertex_ai import VertexAIBackend, VertexState

    assert {s.value for s in VertexState} == set(JobState.__members__)
    assert set(VertexAIBackend.PHASES) == set(VertexState)
    succeeding = [s for s, p in VertexAIBackend.PHASES.items() if p == JobPhase.SUCCEEDED]
    assert succeeding == [VertexState.SUCCEEDED]


@pytest.mark.parametrize(
    ("final", "phase"),
    [
        ("SUCCEEDED", JobPhase.SUCCEEDED),
        ("FAILED", JobPhase.FAILED),
        ("EXPIRED", JobPhase.FAILED),
        ("PARTIALLY_SUCCEEDED", JobPhase.FAILED),
        ("CANCELLED", JobPhase.STOPPED),
        ("PAUSED", JobPhase.STOPPED),
    ],
)
def test_every_terminal_state_maps_to_its_phase(backend, fake, final, phase):
    fake.plan_next(Plan(states=["PENDING", "RUNNING", final], queued_seconds=45, run_seconds=400))
    backend.submit(make_spec(), "tk-final-a1")
    seen = [backend.describe("tk-final-a1") for _ in range(3)]
    assert [s.phase for s in seen] == [JobPhase.PENDING, JobPhase.RUNNING, phase]
    status = seen[-1]
    assert status.state == f"JOB_STATE_{final}"
    assert status.phase.terminal
    assert status.billable_seconds == 400.0  # end_time - start_time of the fake's job
    assert status.started_at and status.ended_at
    if phase != JobPhase.SUCCEEDED:
        assert status.message  # a reason for the task's error
    assert seen[1].billable_seconds is None and seen[1].ended_at is None  # still running


def test_succeeded_job_reports_times_output_and_console(backend, fake):
    fake.plan_next(Plan(states=["RUNNING", "SUCCEEDED"], queued_seconds=30, run_seconds=1234))
    backend.submit(make_spec(), "tk-done-a1")
    backend.describe("tk-done-a1")
    status = asyncio.run(backend.describe_async("tk-done-a1"))
    number = status.details["resource_name"].rsplit("/", 1)[-1]
    assert status.details["resource_name"] == f"projects/{PROJECT}/locations/{REGION}/customJobs/{number}"
    assert status.console_url == (
        f"https://console.cloud.google.com/vertex-ai/locations/{REGION}/training/{number}/cpu?project={PROJECT}"
    )
    assert status.output_uri == f"gs://{BUCKET}/models/tk-done-a1/model"
    assert status.billable_seconds == 1234.0
    assert status.started_at.endswith("+00:00") and status.ended_at.endswith("+00:00")
    result = backend.result(status, make_spec(), attempt=1)
    assert json.loads(json.dumps(result)) == result
    assert (
        result["backend"] == "vertex_ai" and result["spot"] is True and result["billable_seconds"] == 1234.0
    )
    assert status.region == result["region"] == REGION  # its actual cost is priced in this region


def test_failed_while_pending_bills_nothing(backend, fake):
    fake.plan_next(Plan(states=["FAILED"], error="Resources are insufficient in region europe-west4"))
    backend.submit(make_spec(), "tk-noquota-a1")
    status = backend.describe("tk-noquota-a1")
    assert status.phase == JobPhase.FAILED and status.billable_seconds == 0.0 and status.started_at is None
    assert status.message == "Resources are insufficient in region europe-west4"
    assert backend.metrics(status) is None and fake.calls("GetObject") == []


def test_log_tail_reads_the_jobs_cloud_logging_entries(backend, fake):
    fake.plan_next(Plan(states=["RUNNING", "FAILED"]))
    backend.submit(make_spec(), "tk-logs-a1")
    number = fake.job_named("tk-logs-a1").message.name.rsplit("/", 1)[-1]
    fake.logs[number] = [f"epoch {i}" for i in range(60)] + ["Traceback: MemoryError"]
    fake.logs["1"] = ["another job's line"]
    assert backend.log_tail("tk-logs-a1", 5) == [
        "epoch 56",
        "epoch 57",
        "epoch 58",
        "epoch 59",
        "Traceback: MemoryError",
    ]
    (query,) = fake.calls("ListLogEntries")
    assert query["resourceNames"] == [f"projects/{PROJECT}"] and query["pageSize"] == 5
    backend.submit(make_spec(), "tk-nologs-a1")
    assert backend.log_tail("tk-nologs-a1") == []


def test_a_fresh_backend_finds_the_job_by_one_filtered_lookup(backend, fake):
    from airflow_trainkit.backends.vertex_ai import VertexAIBackend

    fake.plan_next(Plan(states=["RUNNING"]))
    backend.submit(make_spec(), "tk-reattach-a1")
    backend.submit(make_spec(), "tk-reattach-a2")  # a sibling with a longer name that shares the prefix
    retry = VertexAIBackend(CONN_ID)
    status = retry.find("tk-reattach-a1")
    assert status is not None and status.job_id == "tk-reattach-a1"
    assert status.details["resource_name"] == fake.job_named("tk-reattach-a1").message.name
    retry.describe("tk-reattach-a1")
    assert [op for op, _ in fake.requests] == [
        "CreateCustomJob",
        "CreateCustomJob",
        "ListCustomJobs",
        "GetCustomJob",
    ]
    (lookup,) = fake.calls("ListCustomJobs")
    assert lookup == {
        "parent": f"projects/{PROJECT}/locations/{REGION}",
        "filter": 'display_name="tk-reattach-a1" AND labels.trainkit-job-id="tk-reattach-a1"',
    }


def test_describe_by_resource_name_for_jobs_started_elsewhere(backend, fake):
    backend.submit(make_spec(), "tk-elsewhere-a1")
    name = fake.job_named("tk-elsewhere-a1").message.name
    from airflow_trainkit.backends.vertex_ai import VertexAIBackend

    status = VertexAIBackend(CONN_ID).describe(name)
    assert status.job_id == name and status.details["resource_name"] == name
    assert fake.calls("ListCustomJobs") == []


def test_unknown_job_is_not_found_and_the_project_is_never_listed(backend, fake):
    with pytest.raises(TrainingJobNotFound):
        backend.describe("tk-nobody-a1")
    assert backend.find("tk-nobody-a1") is None
    with pytest.raises(TrainingJobNotFound):
        asyncio.run(backend.describe_async("tk-nobody-a1"))
    with pytest.raises(TrainingJobNotFound):
        backend.describe(f"projects/{PROJECT}/locations/{REGION}/customJobs/42")
    with pytest.raises(ValueError, match="job_id"):
        backend.describe('x" OR display_name!="')
    assert {op for op, _ in fake.requests} == {"ListCustomJobs", "GetCustomJob"}
    assert all(
        c["filter"].startswith('display_name="tk-nobody-a1" AND ') for c in fake.calls("ListCustomJobs")
    )


def test_stop_is_idempotent(backend, fake):
    fake.plan_next(Plan(states=["RUNNING"]))
    backend.submit(make_spec(), "tk-stop-a1")
    backend.stop("tk-stop-a1")
    assert backend.describe("tk-stop-a1").phase == JobPhase.STOPPING  # CANCELLING: may still bill
    backend.stop("tk-stop-a1")  # cancelling: nothing to do
    status = backend.describe("tk-stop-a1")
    assert (status.state, status.phase) == ("JOB_STATE_CANCELLED", JobPhase.STOPPED)
    backend.stop("tk-stop-a1")  # cancelled
    fake.plan_next(Plan(states=["SUCCEEDED"]))
    backend.submit(make_spec(), "tk-stop-done-a1")
    backend.stop("tk-stop-done-a1")  # finished
    assert len(fake.calls("CancelCustomJob")) == 1
    with pytest.raises(TrainingJobNotFound):
        backend.stop("tk-never-started-a1")


def test_cancel_refused_because_the_job_just_ended_is_fine(backend, fake):
    fake.plan_next(Plan(states=["RUNNING"]))
    backend.submit(make_spec(), "tk-race-a1")
    fake.end_before_cancel = True  # stop sees RUNNING, then the job succeeds before the cancel lands
    backend.stop("tk-race-a1")
    assert len(fake.calls("CancelCustomJob")) == 1
    assert backend.describe("tk-race-a1").phase == JobPhase.SUCCEEDED
    # The service's answer was FAILED_PRECONDITION, which the REST client raises as BadRequest (400).
    from google.api_core.exceptions import BadRequest

    with pytest.raises(BadRequest, match="Cannot cancel") as refused:
        backend.client.cancel_custom_job(name=fake.job_named("tk-race-a1").message.name, retry=None)
    assert not backend.is_transient(refused.value)


def test_throttling_5xx_and_connection_errors_are_transient(backend, fake, monkeypatch):
    from google.api_core.exceptions import ServiceUnavailable, TooManyRequests

    fake.plan_next(Plan(states=["RUNNING"]))
    backend.submit(make_spec(), "tk-flaky-a1")
    fake.throttle_next = 1
    with pytest.raises(TooManyRequests) as throttled:
        backend.describe("tk-flaky-a1")
    assert backend.is_transient(throttled.value)
    fake.fail_5xx_next = 1
    with pytest.raises(ServiceUnavailable) as unavailable:
        asyncio.run(backend.describe_async("tk-flaky-a1"))
    assert backend.is_transient(unavailable.value)
    assert backend.describe("tk-flaky-a1").phase == JobPhase.RUNNING  # the job was fine all along

    import socket

    from airflow_trainkit.backends.vertex_ai import VertexAIBackend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_GCP_TRAINKIT_DEAD", connection_json(dead))
    unreachable = VertexAIBackend("gcp_trainkit_dead")
    with pytest.raises(Exception) as err:
        unreachable.describe("tk-any-a1")
    assert unreachable.is_transient(err.value)
    assert not backend.is_transient(ValueError("bad"))


def test_no_secret_in_logs_errors_or_results(backend, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.plan_next(Plan(states=["RUNNING", "FAILED"]))
    backend.submit(make_spec(), "tk-secret-a1")
    backend.describe("tk-secret-a1")
    status = backend.describe("tk-secret-a1")
    fake.throttle_next = 1
    with pytest.raises(Exception) as err:
        backend.describe("tk-secret-a1")
    tokens = [h.split(" ", 1)[1] for h in fake.auth_headers if h.startswith("Bearer ")]
    assert tokens  # the client really signed and sent a credential
    texts = [caplog.text, repr(err.value), str(err.value), json.dumps(backend.result(status))]
    secrets = secret_fragments() + tokens
    assert not any(secret in text for secret in secrets for text in texts)
    # The checks above can fail: the key is in the connection, and the token was signed with it.
    connection = os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"]
    assert all(fragment in connection for fragment in secret_fragments())
    (jwt, *_) = [t for t in tokens if t.count(".") == 2]  # self-signed: no token endpoint involved
    claims = json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
    assert claims["iss"] == CLIENT_EMAIL


@pytest.mark.integration
def test_importing_the_backend_imports_no_google_sdk():
    code = (
        "import sys\n"
        "import airflow_trainkit.backends.vertex_ai\n"
        "from airflow_trainkit.training.backend import get_backend\n"
        "get_backend('vertex_ai')\n"
        "heavy = ('google.cloud.aiplatform', 'google.cloud.aiplatform_v1', 'google.api_core', 'google.auth',"
        " 'google.protobuf', 'airflow.providers.google', 'grpc')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
