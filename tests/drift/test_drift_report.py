"""Reports written whole and readable; reference profiles cached per file version; SQL windows."""

from __future__ import annotations

import json
import os
import sqlite3
from html.parser import HTMLParser

import numpy as np
import pytest
from drift_testing import make_frame

from airflow_trainkit import storage
from airflow_trainkit.drift.check import profile_cache_dir, run_check
from airflow_trainkit.drift.engine import DriftConfig
from airflow_trainkit.drift.profile import ProfileCache
from airflow_trainkit.drift.tables import FrameTable, open_table


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def _write(frame, path):
    frame.to_parquet(path, index=False)
    return str(path)


def test_the_demo_tables_check_writes_a_whole_report_that_opens(tmp_path):
    from airflow_trainkit.demo.data import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, TARGET, write_churn_dataset

    ref = write_churn_dataset(tmp_path / "train.parquet", rows=6000, seed=7)
    cur = write_churn_dataset(tmp_path / "week.csv", rows=3000, seed=8, drift=0.5)
    report_uri = str(tmp_path / "reports" / "week1")
    config = DriftConfig(columns=NUMERIC_COLUMNS + CATEGORICAL_COLUMNS, target=TARGET, drift_share=0.3)
    result = run_check(
        reference=open_table(str(ref)),
        current=open_table(str(cur)),
        config=config,
        reference_uri=str(ref),
        report_uri=report_uri,
    )
    summary = result.summary()

    assert {c["column"] for c in summary["drifted_columns"]} == {
        "monthly_charges",
        "support_calls",
        "data_usage_gb",
    }
    assert summary["drift"] is True and summary["report_uri"] == report_uri
    assert len(json.dumps(summary)) < 4000 and "<html" not in json.dumps(summary).lower()
    folder = storage.local_path(report_uri)
    assert sorted(p.name for p in folder.iterdir()) == [
        "_SUCCESS",
        "report.html",
        "report.json",
        "summary.json",
    ]
    parser = _Text()
    parser.feed((folder / "report.html").read_text())
    text = " ".join(parser.parts)
    assert "trainkit drift check: DRIFT" in text and "built on a sample" in text
    evidently_json = json.loads((folder / "report.json").read_text())
    assert any(m["config"]["type"].endswith("ValueDrift") for m in evidently_json["metrics"])
    details = json.loads((folder / "summary.json").read_text())
    assert {c["column"] for c in details["columns"]} >= {"tenure_months", "region", "churned"}


