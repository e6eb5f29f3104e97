"""Fast checks of the gate's threshold rules, input checks and the trigger's serialization."""

from __future__ import annotations

import importlib

import pytest

from airflow_trainkit.registry.gate import resolve_thresholds
from airflow_trainkit.registry.registration import check_training_result, lineage_tags
from airflow_trainkit.registry.watch import check_target
from airflow_trainkit.triggers.registry import ModelVersionTrigger


def test_default_thresholds_follow_the_guide():
    assert resolve_thresholds("classification", None) == {
        "auc_roc": (0.80, True),
        "f1_weighted": (0.70, True),
        "log_loss": (0.25, False),
    }
    assert resolve_thresholds("regression", None) == {"mape": (0.05, False)}
    assert resolve_thresholds("classification", {"log_loss": None, "auc_roc": 0.7}) == {
        "auc_roc": (0.7, True),
        "f1_weighted": (0.70, True),
    }
    custom = resolve_thresholds(None, {"ndcg": {"threshold": 0.3, "greater_is_better": True}})
    assert custom == {"ndcg": (0.3, True)}


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [({"ndcg": 0.3}, "direction"), ({"auc_roc": "high"}, "must be a number"), ([1], "must be a dict")],
)
def test_bad_thresholds(thresholds, message):
    with pytest.raises(ValueError, match=message):
        resolve_thresholds("classification", thresholds)


def test_training_result_checks():
    with pytest.raises(ValueError, match="has no metrics"):
        check_training_result({"backend": "onprem", "job_id": "j", "output_uri": "/x", "metrics": None})
    with pytest.raises(ValueError, match="no output_uri"):
        check_training_result({"backend": "onprem", "job_id": "j", "metrics": {"a": 1}})
    with pytest.raises(ValueError, match="render_template_as_native_obj"):
        check_training_result("{'backend': 'onprem'}")


def test_lineage_tags_are_strings():
    tags = lineage_tags(
        {
            "backend": "onprem",
            "job_id": "j",
            "billable_seconds": 12,
            "cost": {"amount": 1.5, "currency": "USD"},
        },
        data_fingerprint={"row_count": 10},
        lineage={"dag_id": "d"},
    )
    assert tags == {
        "trainkit.backend": "onprem",
        "trainkit.job_id": "j",
        "trainkit.billable_seconds": "12",
        "trainkit.cost_amount": "1.5",
        "trainkit.cost_currency": "USD",
        "trainkit.data.row_count": "10",
        "trainkit.dag_id": "d",
    }


def test_watch_target_checks():
    assert check_target("champion", None, "3") == 3
    with pytest.raises(ValueError, match="exactly one"):
        check_target("champion", {"a": "b"}, None)
    with pytest.raises(ValueError, match="newer_than"):
        check_target(None, {"a": "b"}, "three")


def test_trigger_round_trips_through_serialize():
    trigger = ModelVersionTrigger(
        "m", alias="champion", newer_than=2, mlflow_conn_id="c", poll_interval=5, deadline=1.5
    )
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert all(isinstance(v, (str, int, float, type(None), dict)) for v in kwargs.values())


def test_trigger_serialized_before_the_rename_still_loads():
    """A trigger waiting in the triggerer across the upgrade was serialized with ``conn_id``."""
    from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

    with pytest.warns(TrainkitDeprecationWarning, match="use mlflow_conn_id"):
        trigger = ModelVersionTrigger("m", alias="champion", conn_id="c")
    assert trigger.serialize()[1]["mlflow_conn_id"] == "c"


@pytest.mark.parametrize(
    ("tolerance", "expected"),
    [
        (0.02, 0.02),
        ("0.02", 0.02),
        (0, 0.0),
        ({"auc_roc": "0.1", "log_loss": 1}, {"auc_roc": 0.1, "log_loss": 1.0}),
    ],
)
def test_tolerance_takes_numbers_and_rendered_numbers(tolerance, expected):
    from airflow_trainkit.registry.gate import check_tolerance

    assert check_tolerance(tolerance) == expected


@pytest.mark.parametrize(
    ("tolerance", "message"),
    [
        (-0.1, "tolerance must be a number >= 0, got -0.1"),
        ("lots", "tolerance must be a number, got 'lots'"),
        (True, "tolerance must be a number, got True"),
        ({"auc_roc": None}, r"tolerance\['auc_roc'\] must be a number, got None"),
    ],
)
def test_bad_tolerance_names_field_and_value(tolerance, message):
    from airflow_trainkit.registry.gate import check_tolerance

    with pytest.raises(ValueError, match=message):
        check_tolerance(tolerance)


def test_meta_of_the_builtin_trainer_is_normalised(tmp_path):
    import json

    from airflow_trainkit.registry.registration import _read_meta, _signature

    (tmp_path / "model_meta.json").write_text(
        json.dumps(
            {
                "model_file": "model.ubj",
                "task": "classification",
                "feature_names": ["tenure_months", "contract"],
                "feature_types": {"tenure_months": "float64", "contract": "categorical"},
            }
        )
    )
    meta = _read_meta(str(tmp_path))
    assert meta is not None
    assert meta["features"] == ["tenure_months", "contract"]
    assert meta["feature_types"] == ["float64", "categorical"]
    signature, example = _signature(meta)
    assert [(c.name, c.type.name) for c in signature.inputs.inputs] == [
        ("tenure_months", "double"),
        ("contract", "string"),
    ]
    assert example is None
    assert _read_meta(str(tmp_path / "elsewhere")) is None
