"""SageMaker backend at botocore's wire boundary: moto for S3/Logs, the local fake for SageMaker."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import time

import pytest
from _sagemaker_fake import Plan
from sagemaker_testing import BUCKET, CONN_ID, FAKE_SECRET, IMAGE, ROLE_ARN, connection_json

from airflow_trainkit.exceptions import TrainingJobNotFound
from airflow_trainkit.training.backend import JobPhase
from airflow_trainkit.training.identity import JobIdentity
from airflow_trainkit.training.spec import TrainingJobSpec


def make_spec(**overrides: object) -> TrainingJobSpec:
    data: dict[str, object] = {
        "command": ["python", "train.py", "--epochs", "3"],
        "image": IMAGE,
        "output_uri": f"s3://{BUCKET}/models",
        "inputs": {"train": f"s3://{BUCKET}/data/train/", "validation": f"s3://{BUCKET}/data/valid/"},
        "hyperparameters": {"eta": 0.1, "num_round": 50, "early_stop": True},
        "env": {"LOG_LEVEL": "info"},
        "spot": True,
        "max_runtime": "1h",
        "max_wait": "2h",
        "checkpoint_uri": f"s3://{BUCKET}/checkpoints/churn",
        "tags": {"team": "ml platform"},
    }
    data.update(overrides)
    return TrainingJobSpec.parse(data)


def test_spot_request_fields_reach_the_service(backend, fake):
    status = backend.submit(make_spec(), "tk-spot-fields-a1")
    assert status.phase == JobPhase.RUNNING
    (request,) = fake.calls("CreateTrainingJob")
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/checkpoints/churn",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
        "ContainerEntrypoint": ["python"],
        "ContainerArguments": ["train.py", "--epochs", "3"],
    }
    assert request["HyperParameters"] == {"eta": "0.1", "num_round": "50", "early_stop": "true"}
    assert request["Environment"] == {"LOG_LEVEL": "info"}
    assert request["RoleArn"] == ROLE_ARN
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/models"}
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.m5.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train", "validation"]
    assert (
        request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/data/train/"
    )
    assert {"Key": "team", "Value": "ml platform"} in request["Tags"]


def test_spot_without_max_wait_waits_as_long_as_it_runs(backend):
    request = backend.build_request(make_spec(max_wait=None), "tk-x-a1")
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    on_demand = backend.build_request(make_spec(spot=False, max_wait=None), "tk-x-a1")
    assert "EnableManagedSpotTraining" not in on_demand
    assert on_demand["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


@pytest.mark.parametrize(
    ("overrides", "instance_type"),
    [
        ({"accelerator": "T4:1"}, "ml.g4dn.xlarge"),
        ({"accelerator": "A10G:4"}, "ml.g5.12xlarge"),
        ({"accelerator": "T4:1", "instance_type": {"sagemaker": "ml.g4dn.2xlarge"}}, "ml.g4dn.2xlarge"),
        ({}, "ml.m5.xlarge"),
    ],
)
def test_instance_type_from_accelerator_table(backend, overrides, instance_type):
    spec = make_spec(**overrides)
    assert backend.instance_type(spec) == instance_type
    assert backend.build_request(spec, "tk-x-a1")["ResourceConfig"]["InstanceType"] == instance_type


def test_identity_tags_follow_sagemaker_tag_rules(backend, fake):
    identity = JobIdentity("churn_weekly", "manual__2026-01-05T10:00:00+00:00", "train#1", map_index=3)
    request = backend.build_request(make_spec(), "tk-tags-a1", identity=identity)
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["airflow-dag-id"] == "churn_weekly"
    assert tags["airflow-run-id"] == "manual__2026-01-05T10:00:00+00:00"
    assert tags["airflow-task-id"] == "train_1"
    assert tags["airflow-map-index"] == "3"
    # The fake checks every tag against the service model's pattern, as SageMaker does.
    backend.client.create_training_job(**request)
    assert fake.calls("CreateTrainingJob", "tk-tags-a1")


@pytest.mark.parametrize(
    ("overrides", "conn_id", "field"),
    [
        ({"inputs": {"train": "/data/train.csv"}}, CONN_ID, "spec.inputs['train']"),
        ({"inputs": {"train": "gs://bucket/train.csv"}}, CONN_ID, "spec.inputs['train']"),
        ({"accelerator": "A100:1"}, CONN_ID, "spec.accelerator"),
        ({"accelerator": "K80:3"}, CONN_ID, "spec.accelerator"),
        ({}, "aws_trainkit_norole", "spec.options['role_arn']"),
        ({"options": {"role_arn": "my-role"}}, CONN_ID, "spec.options['role_arn']"),
        ({"image": None}, CONN_ID, "spec.image"),
        ({"output_uri": "/tmp/models"}, CONN_ID, "spec.output_uri"),
        ({"checkpoint_uri": "/tmp/ckpt"}, CONN_ID, "spec.checkpoint_uri"),
        ({"instance_type": "ml.nonsense.huge"}, CONN_ID, "spec.instance_type"),
        ({"options": {"rolearn": ROLE_ARN}}, CONN_ID, "spec.options"),
        ({"env": {"BAD-NAME": "x"}}, CONN_ID, "spec.env"),
    ],
)
def test_bad_input_is_refused_before_any_call(fake, overrides, conn_id, field):
    from airflow_trainkit.backends.sagemaker import SageMakerBackend

    with pytest.raises(ValueError, match=__import__("re").escape(field)):
        SageMakerBackend(conn_id).validate(make_spec(**overrides))
    assert fake.requests == []


def test_max_wait_below_max_runtime_is_refused(backend):
    with pytest.raises(ValueError, match=r"spec\.max_wait"):
        make_spec(max_wait="30m")
    # A spec built without parse() is checked the same way: no backend holds a spec that breaks the rule.
    with pytest.raises(
        ValueError, match=r"spec\.max_wait: 60 s must be at least spec\.max_runtime \(3600 s\)"
    ):
        TrainingJobSpec(
            command=["train"],
            image=IMAGE,
            output_uri=f"s3://{BUCKET}/m",
            spot=True,
            allow_spot_without_checkpoint=True,
            max_runtime=3600,
            max_wait=60,
        )


def test_describe_of_unknown_job_raises_not_found_and_never_lists(backend, fake):
    with pytest.raises(TrainingJobNotFound):
        backend.describe("tk-nobody-a1")
    assert backend.find("tk-nobody-a1") is None
    with pytest.raises(TrainingJobNotFound):
        asyncio.run(backend.describe_async("tk-nobody-a1"))
    assert {op for op, _ in fake.requests} == {"DescribeTrainingJob"}


def test_completed_spot_job_reports_billable_seconds_and_savings(backend, fake):
    fake.plan_next(
        Plan(
            states=["InProgress", "Completed"],
            billable_seconds=120,
            training_seconds=400,
            final_metrics={"validation:auc": 0.91},
        )
    )
    backend.submit(make_spec(), "tk-cost-a1")
    status = backend.describe("tk-cost-a1")
    assert status.phase == JobPhase.SUCCEEDED
    assert status.billable_seconds == 120
    assert status.details["training_seconds"] == 400
    assert status.details["spot_savings"] == 0.7
    assert status.details["secondary_status"] == "Completed"
    assert [t[0] for t in status.details["transitions"]] == ["Starting", "Training", "Completed"]
    assert status.output_uri == f"s3://{BUCKET}/models/tk-cost-a1/output/model.tar.gz"
    assert status.console_url == (
        "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/tk-cost-a1"
    )
    assert status.instance_type == "ml.m5.xlarge"
    assert backend.metrics(status) == {"validation:auc": 0.91}
    result = backend.result(status, make_spec(), attempt=1)
    assert json.loads(json.dumps(result)) == result
    assert result["billable_seconds"] == 120 and result["spot"] is True
    assert status.region == result["region"] == "us-east-1"  # its actual cost is priced in this region
    # A status written by a later release (a key this one does not know) still reads back.
    assert type(status).from_dict({**status.to_dict(), "added_later": 1}) == status


def test_failed_job_carries_failure_reason(backend, fake):
    fake.plan_next(Plan(states=["InProgress", "Failed"], failure_reason="AlgorithmError: out of memory"))
    backend.submit(make_spec(), "tk-fail-a1")
    status = asyncio.run(backend.describe_async("tk-fail-a1"))
    assert (status.state, status.phase) == ("Failed", JobPhase.FAILED)
    assert status.message == "AlgorithmError: out of memory"
    assert backend.metrics(status) is None


def test_stop_is_idempotent(backend, fake):
    fake.plan_next(Plan(states=["InProgress"]))
    backend.submit(make_spec(), "tk-stop-a1")
    backend.stop("tk-stop-a1")
    assert backend.describe("tk-stop-a1").phase == JobPhase.STOPPING
    backend.stop("tk-stop-a1")  # stopping: ValidationException, ignored
    assert backend.describe("tk-stop-a1").phase == JobPhase.STOPPED
    backend.stop("tk-stop-a1")  # stopped
    backend.stop("tk-never-started-a1")  # unknown
    fake.plan_next(Plan(states=["Completed"]))
    backend.submit(make_spec(), "tk-done-a1")
    backend.stop("tk-done-a1")  # completed
    assert len(fake.calls("StopTrainingJob")) == 5


def test_throttling_5xx_and_connection_errors_are_transient(backend, fake):
    from botocore.exceptions import ClientError

    fake.plan_next(Plan(states=["InProgress"]))
    backend.submit(make_spec(), "tk-flaky-a1")
    fake.throttle_next = 1
    with pytest.raises(ClientError) as throttled:
        backend.describe("tk-flaky-a1")
    assert backend.is_transient(throttled.value)
    fake.fail_5xx_next = 1
    with pytest.raises(ClientError) as server_error:
        asyncio.run(backend.describe_async("tk-flaky-a1"))
    assert backend.is_transient(server_error.value)
    with pytest.raises(ClientError) as invalid:
        backend.client.stop_training_job(TrainingJobName="tk-nobody-a1")
    assert not backend.is_transient(invalid.value)


def test_unreachable_endpoint_is_transient(monkeypatch, moto_endpoint):
    import socket

    from airflow_trainkit.backends.sagemaker import SageMakerBackend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TRAINKIT_DEAD", connection_json(moto_endpoint, dead))
    backend = SageMakerBackend("aws_trainkit_dead")
    with pytest.raises(Exception) as err:
        backend.describe("tk-any-a1")
    assert backend.is_transient(err.value)


def test_log_tail_reads_the_jobs_cloudwatch_streams(backend):
    logs = backend._hook("logs").conn
    group = "/aws/sagemaker/TrainingJobs"
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000)
    for stream, lines in (("tk-logs-a1/algo-1-1700000000", 60), ("tk-logs-a10/algo-1-1700000000", 3)):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": f"{stream} line {i}"} for i in range(lines)],
        )
    tail = backend.log_tail("tk-logs-a1", 5)
    assert tail == [f"tk-logs-a1/algo-1-1700000000 line {i}" for i in range(55, 60)]
    assert backend.log_tail("tk-nologs-a1") == []


def test_script_mode_uploads_source_and_sets_hyperparameters(backend, fake, tmp_path):
    source = tmp_path / "src"
    (source / "lib").mkdir(parents=True)
    (source / "train.py").write_text("print('training')\n")
    (source / "lib" / "util.py").write_text("X = 1\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "junk.pyc").write_bytes(b"0")
    spec = make_spec(options={"source_dir": str(source), "entry_point": "train.py"})
    backend.validate(spec)
    backend.submit(spec, "tk-script-a1")
    (request,) = fake.calls("CreateTrainingJob")
    hps = request["HyperParameters"]
    archive_uri = f"s3://{BUCKET}/models/tk-script-a1/source/sourcedir.tar.gz"
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]) == archive_uri
    assert json.loads(hps["sagemaker_region"]) == "us-east-1"
    assert json.loads(hps["eta"]) == 0.1 and json.loads(hps["early_stop"]) is True
    assert "ContainerEntrypoint" not in request["AlgorithmSpecification"]
    body = backend._hook("s3").conn.get_object(
        Bucket=BUCKET, Key="models/tk-script-a1/source/sourcedir.tar.gz"
    )
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["lib/util.py", "train.py"]
        assert tar.extractfile("train.py").read() == b"print('training')\n"


def test_script_mode_refuses_missing_entry_point(backend, tmp_path):
    with pytest.raises(ValueError, match=r"spec\.options\['entry_point'\]"):
        backend.validate(make_spec(options={"source_dir": str(tmp_path)}))
    with pytest.raises(ValueError, match=r"spec\.options\['entry_point'\]"):
        backend.validate(make_spec(options={"entry_point": str(tmp_path / "missing.py")}))


def test_moto_accepts_the_request_too(monkeypatch, moto_endpoint, fake):
    """The same request through moto's SageMaker: plumbing only (moto completes at once)."""
    from airflow_trainkit.backends.sagemaker import SageMakerBackend

    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TRAINKIT_MOTO",
        connection_json(moto_endpoint, moto_endpoint, execution_role_arn=ROLE_ARN),
    )
    backend = SageMakerBackend("aws_trainkit_moto")
    status = backend.submit(make_spec(accelerator="T4:1"), "tk-moto-a1")
    assert status.job_id == "tk-moto-a1"
    assert status.instance_type == "ml.g4dn.xlarge"
    assert fake.requests == []