def test_report_is_replaced_whole_on_a_rerun(tmp_path):
    ref = _write(make_frame(3000, numeric=3, seed=1), tmp_path / "ref.parquet")
    cur = _write(make_frame(3000, numeric=3, seed=2), tmp_path / "cur.parquet")
    report_uri = str(tmp_path / "report")
    kwargs = dict(
        reference=open_table(ref),
        current=open_table(cur),
        config=DriftConfig(),
        reference_uri=ref,
        report_uri=report_uri,
    )
    run_check(**kwargs)
    (tmp_path / "report" / "stale.txt").write_text("from an older run")
    run_check(**kwargs)
    assert not (tmp_path / "report" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []


def test_reference_profile_is_cached_per_file_version(tmp_path):
    path = tmp_path / "ref.parquet"
    cur = make_frame(5000, numeric=3, seed=2)
    _write(make_frame(5000, numeric=3, seed=1), path)
    reads = []

    def reference():
        def read():
            reads.append(1)
            return storage.read_table(str(path))

        return FrameTable(read=read)

    def check(**config):
        return run_check(
            reference=reference(), current=cur, config=DriftConfig(**config), reference_uri=str(path)
        )

    first = check()
    second = check()
    assert len(reads) == 1  # the second check read nothing of the reference
    assert [c.value for c in second.columns] == [c.value for c in first.columns]
    cache = ProfileCache.for_uri(
        str(path), profile_cache_dir(), max_rows=5_000_000, seed=0, report_rows=10_000
    )
    cached = cache.load("x0", aligned=False)
    assert isinstance(cached.profile.values, np.memmap)
    assert cache.load("cat", aligned=False).profile.counts == {
        k: int(v) for k, v in make_frame(5000, numeric=3, seed=1)["cat"].value_counts().items()
    }

    # Other columns of the same file are added to its cache as they are first asked for.
    assert check(columns=["x1"]).columns[0].column == "x1"
    _write(make_frame(5000, numeric=3, seed=9), path)
    os.utime(path, ns=(1, 1))  # a new version of the file, even within the same second
    third = check()
    assert len(reads) == 2
    assert [c.value for c in third.columns] != [c.value for c in first.columns]


def test_a_damaged_cache_entry_is_prepared_again(tmp_path):
    ref = _write(make_frame(3000, numeric=2, seed=1), tmp_path / "ref.parquet")
    cur = make_frame(3000, numeric=2, seed=2)
    first = run_check(reference=open_table(ref), current=cur, config=DriftConfig(), reference_uri=ref)
    cache = ProfileCache.for_uri(ref, profile_cache_dir(), max_rows=5_000_000, seed=0, report_rows=10_000)
    for values in cache.folder.glob("*.values.npy"):
        values.write_bytes(b"truncated")
    second = run_check(reference=open_table(ref), current=cur, config=DriftConfig(), reference_uri=ref)
    assert [c.value for c in second.columns] == [c.value for c in first.columns]


def test_sql_windows_through_an_airflow_connection(tmp_path, monkeypatch):
    from airflow_trainkit.operators.drift import read_sql

    db = tmp_path / "events.db"
    with sqlite3.connect(db) as conn:
        make_frame(20_000, numeric=2, seed=1).assign(day="2026-01-01").to_sql("events", conn, index=False)
        make_frame(20_000, numeric=2, seed=2, shift={"x1": 0.5}).assign(day="2026-01-08").to_sql(
            "events", conn, index=False, if_exists="append"
        )
    monkeypatch.setenv("AIRFLOW_CONN_DRIFT_EVENTS", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    result = run_check(
        reference=read_sql("drift_events", "SELECT x0, x1, cat FROM events WHERE day = '2026-01-01'"),
        current=read_sql("drift_events", "SELECT x0, x1, cat FROM events WHERE day = '2026-01-08'"),
        config=DriftConfig(),
    )
    assert {c.column for c in result.columns if c.drifted} == {"x1"}
    with pytest.raises(OSError, match="cannot read SQL from connection 'drift_events'"):
        read_sql("drift_events", "SELECT nope FROM missing_table")


def test_report_shows_a_bounded_number_of_columns_drifted_first(tmp_path):
    from airflow_trainkit.drift.report import DEFAULT_REPORT_COLUMNS

    ref = _write(make_frame(5000, numeric=30, seed=1), tmp_path / "ref.parquet")
    cur = _write(
        make_frame(5000, numeric=30, seed=2, shift={"x4": 0.3, "x17": 0.3}), tmp_path / "cur.parquet"
    )
    report_uri = str(tmp_path / "report")
    result = run_check(
        reference=open_table(ref),
        current=open_table(cur),
        config=DriftConfig(),
        reference_uri=ref,
        report_uri=report_uri,
    )
    assert {c.column for c in result.columns if c.drifted} == {"x4", "x17"}
    evidently_json = json.loads((tmp_path / "report" / "report.json").read_text())
    shown = [
        m["config"]["column"] for m in evidently_json["metrics"] if m["config"]["type"].endswith("ValueDrift")
    ]
    assert len(shown) == DEFAULT_REPORT_COLUMNS
    assert set(shown[:2]) == {"x4", "x17"}
    details = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert len(details["columns"]) == 32
    assert (
        f"shows {DEFAULT_REPORT_COLUMNS} of the 32 tested columns"
        in (tmp_path / "report" / "report.html").read_text()
    )


def test_a_csv_reference_read_for_some_columns_does_not_narrow_its_cache(tmp_path):
    ref = str(tmp_path / "ref.csv")
    make_frame(3000, numeric=3, seed=1).to_csv(ref, index=False)
    cur = make_frame(3000, numeric=3, seed=2)

    def check(columns):
        return run_check(
            reference=open_table(ref, columns=columns),
            current=cur,
            config=DriftConfig(columns=columns),
            reference_uri=ref,
        )

    assert [c.column for c in check(["x1"]).columns] == ["x1"]
    assert [c.column for c in check(None).columns] == ["x0", "x1", "x2", "cat", "city"]
