"""The Ray backend's request, connection and bad input; throttling and auth against a small stdlib fake."""

from __future__ import annotations

import json
import logging
import time

import pytest
from _ray_fake import FakeRayJobs
from ray_testing import CONN_ID, connection_json
from trainkit_testing import first_trigger_event

from airflow_trainkit.backends.ray import RayBackend
from airflow_trainkit.exceptions import TrainingJobUnreachable
from airflow_trainkit.training.identity import JobIdentity
from airflow_trainkit.training.spec import TrainingJobSpec
from airflow_trainkit.triggers.training import TrainingJobTrigger

TOKEN = "tok-7f3a9c2e5b1d4e8f"
SPEC = {
    "command": ["python", "-m", "airflow_trainkit.trainers.xgboost", "--target", "churned"],
    "inputs": {"train": "/data/churn.parquet"},
    "output_uri": "/shared/models/churn",
    "hyperparameters": {"num_boost_round": 50},
    "env": {"MY_SETTING": "on"},
    "accelerator": "T4:1",
    "max_runtime": "2h",
    "tags": {"model": "churn"},
}


@pytest.fixture
def fake():
    server = FakeRayJobs(token=TOKEN).start()
    yield server
    server.stop()


def backend_on(monkeypatch, address: str, token: str | None = None, conn_id: str = "ray_fake", **extra):
    conn = json.loads(connection_json(address, **extra))
    if token:
        conn["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return RayBackend(conn_id)


def test_the_request_maps_the_spec(monkeypatch):
    backend = backend_on(monkeypatch, "http://ray-head:8265")
    spec = TrainingJobSpec.parse(SPEC)
    identity = JobIdentity("dag", "run", "train")
    body = backend.request_body(spec, "tk-dag-train-a1", "_ray_pkg_x.zip", identity)
    assert body["submission_id"] == "tk-dag-train-a1"
    assert body["entrypoint"] == (
        "python trainkit_ray_launch.py --max-runtime 7200 --grace 30 -- "
        "python -m airflow_trainkit.trainers.xgboost --target churned"
    )
    assert body["entrypoint_num_cpus"] == 1.0 and body["entrypoint_num_gpus"] == 1
    assert body["entrypoint_resources"] == {"accelerator_type:T4": 0.001}
    env = body["runtime_env"]["env_vars"]
    assert body["runtime_env"]["working_dir"] == "gcs://_ray_pkg_x.zip"
    assert env["MY_SETTING"] == "on" and env["TRAINKIT_OUTPUT_URI"] == "/shared/models/churn"
    assert json.loads(env["TRAINKIT_HYPERPARAMETERS"]) == {"num_boost_round": 50}
    assert env["TRAINKIT_INPUT_TRAIN"] == "/data/churn.parquet" and env["TRAINKIT_GPU_COUNT"] == "1"
    meta = body["metadata"]
    assert meta["airflow_dag_id"] == "dag" and meta["airflow_task_id"] == "train" and meta["model"] == "churn"
    assert all(isinstance(v, str) for v in meta.values())
    two = backend.request_body(TrainingJobSpec.parse({**SPEC, "instance_count": 2}), "n", "p.zip")
    assert "entrypoint_num_cpus" not in two and "entrypoint_num_gpus" not in two
    assert "-m airflow_trainkit.trainers.xgboost_ray --target churned" in two["entrypoint"]
    assert two["runtime_env"]["env_vars"]["TRAINKIT_RAY_WORKERS"] == "2"
    assert two["runtime_env"]["env_vars"]["TRAINKIT_RAY_GPUS_PER_WORKER"] == "1"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"spot": True, "checkpoint_uri": "/c"}, r"spec\.spot: the ray backend"),
        ({"output_uri": None}, r"spec\.output_uri is required on the ray backend \(got None\)"),
        ({"options": {"nodes": 3}}, r"spec\.options: unknown option\(s\) 'nodes'"),
        ({"options": {"num_cpus": -1}}, r"spec\.options\['num_cpus'\] must be a positive number, got -1"),
        ({"options": {"workers": 1.5}}, r"spec\.options\['workers'\] must be a whole number .* got 1\.5"),
        (
            {"options": {"working_dir": "/no/such/dir"}},
            r"spec\.options\['working_dir'\] must be a local folder, got '/no/such/dir'",
        ),
        (
            {"instance_count": 2, "checkpoint_uri": "/c"},
            r"spec\.checkpoint_uri: the distributed built-in trainer",
        ),
    ],
)
def test_bad_specs_are_refused_naming_field_and_value(monkeypatch, fake, change, match):
    backend = backend_on(monkeypatch, fake.endpoint_url, TOKEN)
    with pytest.raises(ValueError, match=match):
        backend.check(TrainingJobSpec.parse({**SPEC, **change}))
    assert fake.answers == []  # nothing was called, let alone submitted


