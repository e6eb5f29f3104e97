"""The built-in trainer's defaults on small tabular problems: what a newcomer gets without tuning.

Each problem is generated or bundled with scikit-learn; ``benchmarks/trainer_defaults.py`` measures
the same problems over more splits, beside the baselines.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from airflow_trainkit.registry.gate import DEFAULT_THRESHOLDS
from airflow_trainkit.trainers.xgboost import XGBoostConfig, train

pytestmark = pytest.mark.integration  # trains real models


def _table(folder: Path, name: str, x, y) -> str:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(np.asarray(x), columns=[f"f{i}" for i in range(np.asarray(x).shape[1])])
    frame["target"] = y
    path = folder / f"{name}.parquet"
    frame.to_parquet(path)
    return str(path)


def test_near_separable_model_passes_the_default_gate(tmp_path: Path) -> None:
    """AUC reaches 1.0 within a few trees; the trainer must go on until the probabilities are sure."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=500, n_features=8, n_informative=4, class_sep=2.0, random_state=2)
    config = XGBoostConfig(
        train_uri=_table(tmp_path, "separable", x, y), output_uri=str(tmp_path / "out"), target="target"
    )
    metrics = train(config)["metrics"]
    limits = DEFAULT_THRESHOLDS["classification"]
    assert metrics["auc_roc"] >= 0.99
    assert metrics["log_loss"] <= limits["log_loss"], metrics
    assert metrics["f1_weighted"] >= limits["f1_weighted"] and metrics["auc_roc"] >= limits["auc_roc"]
    assert metrics["num_boosted_rounds"] > 20


def test_small_regression_is_within_5_percent_of_a_linear_model(tmp_path: Path) -> None:
    """442 rows, a mostly linear signal: trees must not fall far behind a linear model."""
    from sklearn import metrics as skm
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    ratios = []
    for seed in range(5):  # one split of 89 validation rows is noise; five are a measurement
        x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.2, random_state=seed)
        config = XGBoostConfig(
            train_uri=_table(tmp_path, f"train{seed}", x_train, y_train),
            validation_uri=_table(tmp_path, f"valid{seed}", x_valid, y_valid),
            output_uri=str(tmp_path / f"out{seed}"),
            target="target",
            seed=seed,
        )
        rmse = train(config)["metrics"]["rmse"]
        linear = LinearRegression().fit(x_train, y_train).predict(x_valid)
        ratios.append(rmse / math.sqrt(skm.mean_squared_error(y_valid, linear)))
    assert sum(ratios) / len(ratios) <= 1.05, ratios


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, float]:
    """5 % positives: a train and a validation table, and the validation's positive share."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    folder = tmp_path_factory.mktemp("imbalanced")
    x, y = make_classification(
        n_samples=3000, n_features=12, n_informative=6, weights=[0.95], flip_y=0.01, random_state=1
    )
    x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return (
        _table(folder, "train", x_train, y_train),
        _table(folder, "valid", x_valid, y_valid),
        y_valid.mean(),
    )


def _predict(out: Path, validation_uri: str):
    import pandas as pd
    import xgboost as xgb

    meta = json.loads((out / "model_meta.json").read_text())
    frame = pd.read_parquet(validation_uri)
    booster = xgb.Booster(model_file=str(out / "model.json"))
    return booster.predict(xgb.DMatrix(frame[meta["feature_names"]]))


def test_scale_pos_weight_model_predicts_probabilities_of_the_real_class_balance(
    imbalanced, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Reweighting changes how trees grow, not what the saved model's probabilities mean."""
    train_uri, valid_uri, positive_share = imbalanced
    runs = {}
    for name, weight in (("plain", None), ("reweighted", "auto")):
        config = XGBoostConfig(
            train_uri=train_uri,
            validation_uri=valid_uri,
            output_uri=str(tmp_path / name),
            target="target",
            scale_pos_weight=weight,
        )
        with caplog.at_level(logging.INFO, logger="airflow_trainkit.trainer.xgboost"):
            runs[name] = train(config)["metrics"]
    plain, reweighted = runs["plain"], runs["reweighted"]
    # Calibration in the large: the mean predicted probability is the positive share, as without weights.
    mean_probability = float(_predict(tmp_path / "reweighted", valid_uri).mean())
    assert abs(mean_probability - positive_share) < 0.015, (mean_probability, positive_share)
    assert reweighted["log_loss"] <= DEFAULT_THRESHOLDS["classification"]["log_loss"]
    assert reweighted["log_loss"] < 1.5 * plain["log_loss"], runs
    assert reweighted["auc_roc"] > 0.85 and plain["auc_roc"] > 0.85, runs
    # Early stopping on the weighted log-loss did not stop at a handful of trees.
    assert reweighted["num_boosted_rounds"] > 20
    assert "probabilities recalibrated to the real class balance" in caplog.text


def test_early_stopping_watches_a_proper_scoring_rule() -> None:
    """Log-loss for classifiers, RMSE for regressors; AUC is reported, not watched."""
    import numpy as np

    from airflow_trainkit.trainers.xgboost_booster import _params, _stopping_metric
    from airflow_trainkit.trainers.xgboost_data import _Prepared

    config = XGBoostConfig(train_uri="t.csv", output_uri="o", target="y")
    labels = np.array([0, 1] * 10)
    for task, classes, metric in (
        ("classification", [0, 1], "logloss"),
        ("classification", [0, 1, 2], "mlogloss"),
        ("regression", [], "rmse"),
    ):
        data = _Prepared(None, labels, task, classes, {}, [])  # type: ignore[arg-type]
        params = _params(config, data, labels)
        assert _stopping_metric(params) == metric
    assert _params(config, data, labels)["max_depth"] == 3  # 20 rows: shallow trees
    binary = _Prepared(None, labels, "classification", [0, 1], {}, [])  # type: ignore[arg-type]
    config.params = {"eval_metric": "auc"}
    assert _stopping_metric(_params(config, binary, labels)) == "auc"  # the user's choice is kept
