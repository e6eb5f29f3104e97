"""The shared words (airflow_trainkit.vocabulary) and the settings-model base (config_model)."""

from __future__ import annotations

import pytest
from pydantic import Field, model_validator

from airflow_trainkit.config_model import StrictModel, build, problem_at
from airflow_trainkit.vocabulary import (
    FailurePolicy,
    TrainkitDeprecationWarning,
    failure_policy,
    renamed_parameter,
)


@pytest.mark.parametrize("word", ["fail", "warn", "skip", FailurePolicy.SKIP])
def test_the_three_policy_words(word):
    assert failure_policy(word) == FailurePolicy(word)


def test_an_old_spelling_works_with_a_warning_naming_the_new_one():
    with pytest.warns(
        TrainkitDeprecationWarning, match="on_drift='continue' is deprecated; use on_drift='warn'"
    ):
        assert failure_policy("continue", field="on_drift", old_spellings={"continue": "warn"}) == "warn"


def test_an_unknown_policy_names_field_value_and_choices():
    with pytest.raises(ValueError, match=r"on_failure must be one of 'fail', 'warn', 'skip', got 'ignore'"):
        failure_policy("ignore")


def test_renamed_parameter():
    assert renamed_parameter("Op", "conn_id", "mlflow_conn_id", None, "x") == "x"
    with pytest.warns(
        TrainkitDeprecationWarning, match=r"Op\(conn_id=...\) is deprecated; use mlflow_conn_id"
    ):
        assert renamed_parameter("Op", "conn_id", "mlflow_conn_id", "old", None) == "old"
    with pytest.raises(ValueError, match="pass mlflow_conn_id only"):
        renamed_parameter("Op", "conn_id", "mlflow_conn_id", "old", "new")


class _Job(StrictModel):
    command: list[str] = Field(min_length=1)
    count: int = 1


def test_model_errors_name_every_field_and_value():
    with pytest.raises(ValueError) as caught:
        build(_Job, {"command": [], "count": "2", "colour": "red"}, prefix="spec")
    message = str(caught.value)
    assert "spec.command:" in message and "got []" in message
    assert "spec.count:" in message and "got '2'" in message  # strict: no silent "2" -> 2
    assert "spec.colour: unknown key" in message


def test_model_errors_carry_the_file_and_line():
    with pytest.raises(ValueError, match=r"^contract\.yml:7: count: .*got 1\.5$"):
        build(_Job, {"command": ["x"], "count": 1.5}, source="contract.yml", lines={("count",): 7})


class _Pair(StrictModel):
    names: list[str]

    @model_validator(mode="after")
    def _distinct(self) -> _Pair:
        if len(set(self.names)) < len(self.names):
            raise problem_at(("names", len(self.names) - 1), "listed twice")
        return self


def test_a_model_validator_can_name_one_key_and_its_line():
    with pytest.raises(ValueError, match=r"^c\.yml:3: names\[1\]: listed twice$"):
        build(_Pair, {"names": ["a", "a"]}, source="c.yml", lines={(): 1, ("names",): 2, ("names", 1): 3})


class _Secretive(StrictModel):
    env: dict[str, str] = {}
    count: int = 1

    @model_validator(mode="after")
    def _small(self) -> _Secretive:
        if self.count > 2:
            raise ValueError("count must be at most 2")
        return self


def test_a_model_level_error_does_not_repeat_the_input():
    with pytest.raises(ValueError) as caught:
        build(_Secretive, {"env": {"TOKEN": "s3cr3t"}, "count": 3}, prefix="spec")
    assert str(caught.value) == "spec: count must be at most 2"
    assert "s3cr3t" not in str(caught.value)
