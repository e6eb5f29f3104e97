"""DriftConfig: strict settings with named errors, light to import; the results it leads to are JSON."""

from __future__ import annotations

import builtins
import importlib
import json
import math
import sys
from typing import get_args

import pytest

from airflow_trainkit.config_model import build
from airflow_trainkit.drift.config import (
    CORRECTIONS,
    DEFAULT_MAX_ROWS,
    DriftConfig,
    MethodName,
    PerformanceMetric,
)
from airflow_trainkit.drift.methods import METHODS
from airflow_trainkit.drift.performance import METRICS
from airflow_trainkit.drift.results import ColumnResult, DriftResult

HEAVY = ("numpy", "pandas", "scipy", "evidently", "pyarrow", "sklearn")


def test_importing_the_settings_imports_nothing_heavy():
    """Import drift.config afresh (our modules only: a heavy library loaded by another test stays
    loaded) and record every import statement that runs; none may name a heavy library."""
    ours = {
        n: m for n, m in sys.modules.items() if n == "airflow_trainkit" or n.startswith("airflow_trainkit.")
    }
    before = set(sys.modules)
    attempted: list[str] = []
    real_import = builtins.__import__

    def recording(name, globals=None, locals=None, fromlist=(), level=0):
        attempted.append(name)
        return real_import(name, globals, locals, fromlist, level)

    for name in ours:
        del sys.modules[name]
    builtins.__import__ = recording
    try:
        fresh = importlib.import_module("airflow_trainkit.drift.config")
    finally:
        builtins.__import__ = real_import
        for name in [n for n in sys.modules if n == "airflow_trainkit" or n.startswith("airflow_trainkit.")]:
            del sys.modules[name]
        sys.modules.update(ours)  # the other tests keep the modules (and classes) they imported
    assert fresh.DriftConfig(target="y").target == "y"
    assert "airflow_trainkit.config_model" in attempted  # the recording saw our imports
    heavy = sorted({n for n in attempted if n.split(".")[0] in HEAVY})
    assert heavy == [], f"importing airflow_trainkit.drift.config imports {heavy}"
    assert not [n for n in set(sys.modules) - before if n.split(".")[0] in HEAVY]


def test_the_defaults_live_in_the_model():
    config = DriftConfig()
    assert config.model_dump() == {
        "columns": None,
        "method": None,
        "threshold": None,
        "drift_share": 0.5,
        "correction": "bh",
        "min_effect": 0.02,
        "target": None,
        "prediction": None,
        "performance_metric": None,
        "max_performance_drop": 0.05,
        "max_rows": DEFAULT_MAX_ROWS,
        "seed": 0,
    }


def test_one_list_of_names_for_methods_metrics_and_corrections():
    assert set(get_args(MethodName)) == set(METHODS)
    assert set(get_args(PerformanceMetric)) == set(METRICS)
    assert CORRECTIONS == ("bh", "bonferroni", "none")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"drift_share": 0}, "config.drift_share: Input should be greater than 0, got 0"),
        ({"drift_share": "0.3"}, "config.drift_share: Input should be a valid number, got '0.3'"),
        (
            {"correction": "holm"},
            "config.correction: Input should be 'bh', 'bonferroni' or 'none', got 'holm'",
        ),
        ({"method": "t-test"}, "config.method: Input should be 'ks', 'chisquare', 'psi', 'wasserstein' or "),
        ({"method": {"age": "t-test"}}, "config.method.age: Input should be 'ks', "),
        ({"threshold": 0}, "config.threshold: Input should be greater than 0, got 0"),
        ({"threshold": True}, "config.threshold: Input should be a valid number, got True"),
        ({"threshold": {"age": -1}}, "config.threshold.age: Input should be greater than 0, got -1"),
        ({"columns": "age"}, "config.columns: Input should be a valid list, got 'age'"),
        ({"columns": []}, "config.columns: List should have at least 1 item"),
        ({"min_effect": 1}, "config.min_effect: Input should be less than 1, got 1"),
        ({"max_rows": 10}, "config.max_rows: Input should be greater than or equal to 1000, got 10"),
        ({"max_rows": 1e6}, "config.max_rows: Input should be a valid integer, got 1000000.0"),
        ({"max_performance_drop": 1}, "config.max_performance_drop: Input should be less than 1, got 1"),
        ({"performance_metric": "auc"}, "config.performance_metric: Input should be 'accuracy', "),
        ({"on_drift": "fail"}, "config.on_drift: unknown key"),
        (
            {"performance_metric": "f1", "target": "y"},
            "config: performance_metric='f1' needs both target and prediction to be named",
        ),
    ],
)
def test_bad_settings_are_named_with_their_value(data, message):
    with pytest.raises(ValueError) as err:
        build(DriftConfig, data, prefix="config")
    assert str(err.value).startswith(message), str(err.value)


def test_settings_from_python_and_from_a_dict_are_the_same():
    data = {
        "columns": ("age", "region"),  # a tuple of names is a list of names
        "method": {"age": "psi"},
        "threshold": 0.2,
        "target": "churned",
        "prediction": "score",
        "performance_metric": "roc_auc",
        "max_rows": None,
        "seed": 3,
    }
    config = build(DriftConfig, data)
    assert config == DriftConfig(**data)
    assert config.columns == ["age", "region"] and config.threshold == 0.2
    assert config.aligned_columns == ("churned", "score")
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 4  # type: ignore[misc]


def _column(name: str, role: str, drifted: bool, statistic: float = 1.0) -> ColumnResult:
    return ColumnResult(
        column=name,
        role=role,
        kind="categorical",
        method="chisquare",
        statistic=statistic,
        value=0.0 if drifted else 0.9,
        threshold=0.05,
        effect=0.3 if drifted else 0.0,
        drifted=drifted,
    )


def test_counts_count_their_lists_and_no_infinity_is_text():
    result = DriftResult(
        [
            _column("a", "feature", True, statistic=math.inf),  # a category the reference never had
            _column("b", "feature", False),
            _column("c", "feature", False),
            _column("churned", "target", True),
        ],
        reference_rows=100,
        current_rows=100,
        drift_share=0.5,
        correction="bh",
        performance={"relative_drop": None, "drifted": True},
    )
    summary = result.summary()
    assert summary["drifted_count"] == len(summary["drifted_columns"]) == 2
    assert [(c["column"], c["role"]) for c in summary["drifted_columns"]] == [
        ("a", "feature"),
        ("churned", "target"),
    ]
    assert summary["columns_checked"] == 4
    assert summary["features_checked"] == 3 and summary["drifted_feature_count"] == 1
    assert summary["share_drifted"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["drifted_columns"][0]["statistic"] is None
    details = result.details()
    assert details["columns"][0]["statistic"] is None
    text = json.dumps(details, allow_nan=False)  # strict JSON: no Infinity, no NaN
    assert '"inf"' not in text
