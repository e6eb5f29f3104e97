"""The engine on real frames: shifted columns flagged exactly, unchanged data flagged never, bad input named."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from drift_testing import make_frame

from airflow_trainkit.drift.engine import DriftConfig, evaluate

if TYPE_CHECKING:
    import pandas as pd


def _check(reference: pd.DataFrame, current: pd.DataFrame, **config):
    return evaluate(reference, current, DriftConfig(**config))


def _drifted(result) -> set[str]:
    return {c.column for c in result.columns if c.drifted}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shifted_columns_and_only_those_are_flagged(seed):
    ref = make_frame(20_000, numeric=12, seed=seed)
    cur = make_frame(20_000, numeric=12, seed=seed + 100, shift={"x2": 0.1, "x7": 0.1, "cat": 0.08})
    result = _check(ref, cur)
    assert _drifted(result) == {"x2", "x7", "cat"}
    summary = result.summary()
    assert {c["column"] for c in summary["drifted_columns"]} == {"x2", "x7", "cat"}
    methods_used = {c["column"]: c["method"] for c in summary["drifted_columns"]}
    assert methods_used == {"x2": "ks", "x7": "ks", "cat": "chisquare"}
    assert summary["dataset_drift"] is False  # 3 of 14 < 0.5, Evidently's rule
    assert summary["rows"] == {
        "reference": 20_000,
        "current": 20_000,
        "reference_evaluated": 20_000,
        "current_evaluated": 20_000,
    }


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_unshifted_data_flags_nothing(seed):
    result = _check(make_frame(20_000, numeric=20, seed=seed), make_frame(20_000, numeric=20, seed=seed + 1))
    assert _drifted(result) == set()
    assert result.drift is False


def test_defaults_do_not_cry_wolf_where_raw_p_values_do():
    # 50 unchanged columns: at p < 0.05 each, about 2.5 are flagged by chance on every run.
    ref, cur = make_frame(20_000, numeric=50, seed=21), make_frame(20_000, numeric=50, seed=22)
    raw = _check(ref, cur, correction="none", min_effect=0.0)
    assert len(_drifted(raw)) >= 1
    assert _drifted(_check(ref, cur)) == set()


def test_dataset_drift_uses_drift_share_like_evidently():
    ref = make_frame(5000, numeric=4, seed=1)
    cur = make_frame(5000, numeric=4, seed=2, shift={"x0": 1.0, "x1": 1.0, "x2": 1.0})
    # 3 of 6 feature columns drift: share 0.5 >= 0.5.
    assert _check(ref, cur).dataset_drift is True
    assert _check(ref, cur, drift_share=0.6).dataset_drift is False


def test_per_column_methods_and_thresholds():
    ref = make_frame(10_000, numeric=3, seed=1)
    cur = make_frame(10_000, numeric=3, seed=2, shift={"x0": 0.3})
    result = _check(
        ref, cur, method={"x0": "wasserstein", "x1": "psi", "city": "jensenshannon"}, threshold={"x0": 0.2}
    )
    by = {c.column: c for c in result.columns}
    assert (by["x0"].method, by["x0"].threshold, by["x0"].drifted) == ("wasserstein", 0.2, True)
    assert (by["x1"].method, by["x1"].drifted) == ("psi", False)
    assert by["city"].method == "jensenshannon"
    assert by["x2"].method == "ks" and by["cat"].method == "chisquare"
    with pytest.raises(ValueError, match="method 'ks' cannot test categorical column 'city'"):
        _check(ref, cur, method={"city": "ks"})


def test_evidently_decisions_are_reproduced_without_correction():
    """With correction='none' and no floor, the verdicts are Evidently's DataDriftPreset's own."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref = make_frame(3000, numeric=6, seed=4)
    cur = make_frame(2500, numeric=6, seed=5, shift={"x1": 0.15, "x4": 0.08, "cat": 0.05})
    methods_ = {"x3": "psi", "x5": "wasserstein", "city": "jensenshannon"}
    result = _check(ref, cur, correction="none", min_effect=0.0, method=methods_)
    per_method = {c.column: c.method for c in result.columns}
    definition = DataDefinition(
        numerical_columns=[f"x{i}" for i in range(6)], categorical_columns=["cat", "city"]
    )
    snapshot = Report(
        [
            DataDriftPreset(
                per_column_method=per_method,
                per_column_threshold={c.column: c.threshold for c in result.columns},
            )
        ]
    ).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    values = {}
    count = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            values[config["column"]] = metric["value"]
        elif config["type"].endswith("DriftedColumnsCount"):
            count = metric["value"]
    for col in result.columns:
        assert col.value == pytest.approx(values[col.column], rel=1e-9, abs=1e-300), col.column
    assert count["count"] == len(result.drifted_features)
    assert count["share"] == pytest.approx(result.share_drifted)