def test_no_secret_in_logs_errors_or_results(backend, fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.plan_next(Plan(states=["Failed"], failure_reason="ClientError: bad input"))
    backend.submit(make_spec(), "tk-secret-a1")
    status = backend.describe("tk-secret-a1")
    fake.throttle_next = 1
    with pytest.raises(Exception) as err:
        backend.describe("tk-secret-a1")
    texts = [caplog.text, repr(err.value), str(err.value), json.dumps(backend.result(status))]
    assert not any(FAKE_SECRET in t for t in texts)
    assert FAKE_SECRET in os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"]  # the check above can fail


@pytest.mark.integration
def test_builtin_trainer_archive_trains_without_airflow_or_an_installed_trainkit(tmp_path):
    """The archive for ``entry_point: trainkit:xgboost`` runs as a SageMaker framework container runs
    it: from its unpacked folder, with hyperparameters as arguments and in SM_HPS, and neither
    Airflow nor an installed trainkit to import."""
    from airflow_trainkit.backends.sagemaker.source import BUILTIN_PROGRAM, package_source, script_source
    from airflow_trainkit.demo.data import make_churn_frame

    files, program = script_source(make_spec(options={"entry_point": "trainkit:xgboost"}))
    assert program == BUILTIN_PROGRAM
    with pytest.raises(ValueError, match=r"spec\.options\['source_dir'\] cannot be combined"):
        script_source(make_spec(options={"entry_point": "trainkit:xgboost", "source_dir": str(tmp_path)}))
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(package_source(files)), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    (tmp_path / "train").mkdir()
    make_churn_frame(1000, seed=3).to_csv(tmp_path / "train" / "data.csv", index=False)
    container = (
        "import sys; sys.modules['airflow'] = None; sys.path.insert(0, '.')\n"
        "import airflow_trainkit\n"
        f"assert airflow_trainkit.__file__.startswith({str(code)!r}), airflow_trainkit.__file__\n"
        f"sys.argv = [{program!r}, '--target', 'churned', '--num_boost_round', '30']\n"
        f"import runpy; runpy.run_path({program!r}, run_name='__main__')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINKIT_", "SM_"))}
    env |= {
        "SM_CHANNEL_TRAIN": str(tmp_path / "train"),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_HPS": json.dumps({"target": "churned", "num_boost_round": "30"}),
        "SM_NUM_GPUS": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-c", container], cwd=code, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["rounds_trained"] == 30 and metrics["auc_roc"] > 0.7