def test_a_working_dir_too_large_is_refused_before_any_call(monkeypatch, fake, tmp_path):
    import os

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('hi')\n")
    (tmp_path / "src" / "weights.bin").write_bytes(os.urandom(3 * 2**20))  # does not compress
    backend = backend_on(monkeypatch, fake.endpoint_url, TOKEN, max_package_mb=2)
    spec = TrainingJobSpec.parse(
        {
            "command": ["python", "train.py"],
            "output_uri": "/o",
            "options": {"working_dir": str(tmp_path / "src")},
        }
    )
    with pytest.raises(
        ValueError,
        match=r"spec\.options\['working_dir'\]: the zipped package is 3\.0 MiB, more than the 2\.0 MiB",
    ):
        backend.check(spec)
    assert fake.answers == []


@pytest.mark.parametrize(
    ("host", "match"),
    [
        ("", r"connection 'ray_bad' host: the Ray Jobs API address is empty"),
        (
            "ftp://ray-head:8265",
            r"connection 'ray_bad' host: the Ray Jobs API address must be http\(s\)://host\[:port\], got 'ftp://ray-head:8265'",
        ),
        ("http://ray-head:notaport", r"connection 'ray_bad' host: not a URL: 'http://ray-head:notaport'"),
        ("http://ray-head:8265/api/jobs", r"connection 'ray_bad' host: the address is the dashboard's root"),
    ],
)
def test_a_malformed_address_is_refused_naming_the_connection(monkeypatch, host, match):
    backend = backend_on(monkeypatch, host, conn_id="ray_bad")
    with pytest.raises(ValueError, match=match):
        backend.check(TrainingJobSpec.parse(SPEC))


def test_an_unreachable_address_is_a_clear_error_before_any_submit(monkeypatch):
    from ray_testing import free_port

    backend = backend_on(monkeypatch, f"http://127.0.0.1:{free_port()}", conn_id="ray_down", timeout=2)
    with pytest.raises(
        TrainingJobUnreachable,
        match=r"connection 'ray_down' host http://127\.0\.0\.1:\d+: the Ray Jobs API did not answer",
    ):
        backend.find("tk-anything-a1")