def test_label_prediction_and_performance_drift():
    rng = np.random.default_rng(0)
    ref = make_frame(8000, numeric=3, seed=1)
    ref["label"] = (ref["x0"] > 0).astype(int)
    ref["pred"] = ref["label"].where(rng.random(8000) > 0.05, 1 - ref["label"])  # 95 % right
    cur = make_frame(8000, numeric=3, seed=2)
    cur["label"] = (cur["x0"] > 0).astype(int)
    cur["pred"] = cur["label"].where(rng.random(8000) > 0.30, 1 - cur["label"])  # 70 % right
    result = _check(ref, cur, target="label", prediction="pred", performance_metric="accuracy")
    summary = result.summary()
    assert summary["performance"]["metric"] == "accuracy"
    assert summary["performance"]["reference"] == pytest.approx(0.95, abs=0.01)
    assert summary["performance"]["current"] == pytest.approx(0.70, abs=0.02)
    assert summary["performance"]["drifted"] is True
    assert summary["label_drift"] is False
    assert summary["dataset_drift"] is False
    assert result.drift is True  # performance drift alone counts
    assert {c.column for c in result.features} == {"x0", "x1", "x2", "cat", "city"}


def test_bad_input_is_named():
    ref = make_frame(2000, numeric=3, seed=1)
    with pytest.raises(ValueError, match=r"missing from the current window: \['x2'\]"):
        _check(ref, ref.drop(columns=["x2"]))
    with pytest.raises(ValueError, match=r"not in the reference window: \['extra'\]"):
        _check(ref, ref.assign(extra=1.0))
    with pytest.raises(ValueError, match="column 'x9' is missing from the reference window"):
        _check(ref, ref, columns=["x0", "x9"])
    with pytest.raises(ValueError, match="column 'x1' is all null in the current window"):
        _check(ref, ref.assign(x1=np.nan))
    strings = ref.assign(x0=ref["x0"].astype(object))
    strings.loc[5, "x0"] = "n/a"
    with pytest.raises(
        ValueError,
        match=r"column 'x0' is numeric in the reference but the current window holds 1 non-numeric value\(s\), e.g. 'n/a'",
    ):
        _check(ref, strings)
    # Settings are refused when the DriftConfig is built, before any data is read.
    with pytest.raises(ValueError, match=r"drift_share\n  Input should be greater than 0"):
        _check(ref, ref, drift_share=0)
    with pytest.raises(ValueError, match=r"method\.str\n  Input should be 'ks', 'chisquare'"):
        _check(ref, ref, method="t-test")


def test_numeric_text_from_csv_is_accepted():
    ref = make_frame(2000, numeric=2, seed=1)
    cur = ref.assign(x0=ref["x0"].map(str))
    assert _drifted(_check(ref, cur)) == set()


def test_empty_current_window_is_reported_not_judged():
    ref = make_frame(2000, numeric=2, seed=1)
    result = _check(ref, ref.iloc[:0])
    summary = result.summary()
    assert summary["empty_current"] is True
    assert summary["drift"] is False and summary["drifted_columns"] == []
    assert summary["rows"]["current"] == 0


def test_max_rows_samples_with_a_fixed_seed():
    ref = make_frame(30_000, numeric=2, seed=1)
    cur = make_frame(30_000, numeric=2, seed=2, shift={"x1": 0.2})
    first = evaluate(ref, cur, DriftConfig(max_rows=10_000))
    second = evaluate(ref, cur, DriftConfig(max_rows=10_000))
    assert first.summary() == second.summary()
    assert first.summary()["rows"] == {
        "reference": 30_000,
        "current": 30_000,
        "reference_evaluated": 10_000,
        "current_evaluated": 10_000,
    }
    assert _drifted(first) == {"x1"}


def test_parquet_files_read_a_column_at_a_time_give_the_frames_verdicts(tmp_path):
    from airflow_trainkit.drift.tables import ParquetTable, open_table

    ref = make_frame(30_000, numeric=4, seed=1)
    cur = make_frame(30_000, numeric=4, seed=2, shift={"x3": 0.1, "cat": 0.05})
    ref.to_parquet(tmp_path / "ref.parquet", index=False)
    cur.set_index(cur.index + 7).to_parquet(tmp_path / "cur.parquet")  # pandas stores this index
    tables = open_table(str(tmp_path / "ref.parquet")), open_table(str(tmp_path / "cur.parquet"))
    assert all(isinstance(t, ParquetTable) for t in tables)
    config = DriftConfig(max_rows=20_000)
    from_files = evaluate(*tables, config)
    assert from_files.summary() == evaluate(ref, cur, config).summary()
    assert _drifted(from_files) == {"x3", "cat"}
    assert from_files.summary()["rows"]["current_evaluated"] == 20_000
