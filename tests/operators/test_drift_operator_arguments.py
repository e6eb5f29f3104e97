"""DriftCheckOperator's arguments without running a check: one config, the old spellings folded in
with a warning, what is templated."""

from __future__ import annotations

import inspect

import pytest

from airflow_trainkit.drift.config import DriftConfig
from airflow_trainkit.operators.drift import DriftCheckOperator
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning


def _op(**kwargs):
    return DriftCheckOperator(task_id="check", reference="ref.parquet", current="cur.parquet", **kwargs)


def test_the_settings_are_one_config_not_keyword_arguments():
    own = set(inspect.signature(DriftCheckOperator.__init__).parameters)
    assert not own & set(DriftConfig.model_fields)
    assert _op().config is None  # DriftConfig's defaults, applied in execute


def test_a_templated_config_dict_is_rendered():
    from airflow.sdk import DAG

    with DAG("drift_args", schedule=None):
        op = _op(config={"target": "{{ params.label }}", "columns": ["{{ params.label }}_prior"]})
    op.render_template_fields({"params": {"label": "churned"}})
    assert op.config == {"target": "churned", "columns": ["churned_prior"]}
    assert op._checked_config() == DriftConfig(target="churned", columns=["churned_prior"])


def test_a_config_model_is_used_as_it_is():
    from airflow.sdk import DAG

    config = DriftConfig(target="churned", drift_share=0.3)
    with DAG("drift_model", schedule=None):
        op = _op(config=config)
    op.render_template_fields({})  # a model is not rendered: it passes through whole
    assert op._checked_config() is config
    assert _op()._checked_config() == DriftConfig()
    with pytest.raises(ValueError, match="config must be a DriftConfig or a dict, got 'churned'"):
        _op(config="churned")._checked_config()


def test_old_settings_keywords_fold_into_the_config_with_a_warning():
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"DriftCheckOperator\(max_rows=..., target=...\) is deprecated; pass them in config",
    ):
        op = _op(config={"drift_share": 0.3}, target="churned", max_rows=None)
    assert op.config == {"drift_share": 0.3, "target": "churned", "max_rows": None}
    with pytest.warns(TrainkitDeprecationWarning, match=r"DriftCheckOperator\(seed=...\)"):
        op = _op(config=DriftConfig(target="churned"), seed=4)
    assert op._checked_config() == DriftConfig(target="churned", seed=4)


@pytest.mark.parametrize("config", [{"target": "a"}, DriftConfig(target="a")])
def test_a_setting_given_both_ways_is_refused_by_name(config):
    with (
        pytest.warns(TrainkitDeprecationWarning),
        pytest.raises(ValueError, match="target given both in config and as a keyword argument"),
    ):
        _op(config=config, target="b")


def test_on_drift_is_on_failure_and_continue_is_warn():
    assert _op().on_failure == "fail"
    with pytest.warns(
        TrainkitDeprecationWarning, match=r"on_failure='continue' is deprecated; use on_failure='warn'"
    ):
        assert _op(on_failure="continue").on_failure == "warn"
    with pytest.warns(TrainkitDeprecationWarning, match=r"DriftCheckOperator\(on_drift=...\) is deprecated"):
        assert _op(on_drift="skip").on_failure == "skip"


def test_conn_ids_are_named_for_the_database():
    op = _op(reference_database_conn_id="warehouse", current_database_conn_id="lake")
    assert (op.reference_database_conn_id, op.current_database_conn_id) == ("warehouse", "lake")
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"DriftCheckOperator\(reference_conn_id=...\) is deprecated; use reference_database_conn_id",
    ):
        assert _op(reference_conn_id="warehouse").reference_database_conn_id == "warehouse"
    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"DriftCheckOperator\(current_conn_id=...\) is deprecated; use current_database_conn_id",
    ):
        assert _op(current_conn_id="lake").current_database_conn_id == "lake"
    with pytest.raises(ValueError, match="pass current_database_conn_id only"):
        _op(current_conn_id="lake", current_database_conn_id="lake")


def test_bad_inputs_are_named_in_execute():
    with pytest.raises(ValueError, match="cache_reference must be True or False, got 'no'"):
        _op(cache_reference="no")._check_inputs()
    with pytest.raises(
        ValueError, match="reference_database_conn_id must be a non-empty string or None, got ''"
    ):
        _op(reference_database_conn_id="")._check_inputs()
