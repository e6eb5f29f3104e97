"""DriftCheckOperator.execute on real files: what each on_failure does, and the outlet event it adds."""

from __future__ import annotations

import json

import pytest

from airflow_trainkit._compat import AirflowSkipException, AssetAlias
from airflow_trainkit.demo.data import write_churn_dataset
from airflow_trainkit.drift.config import DriftConfig
from airflow_trainkit.exceptions import DriftDetected
from airflow_trainkit.operators.drift import DriftCheckOperator, drift_alias, drift_asset
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age", "contract", "region"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    return {
        "reference": str(write_churn_dataset(root / "ref.parquet", rows=8000, seed=7)),
        "drifted": str(write_churn_dataset(root / "drifted.parquet", rows=4000, seed=8, drift=0.5)),
        "same": str(write_churn_dataset(root / "same.parquet", rows=4000, seed=9)),
    }


def _context():
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return {"run_id": "manual__2026-03-02", "dag": None, "outlet_events": OutletEventAccessors()}


def _op(tables, current, config=None, **kwargs):
    return DriftCheckOperator(
        task_id="check",
        reference=tables["reference"],
        current=tables[current],
        config=config or {"columns": FEATURES, "drift_share": 0.3},
        **kwargs,
    )


def test_constructor_only_assigns_and_declares_the_alias():
    op = DriftCheckOperator(
        task_id="c", reference="{{ x }}", current="{{ y }}", on_failure="bogus", model_name="m"
    )
    assert op.on_failure == "bogus"  # validated in execute, not here
    assert op.outlets == [AssetAlias(name="trainkit_drift__m")]
    assert drift_asset("m").uri == "x-trainkit://m/drift"


def test_fail_stores_the_report_then_raises(tables, tmp_path):
    report = tmp_path / "report"
    op = _op(tables, "drifted", report_uri=str(report))
    with pytest.raises(DriftDetected) as err:
        op.execute(_context())
    assert {c["column"] for c in err.value.drifted_columns} == {
        "monthly_charges",
        "support_calls",
        "data_usage_gb",
    }
    assert err.value.report_uri == str(report)
    assert json.loads((report / "summary.json").read_text())["drift"] is True


def test_skip_marks_the_task_skipped(tables):
    with pytest.raises(AirflowSkipException):
        _op(tables, "drifted", on_failure="skip").execute(_context())


def test_warn_adds_the_asset_event_only_on_drift(tables):
    context = _context()
    config = DriftConfig(columns=FEATURES, drift_share=0.3)  # a model, or the same as a dict
    summary = _op(tables, "drifted", config, on_failure="warn", model_name="churn").execute(context)
    events = context["outlet_events"][drift_alias("churn")].asset_alias_events
    assert len(events) == 1
    assert events[0].dest_asset_key.uri == "x-trainkit://churn/drift"
    assert events[0].extra == summary and summary["drift"] is True
    assert summary["report_uri"].endswith("/reports/drift/no_dag/manual__2026-03-02/check")

    quiet = _context()
    summary = _op(tables, "same", on_failure="warn", model_name="churn").execute(quiet)
    assert summary["drift"] is False and summary["drifted_columns"] == []
    assert quiet["outlet_events"][drift_alias("churn")].asset_alias_events == []


def test_bad_arguments_are_named_in_execute(tables):
    with pytest.raises(ValueError, match="on_failure must be one of 'fail', 'warn', 'skip', got 'ignore'"):
        _op(tables, "same", on_failure="ignore").execute(_context())
    with pytest.raises(ValueError, match=r"config\.correction: Input should be .*, got 'holm'"):
        _op(tables, "same", {"correction": "holm"}).execute(_context())
    with pytest.raises(ValueError, match="current must be a table URI or a SQL query"):
        DriftCheckOperator(task_id="c", reference=tables["reference"], current="  ").execute(_context())


def test_the_old_spellings_still_check_with_a_warning(tables):
    """on_drift="continue" and the settings as keyword arguments, as before this release."""
    with pytest.warns(TrainkitDeprecationWarning) as caught:
        op = DriftCheckOperator(
            task_id="check",
            reference=tables["reference"],
            current=tables["drifted"],
            columns=FEATURES,
            drift_share=0.3,
            on_drift="continue",
            model_name="churn",
        )
    assert {str(w.message).split(" is deprecated")[0] for w in caught} == {
        "DriftCheckOperator(on_drift=...)",
        "on_failure='continue'",
        "DriftCheckOperator(columns=..., drift_share=...)",
    }
    context = _context()
    summary = op.execute(context)
    assert summary["drift"] is True
    assert len(context["outlet_events"][drift_alias("churn")].asset_alias_events) == 1


def test_an_empty_csv_as_the_current_window_is_named_as_such(tables, tmp_path):
    empty = tmp_path / "week.csv"
    empty.write_bytes(b"")  # an export that wrote nothing, not even the header
    op = _op({**tables, "empty": str(empty)}, "empty", report_uri=str(tmp_path / "report"))
    with pytest.raises(
        OSError, match=r"the current window: cannot read table '.*week\.csv': the file is empty"
    ):
        op.execute(_context())
    missing = _op({**tables, "gone": str(tmp_path / "gone.parquet")}, "gone")
    with pytest.raises(OSError, match=r"^the current window: cannot read table '.*gone\.parquet'"):
        missing.execute(_context())
