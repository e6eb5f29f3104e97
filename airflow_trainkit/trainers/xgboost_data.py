"""The built-in XGBoost trainer's data: a table turned into features and labels, a validation table
shaped the same way, and the held-out split."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_trainkit.trainers.contract import BadInput, redact_uri

if TYPE_CHECKING:
    import pandas as pd

    from airflow_trainkit.trainers.xgboost_config import XGBoostConfig

log = logging.getLogger("airflow_trainkit.trainer.xgboost")


@dataclass
class _Prepared:
    features: pd.DataFrame
    labels: Any
    task: str
    classes: list[Any]
    categories: dict[str, list[Any]]
    dropped: list[str]


def _prepare(frame: pd.DataFrame, config: XGBoostConfig) -> _Prepared:
    """Features and labels of the training table, the task, its classes and each category column's values."""
    import pandas as pd  # heavy: only when a job trains

    _check_columns(frame, config)
    frame, target = _labelled_rows(frame, config)
    features = frame.drop(columns=[config.target, *config.drop_columns])
    if features.shape[1] == 0:
        raise BadInput(f"no feature columns left after dropping target {config.target!r} and drop_columns")
    numeric_target = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    task = _task(config, target, numeric_target)
    labels, classes = _labels(task, target, numeric_target, config)
    categories = _encode_features(features)
    return _Prepared(features, labels, task, classes, categories, list(config.drop_columns))


def _check_columns(frame: pd.DataFrame, config: XGBoostConfig) -> None:
    """The target and every column of ``drop_columns`` are in the training table."""
    if config.target not in frame.columns:
        raise BadInput(
            f"target column {config.target!r} is not in the training table {redact_uri(config.train_uri)!r}; "
            f"columns are: {', '.join(map(str, frame.columns))}"
        )
    missing = [c for c in config.drop_columns if c not in frame.columns]
    if missing:
        raise BadInput(f"drop_columns: column(s) {', '.join(map(repr, missing))} not in the training table")


def _labelled_rows(frame: pd.DataFrame, config: XGBoostConfig) -> tuple[pd.DataFrame, Any]:
    """The rows with a target value (the others dropped with a warning), and their target column."""
    target = frame[config.target]
    no_label = int(target.isna().sum())
    if no_label:
        log.warning("dropping %d row(s) without a value in target %r", no_label, config.target)
        frame = frame[target.notna()].reset_index(drop=True)
        target = frame[config.target]
    if frame.empty:
        raise BadInput(f"target column {config.target!r} has no values in {redact_uri(config.train_uri)!r}")
    return frame, target


def _task(config: XGBoostConfig, target: Any, numeric_target: bool) -> str:
    """The configured task; for ``auto``, classification when the target is not numeric or has at most
    20 whole-number values, else regression."""
    if config.task != "auto":
        return config.task
    integral = numeric_target and bool((target == target.round()).all())
    task = "classification" if (not numeric_target or (integral and target.nunique() <= 20)) else "regression"
    log.info("task auto-detected as %s from target %r (%s)", task, config.target, target.dtype)
    return task


def _labels(task: str, target: Any, numeric_target: bool, config: XGBoostConfig) -> tuple[Any, list[Any]]:
    """The label array (class indexes, or floats for regression) and the classes in index order."""
    if task == "classification":
        classes = sorted(target.unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise BadInput(
                f"target column {config.target!r} has a single class {classes[0]!r}: classification needs "
                "at least two"
            )
        return target.map({c: i for i, c in enumerate(classes)}).astype("int32").to_numpy(), classes
    if not numeric_target:
        raise BadInput(f"regression target {config.target!r} must be numeric, got dtype {target.dtype}")
    return target.astype("float64").to_numpy(), []


def _encode_features(features: pd.DataFrame) -> dict[str, list[Any]]:
    """Make ``features`` XGBoost-ready in place (booleans as floats, text as categories).

    :return: each category column's values, so a validation table can be encoded the same way.
    """
    import pandas as pd  # heavy: only when a job trains

    categories: dict[str, list[Any]] = {}
    for name in list(features.columns):
        column = features[name]
        if pd.api.types.is_bool_dtype(column):
            features[name] = column.astype("float32")
        elif (
            isinstance(column.dtype, pd.CategoricalDtype)
            or column.dtype == object
            or pd.api.types.is_string_dtype(column)
        ):
            features[name] = column.astype("category")
            categories[str(name)] = features[name].cat.categories.tolist()
            if len(categories[str(name)]) == len(column) and len(column) > 100:
                log.warning(
                    "column %r has a different value in every row; an id? consider drop_columns", name
                )
        elif not pd.api.types.is_numeric_dtype(column):
            raise BadInput(
                f"feature column {name!r} has dtype {column.dtype}, which XGBoost cannot use; "
                "convert it or list it in drop_columns"
            )
    return categories


def _prepare_more(frame: pd.DataFrame, data: _Prepared, config: XGBoostConfig) -> tuple[pd.DataFrame, Any]:
    """Shape a validation table like the training features: same columns, same categories, same labels."""
    import pandas as pd  # heavy: only when a job trains

    uri = redact_uri(config.validation_uri or "")
    if config.target not in frame.columns:
        raise BadInput(f"target column {config.target!r} is not in the validation table {uri!r}")
    missing = [c for c in data.features.columns if c not in frame.columns]
    if missing:
        raise BadInput(f"validation table {uri!r} lacks feature column(s) {', '.join(map(repr, missing))}")
    frame = frame[frame[config.target].notna()].reset_index(drop=True)
    if frame.empty:
        raise BadInput(f"validation table {uri!r} has no rows with a value in target {config.target!r}")
    features = frame[list(data.features.columns)].copy()
    for name in features.columns:
        if name in data.categories:
            features[name] = pd.Categorical(features[name], categories=data.categories[name])
        else:
            features[name] = features[name].astype(data.features[name].dtype)
    target = frame[config.target]
    if data.task == "classification":
        index = {c: i for i, c in enumerate(data.classes)}
        unknown = sorted({v for v in target.unique().tolist() if v not in index}, key=str)
        if unknown:
            raise BadInput(
                f"validation target {config.target!r} has value(s) {unknown[:5]!r} not seen in training "
                f"(classes {data.classes!r})"
            )
        labels = target.map(index).astype("int32").to_numpy()
    else:
        labels = target.astype("float64").to_numpy()
    return features, labels


def _split(data: _Prepared, config: XGBoostConfig) -> tuple[Any, Any, Any, Any]:
    import numpy as np  # heavy: only when a job trains
    from sklearn.model_selection import train_test_split

    n_valid = math.ceil(len(data.labels) * config.validation_fraction)
    if n_valid < 1 or len(data.labels) - n_valid < 1:
        raise BadInput(
            f"validation_fraction={config.validation_fraction} leaves no rows to train or validate on "
            f"({len(data.labels)} labelled rows); pass a validation file or more data"
        )
    stratify = None
    if data.task == "classification":
        counts = np.bincount(data.labels)
        if counts.min() >= 2 and n_valid >= len(counts):
            stratify = data.labels
    parts = train_test_split(
        data.features, data.labels, test_size=n_valid, random_state=config.seed, stratify=stratify
    )
    return tuple(parts)  # type: ignore[return-value]
