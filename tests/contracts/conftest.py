"""Fixtures for the contracts tests: the demo contract, demo data files and a SQLite database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[2]
CHURN_CONTRACT = REPO / "example_dags" / "contracts" / "churn.yaml"


@pytest.fixture(scope="session")
def churn_contract() -> Path:
    return CHURN_CONTRACT


@pytest.fixture(scope="session")
def churn_frame():
    from airflow_trainkit.demo.data import make_churn_frame

    return make_churn_frame(rows=2000, seed=7)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contracts-data")


@pytest.fixture(scope="session")
def churn_parquet(churn_frame, data_dir: Path) -> str:
    path = data_dir / "churn.parquet"
    churn_frame.to_parquet(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def churn_sqlite(churn_frame, data_dir: Path) -> Path:
    """A real SQLite file with a clean ``churn`` table and a damaged ``churn_bad`` one."""
    path = data_dir / "warehouse.db"
    bad = churn_frame.copy()
    bad.loc[:9, "customer_id"] = None
    bad.loc[10:19, "age"] = 250
    with sqlite3.connect(path) as conn:
        churn_frame.to_sql("churn", conn, index=False)
        bad.to_sql("churn_bad", conn, index=False)
    return path


@pytest.fixture
def sqlite_conn_id(churn_sqlite: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection to the SQLite file, from an ``AIRFLOW_CONN_*`` variable."""
    monkeypatch.setenv("AIRFLOW_CONN_TRAINKIT_WAREHOUSE", f"sqlite:///{churn_sqlite}")
    return "trainkit_warehouse"
