from __future__ import annotations

import json
from datetime import timedelta

import pytest

from airflow_trainkit.training.identity import JobIdentity
from airflow_trainkit.training.spec import DEFAULT_MAX_RUNTIME, Accelerator, TrainingJobSpec


def test_dict_round_trips_through_json():
    spec = TrainingJobSpec.parse(
        {
            "command": ["python", "train.py"],
            "hyperparameters": {"lr": 0.1, "depth": 6},
            "inputs": {"train": "s3://b/train.csv"},
            "accelerator": "A100:8",
            "spot": True,
            "checkpoint_uri": "s3://b/ckpt",
            "max_runtime": "2h",
            "max_wait": timedelta(hours=3),
            "instance_type": {"sagemaker": "ml.p4d.24xlarge"},
        }
    )
    again = TrainingJobSpec.parse(json.dumps(spec.to_dict()))
    assert again == spec
    assert spec.max_runtime == 7200 and spec.max_wait == 10800
    assert spec.parsed_accelerator == Accelerator("A100", 8)
    assert spec.instance_type_for("sagemaker") == "ml.p4d.24xlarge"
    assert spec.instance_type_for("vertex_ai") is None
    assert spec.deadline_seconds == 10800


def test_missing_runtime_takes_the_documented_default():
    assert TrainingJobSpec.parse({"command": ["x"]}).max_runtime == DEFAULT_MAX_RUNTIME == 86400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu:2", Accelerator(None, 2)),
        ("t4:1", Accelerator("T4", 1)),
        ("A10G", Accelerator("A10G", 1)),
        ("cpu", None),
        (None, None),
    ],
)
def test_accelerators(text, expected):
    assert Accelerator.parse(text) == expected


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"max_runtime": 0}, "spec.max_runtime", "0"),
        ({"max_runtime": -5}, "spec.max_runtime", "-5"),
        ({"max_runtime": "soon"}, "spec.max_runtime", "soon"),
        ({"accelerator": "Z9:1"}, "spec.accelerator", "Z9:1"),
        ({"accelerator": "T4:0"}, "spec.accelerator", "T4:0"),
        ({"spot": True}, "spec.checkpoint_uri", "None"),
        ({"command": "python train.py"}, "spec.command", "python train.py"),
        ({"command": ["python", 3]}, "spec.command", "3"),
        ({"max_runtime": 100, "max_wait": 50}, "spec.max_wait", "50"),
        ({"instance_count": 0}, "spec.instance_count", "0"),
        ({"env": {"A": 1}}, "spec.env.A", "1"),
        ({"hyperparameters": {"lr": [0.1]}}, "spec.hyperparameters.lr", "[0.1]"),
        ({"instance_count": "2"}, "spec.instance_count", "'2'"),
        ({"max_runtime": "1 day"}, "spec.max_runtime", "1 day"),
        ({"max_runtime": True}, "spec.max_runtime", "True"),
        ({"spot": "yes"}, "spec.spot", "yes"),
        ({"colour": "red"}, "colour", "colour"),
    ],
)
def test_bad_fields_are_named_with_their_value(changes, field, value):
    with pytest.raises(ValueError) as err:
        TrainingJobSpec.parse({"command": ["python", "train.py"], **changes})
    assert field in str(err.value) and value in str(err.value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1d", 86400),
        ("90m", 5400),
        ("1h30m", 5400),
        (3600, 3600),
        ("3600", 3600),
        (timedelta(minutes=2), 120),
    ],
)
def test_max_runtime_takes_every_duration_spelling(value, seconds):
    spec = TrainingJobSpec.parse({"command": ["x"], "max_runtime": value, "max_wait": "2d"})
    assert spec.max_runtime == seconds and spec.max_wait == 2 * 86400
    assert TrainingJobSpec.parse(spec.to_dict()) == spec


def test_every_problem_is_named_at_once_and_the_env_is_never_echoed_whole():
    with pytest.raises(ValueError) as err:
        TrainingJobSpec.parse(
            {
                "command": [],
                "env": {"TOKEN": "s3cr3t-value"},
                "spot": True,
                "max_runtime": "2h",
                "max_wait": "1h",
            }
        )
    lines = str(err.value).split("; ")
    assert [line.split(":")[0] for line in lines] == ["spec.command", "spec.max_wait", "spec.checkpoint_uri"]
    assert "s3cr3t-value" not in str(err.value)


def test_keyword_construction_checks_like_parse():
    with pytest.raises(
        ValueError, match=r"^spec\.max_wait: 60 s must be at least spec\.max_runtime \(3600 s\), got 60$"
    ):
        TrainingJobSpec(command=["x"], max_runtime=3600, max_wait=60)
    with pytest.raises(ValueError, match=r"^spec\.checkpoint_uri: required when spec\.spot is true"):
        TrainingJobSpec(command=["x"], spot=True)


def test_a_templated_spec_may_leave_mappings_and_the_runtime_empty():
    spec = TrainingJobSpec.parse({"command": ["x"], "env": None, "tags": None, "max_runtime": None})
    assert spec.env == {} and spec.tags == {} and spec.max_runtime == DEFAULT_MAX_RUNTIME


def test_a_spec_is_immutable():
    spec = TrainingJobSpec.parse({"command": ["x"]})
    with pytest.raises(ValueError, match="frozen"):
        spec.spot = True  # type: ignore[misc]
    assert spec.model_copy(update={"spot": True}).spot and not spec.spot


def test_spot_without_checkpoint_can_be_allowed_explicitly():
    spec = TrainingJobSpec.parse({"command": ["x"], "spot": True, "allow_spot_without_checkpoint": True})
    assert spec.spot


def test_job_names_are_deterministic_and_fit_the_strictest_backend():
    identity = JobIdentity("My DAG", "manual__2026-11-25T03:00:00+00:00", "train.model", 3)
    name = identity.job_name(1)
    assert name == identity.job_name(1)
    assert name != identity.job_name(2)
    assert name != JobIdentity("My DAG", "manual__2026-11-25T03:00:00+00:00", "train.model", 4).job_name(1)
    assert name != JobIdentity("My DAG", "scheduled__x", "train.model", 3).job_name(1)
    long = JobIdentity("d" * 200, "r" * 200, "t" * 200).job_name(99)
    for candidate in (name, long):
        assert len(candidate) <= 63
        assert candidate[0].isalpha()
        assert all(c.isalnum() or c == "-" for c in candidate)
