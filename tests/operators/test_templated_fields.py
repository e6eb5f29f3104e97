"""Every parameter a user passes to an operator or sensor is templated, or listed here with the
reason it cannot be: a setting that has to be known when the DAG is parsed, or one that is not a
value at all. A new parameter fails this test until it is one or the other."""

from __future__ import annotations

import importlib
import inspect

import pytest

from airflow_trainkit.get_provider_info import get_provider_info

_HOW = "decides how the task waits, fixed when the DAG is parsed; a rendered 'False' would be a true string"

# (class name, parameter) -> why it is not templated.
UNTEMPLATED: dict[tuple[str, str], str] = {
    ("TrainModelOperator", "deferrable"): _HOW,
    ("TrainingJobSensor", "deferrable"): _HOW,
    ("ModelVersionSensor", "deferrable"): _HOW,
    ("TuneModelOperator", "deferrable"): _HOW,
    (
        "TuneModelOperator",
        "track_in_mlflow",
    ): "a bool the task reads before any trial starts (a rendered 'False' would be true)",
    (
        "DriftCheckOperator",
        "model_name",
    ): "builds the task's outlets (the drift asset alias) when the DAG is parsed",
}

# Deprecated names: __init__ copies their value into the new, templated parameter, so a template
# passed under the old name is still rendered.
DEPRECATED: dict[tuple[str, str], str] = {
    ("TrainModelOperator", "conn_id"): "backend_conn_id",
    ("TrainingJobSensor", "conn_id"): "backend_conn_id",
    ("ValidateDataOperator", "conn_id"): "database_conn_id",
    ("RegisterModelOperator", "conn_id"): "mlflow_conn_id",
    ("PromoteModelOperator", "conn_id"): "mlflow_conn_id",
    ("PromoteModelOperator", "on_reject"): "on_failure",
    ("RollbackChampionOperator", "conn_id"): "mlflow_conn_id",
    ("ModelVersionSensor", "conn_id"): "mlflow_conn_id",
    ("CompareTrainingCostsOperator", "providers"): "backends",
    ("CompareTrainingCostsOperator", "pick_from"): "pick_from_backends",
    ("CompareTrainingCostsOperator", "max_age_days"): "max_price_age",
    ("RefreshPriceCatalogOperator", "providers"): "backends",
}


def _operator_classes() -> list[type]:
    info = get_provider_info()
    modules = [
        m for kind in ("operators", "sensors") for entry in info[kind] for m in entry["python-modules"]
    ]
    classes = []
    for name in modules:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == name
                and not cls.__name__.startswith("_")
                and hasattr(cls, "template_fields")
            ):
                classes.append(cls)
    return classes


CLASSES = _operator_classes()


def _own_parameters(cls: type) -> list[str]:
    names = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("airflow_trainkit."):
            break  # BaseOperator's own parameters (task_id, retries, ...) are Airflow's
        for parameter in list(inspect.signature(klass.__init__).parameters.values())[1:]:
            if (
                parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
                and parameter.name not in names
            ):
                names.append(parameter.name)
    return names


def test_the_walk_finds_every_operator_and_sensor():
    assert {"TrainModelOperator", "ValidateDataOperator", "DriftCheckOperator", "TrainingJobSensor"} <= {
        cls.__name__ for cls in CLASSES
    }


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_parameter_is_templated_or_has_a_reason(cls):
    missing = [
        name
        for name in _own_parameters(cls)
        if name not in cls.template_fields
        and (cls.__name__, name) not in UNTEMPLATED
        and (cls.__name__, name) not in DEPRECATED
    ]
    assert missing == [], f"{cls.__name__}: template these, or list them in UNTEMPLATED with the reason"


def test_every_listed_reason_is_for_a_parameter_that_exists_untemplated():
    by_name = {cls.__name__: cls for cls in CLASSES}
    for (owner, name), reason in {**UNTEMPLATED, **DEPRECATED}.items():
        cls = by_name[owner]
        assert name in _own_parameters(cls) and name not in cls.template_fields, (owner, name)
        assert reason.strip()
    for (owner, _), new in DEPRECATED.items():
        assert new in by_name[owner].template_fields, (owner, new)
