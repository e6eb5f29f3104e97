"""The registry operators without a registry: what is templated, the old spellings, and the checks
that run before the registry is called (the gate itself runs against real MLflow in tests/registry)."""

from __future__ import annotations

import argparse
import inspect
from unittest.mock import Mock

import pytest
from trainkit_testing import make_context

from airflow_trainkit.hooks.mlflow import MlflowHook
from airflow_trainkit.operators.registry import (
    PromoteModelOperator,
    RegisterModelOperator,
    RollbackChampionOperator,
)
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

OPERATORS = [RegisterModelOperator, PromoteModelOperator, RollbackChampionOperator]
REQUIRED = {"model_name": "churn", "training_result": {}}


def make(cls, **kwargs):
    params = inspect.signature(cls.__init__).parameters
    return cls(task_id="t", **{k: v for k, v in REQUIRED.items() if k in params}, **kwargs)


@pytest.mark.parametrize("cls", OPERATORS)
def test_conn_id_still_works_with_a_warning(cls):
    with pytest.warns(
        TrainkitDeprecationWarning, match=rf"{cls.__name__}\(conn_id=...\) is deprecated; use mlflow_conn_id"
    ):
        op = make(cls, conn_id="mlflow_prod")
    assert op.mlflow_conn_id == "mlflow_prod"
    assert op.hook.conn_id == "mlflow_prod" and op.hook is op.hook


def test_conn_id_and_mlflow_conn_id_at_once_are_refused():
    with pytest.raises(ValueError, match="pass mlflow_conn_id only"):
        make(RollbackChampionOperator, conn_id="a", mlflow_conn_id="b")


@pytest.mark.parametrize("old", ["fail", "skip"])
def test_on_reject_still_works_with_a_warning(old):
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"PromoteModelOperator\(on_reject=...\) is deprecated; use on_failure",
    ):
        op = make(PromoteModelOperator, on_reject=old)
    assert op.on_failure == old


def rejected_before_the_registry(op: PromoteModelOperator, message: str) -> None:
    op.hook = Mock(spec=MlflowHook)
    with pytest.raises(ValueError, match=message):
        op.execute(make_context(task_id="t"))
    op.hook.get_client.assert_not_called()


def test_an_unknown_failure_policy_is_refused_before_the_registry_is_called():
    rejected_before_the_registry(
        make(PromoteModelOperator, on_failure="continue"),
        "on_failure must be one of 'fail', 'warn', 'skip', got 'continue'",
    )


def test_a_bad_tolerance_is_refused_before_the_registry_is_called():
    rejected_before_the_registry(
        make(PromoteModelOperator, tolerance="{{ params.tolerance }}"),
        r"tolerance must be a number, got '\{\{ params.tolerance \}\}'",
    )


def test_the_cli_takes_mlflow_conn_id_and_still_the_old_flag(capsys):
    from airflow_trainkit.registry.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["registry", "rollback", "churn", "--mlflow-conn-id", "mlflow_prod"])
    assert args.mlflow_conn_id == "mlflow_prod"
    assert capsys.readouterr().err == ""
    args = parser.parse_args(["registry", "aliases", "churn", "--conn-id", "mlflow_old"])
    assert args.mlflow_conn_id == "mlflow_old"
    assert "--conn-id is deprecated; use --mlflow-conn-id" in capsys.readouterr().err