def test_a_refused_token_is_authentication_failed_naming_the_connection_never_the_token(
    monkeypatch, fake, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = backend_on(monkeypatch, fake.endpoint_url, "wrong-token-0000", conn_id="ray_wrong")
    with pytest.raises(TrainingJobUnreachable) as refused:
        wrong.check(TrainingJobSpec.parse({**SPEC, "accelerator": None}))
        wrong.submit(TrainingJobSpec.parse({**SPEC, "accelerator": None}), "tk-x-a1")
    assert "authentication failed" in str(refused.value) and "'ray_wrong'" in str(refused.value)
    assert "HTTP 403" in str(refused.value) and not refused.value.transient
    anonymous = backend_on(monkeypatch, fake.endpoint_url, conn_id="ray_anonymous")
    with pytest.raises(
        TrainingJobUnreachable, match=r"authentication failed: .* a call without a token .*\(HTTP 401\)"
    ):
        anonymous.describe("tk-x-a1")
    assert "wrong-token-0000" not in caplog.text and "wrong-token-0000" not in str(refused.value)
    assert fake.auth_headers[0] == "Bearer wrong-token-0000"  # it was sent, as a header only
    assert "wrong-token-0000" not in repr(wrong.settings)


def test_throttling_and_5xx_storms_while_polling_do_not_fail_the_wait(monkeypatch, fake, caplog):
    backend = backend_on(monkeypatch, fake.endpoint_url, TOKEN, conn_id="ray_storm")
    fake.add_job("tk-storm-a1")
    fake.faults = [429] * 4 + [500, 502, 503, 504]
    event = first_trigger_event(TrainingJobTrigger("ray", "tk-storm-a1", "ray_storm", poll_interval=0.0005))
    assert event["status"] == "done" and event["job"]["state"] == "SUCCEEDED"
    assert fake.answers.count(429) == 4 and len([a for a in fake.answers if a >= 500]) == 4
    assert backend.is_transient(_api_error(429)) and not backend.is_transient(_api_error(400))
    # The GET answer echoes the job's runtime_env: nothing of it reaches the status or the logs.
    assert "s3cr3t-in-runtime-env" not in json.dumps(event) and "s3cr3t-in-runtime-env" not in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in json.dumps(event)


def test_a_job_that_does_not_exist_long_after_submit_ends_the_wait(monkeypatch, fake):
    backend_on(monkeypatch, fake.endpoint_url, TOKEN, conn_id="ray_missing")
    from airflow_trainkit.training.backend import JobRef

    ref = JobRef(backend="ray", job_name="tk-gone-a1", submitted_at=time.time() - 3600).to_dict()
    event = first_trigger_event(TrainingJobTrigger("ray", ref, "ray_missing", poll_interval=0.0005))
    assert event["status"] == "error" and "has no training job 'tk-gone-a1'" in event["message"]


def _api_error(status: int):
    from airflow_trainkit.backends.ray.client import RayApiError

    return RayApiError("GET", "/api/jobs/x", status, "x")


def test_the_connection_reads_token_tls_and_address(monkeypatch, tmp_path):
    from airflow_trainkit.hooks.ray import RayClusterHook

    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv(
        "AIRFLOW_CONN_RAY_TLS",
        json.dumps(
            {
                "conn_type": "trainkit_ray",
                "host": "ray-head.internal",
                "schema": "https",
                "port": 443,
                "password": TOKEN,
                "extra": {"verify": str(bundle), "timeout": 12},
            }
        ),
    )
    settings = RayClusterHook("ray_tls").settings()
    assert settings.address == "https://ray-head.internal:443" and settings.verify == str(bundle)
    assert settings.timeout == 12.0 and settings.headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in repr(settings)
    monkeypatch.setenv(
        "AIRFLOW_CONN_RAY_NOVERIFY",
        json.dumps({"conn_type": "trainkit_ray", "host": "https://h", "extra": {"verify": "maybe"}}),
    )
    with pytest.raises(
        ValueError,
        match=r"connection 'ray_noverify' extra verify: true, false or the path of a CA bundle file, got 'maybe'",
    ):
        RayClusterHook("ray_noverify").settings()


def test_the_backend_declares_capabilities_and_on_prem_like_pricing():
    from airflow_trainkit.training.backend import get_backend
    from airflow_trainkit.training.pricing import pricing_registry

    assert get_backend("ray") is RayBackend and RayBackend.shared_per_connection
    entry = pricing_registry().get("ray")
    assert entry is not None and entry.pricing.rows == "onprem_settings" and entry.trainable
    assert "spot" in RayBackend.capabilities.refused and CONN_ID


OWNED_NODE = {
    "name": "ray-t4-node",
    "gpu_model": "T4",
    "gpu_count": 4,
    "purchase_price": 40000,
    "amortization_years": 4,
    "power_watts": 1200,
    "electricity_per_kwh": 0.2,
    "utilization": 0.5,
}
# A cluster on cloud VMs: the node type's row is the VM's hourly price (a g4dn.12xlarge, 4 x T4).
CLOUD_NODE = {"name": "ray-t4-node", "gpu_model": "T4", "gpu_count": 4, "hourly_price": 3.912}


@pytest.mark.parametrize("node", [OWNED_NODE, CLOUD_NODE], ids=["owned nodes", "cloud nodes"])
def test_actual_cost_is_wall_time_x_instances_x_the_node_types_on_prem_cost(node):
    from airflow_trainkit.costs import actual_cost
    from airflow_trainkit.costs.onprem import parse_host
    from airflow_trainkit.training.backend import JobPhase, JobStatus

    hourly = parse_host(node, where="node").hourly_cost
    info = {
        "status": "SUCCEEDED",
        "start_time": 1_796_000_000_000,
        "end_time": 1_796_001_800_000,  # 30 minutes
        "metadata": {"trainkit_instance_count": "2", "trainkit_instance_type": "ray-t4-node"},
    }
    from airflow_trainkit.backends.ray.status import status_from_job

    status = status_from_job(info, "tk-x-a1", None)
    assert (
        status.billable_seconds == 1800.0
        and status.instance_count == 2
        and status.phase == JobPhase.SUCCEEDED
    )
    result = RayBackend.__new__(RayBackend).result(
        JobStatus.from_dict(status.to_dict()), TrainingJobSpec.parse({**SPEC, "accelerator": "T4:1"})
    )
    cost = actual_cost(result, onprem=[node])
    # Half an hour, two instances, one of the node's four GPUs each.
    assert cost is not None and cost["amount"] == pytest.approx(0.5 * 2 * hourly / 4, rel=1e-4)


def test_the_worker_and_triggerer_path_imports_no_ray():
    import subprocess
    import sys

    code = (
        "import sys, asyncio\n"
        "from airflow_trainkit.training.backend import get_backend\n"
        "from airflow_trainkit.triggers.training import TrainingJobTrigger\n"
        "backend = get_backend('ray')('x')\n"
        "import airflow_trainkit.backends.ray.client, airflow_trainkit.hooks.ray\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_shipped_trainer_runs_without_airflow_or_an_installed_trainkit(monkeypatch, tmp_path):
    """The package the cluster gets, unpacked and run with ``airflow`` made unimportable."""
    import io
    import subprocess
    import sys
    import zipfile

    from airflow_trainkit.demo.data import write_churn_dataset

    backend = backend_on(monkeypatch, "http://ray-head:8265")
    spec = TrainingJobSpec.parse({**SPEC, "accelerator": None, "command": SPEC["command"][:3]})
    name, data = backend._package(spec)
    assert name.startswith("_ray_pkg_") and name.endswith(".zip")
    assert backend._package(spec) == (name, data)  # deterministic: an unchanged package is not re-sent
    workdir = tmp_path / "workdir"
    zipfile.ZipFile(io.BytesIO(data)).extractall(workdir)
    table = write_churn_dataset(tmp_path / "churn.parquet", rows=600, seed=3)
    guard = (
        "import sys, runpy\n"
        "class NoAirflow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'airflow' or name.startswith('airflow.'):\n"
        "            raise ImportError('no Airflow on the cluster')\n"
        "sys.meta_path.insert(0, NoAirflow())\n"
        "sys.argv = ['trainkit_ray_launch.py', '--max-runtime', '300', '--', sys.executable, '-c',\n"
        "    'import sys; sys.meta_path.insert(0, __import__(\"guard\").NoAirflow()); import runpy, airflow_trainkit;'\n"
        "    'assert airflow_trainkit.__file__.startswith(sys.argv[1]), airflow_trainkit.__file__;'\n"
        '    \'sys.argv = sys.argv[1:2]; runpy.run_module("airflow_trainkit.trainers.xgboost", run_name="__main__")\',\n'
        "    sys.argv[1]]\n"
        "runpy.run_path('trainkit_ray_launch.py', run_name='__main__')\n"
    )
    (workdir / "guard.py").write_text(guard.split("sys.argv = [")[0])
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(workdir),
        "TRAINKIT_INPUTS": json.dumps({"train": str(table)}),
        "TRAINKIT_OUTPUT_URI": str(tmp_path / "model"),
        "TRAINKIT_HYPERPARAMETERS": json.dumps({"target": "churned", "num_boost_round": 20}),
    }
    done = subprocess.run(
        [sys.executable, "-c", guard, str(workdir)], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["auc_roc"] > 0.5
