"""Declared capabilities: a spec a backend cannot run is refused before anything starts; fields a
backend ignores are logged once; the same spec runs on every backend that accepts it."""

from __future__ import annotations

import pytest
from trainkit_testing import make_context

from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.backends.sagemaker import SageMakerBackend
from airflow_trainkit.backends.vertex_ai import VertexAIBackend
from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.spec import TrainingJobSpec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"command": ["true"], "spot": True, "checkpoint_uri": "/tmp/ckpt"},
            "spec.spot: the onprem backend has no spot capacity: its jobs run on hosts you own (got True)",
        ),
        (
            {"command": ["true"], "instance_count": 2},
            "spec.instance_count: the onprem backend runs at most 1",
        ),
    ],
)
def test_onprem_refuses_before_any_job_starts(onprem_root, spec, message):
    op = TrainModelOperator(task_id="train", backend="onprem", spec=spec)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        op.execute(make_context())
    assert not onprem_root.exists() or not any(onprem_root.iterdir())


def test_onprem_logs_what_it_ignores_once_and_runs_the_job(onprem_root, capsys):
    spec = {"command": ["true"], "image": "python:3.11", "tags": {"team": "ml"}}
    op = TrainModelOperator(
        task_id="train", backend="onprem", spec=spec, deferrable=False, poll_interval=0.05
    )
    result = op.execute(make_context())
    assert result["state"] == "SUCCEEDED"
    out = capsys.readouterr().out  # the operator's logger writes the task log, stdout here
    image = "spec.image is not applicable on the onprem backend and is ignored: the command runs on the host"
    tags = "spec.tags is not applicable on the onprem backend and is ignored: jobs are folders on the host"
    assert out.count(image) == 1 and out.count(tags) == 1
    assert "spec.command is not applicable" not in out


@pytest.mark.parametrize(
    ("backend", "name"), [(SageMakerBackend, "sagemaker"), (VertexAIBackend, "vertex_ai")]
)
def test_a_gpu_the_cloud_does_not_offer_is_refused_by_its_declaration(backend, name):
    spec = TrainingJobSpec.parse({"command": ["train"], "accelerator": "K80:16"})
    assert backend.capabilities.refusal(spec, name).startswith(
        f"spec.accelerator: no {name} instance with K80:16"
    )
    assert (
        backend.capabilities.refusal(
            TrainingJobSpec.parse({"command": ["train"], "accelerator": "T4:1"}), name
        )
        is None
    )


def test_one_spec_is_accepted_by_every_backend_whose_capabilities_allow_it():
    spec = TrainingJobSpec.parse(
        {"command": ["train"], "accelerator": "T4:1", "spot": True, "checkpoint_uri": "s3://b/c"}
    )
    refusals = {
        name: cls.capabilities.refusal(spec, name)
        for name, cls in {
            "onprem": OnPremBackend,
            "sagemaker": SageMakerBackend,
            "vertex_ai": VertexAIBackend,
        }.items()
    }
    assert refusals["sagemaker"] is None and refusals["vertex_ai"] is None
    assert refusals["onprem"].startswith("spec.spot: the onprem backend has no spot capacity")


def test_a_declaration_naming_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match=r"capabilities.refused: unknown spec field\(s\) gpu_count"):
        Capabilities(refused={"gpu_count": "no"})
    with pytest.raises(ValueError, match="capabilities.max_instance_count must be at least 1, got 0"):
        Capabilities(max_instance_count=0)
