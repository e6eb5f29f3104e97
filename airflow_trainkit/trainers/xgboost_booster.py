"""The built-in XGBoost trainer's booster: its parameters, the resume from a checkpoint, the per-round
logging and checkpoint callbacks, and the metrics and metadata written about the trained model."""

from __future__ import annotations

import json
import logging
import math
import platform
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow_trainkit.trainers.contract import BadInput, newest_checkpoint, redact_uri

if TYPE_CHECKING:
    from pathlib import Path

    import xgboost as xgb

    from airflow_trainkit.trainers.xgboost_config import XGBoostConfig
    from airflow_trainkit.trainers.xgboost_data import _Prepared

log = logging.getLogger("airflow_trainkit.trainer.xgboost")

KEEP_CHECKPOINTS = 2


def _params(config: XGBoostConfig, data: _Prepared, y_train: Any) -> dict[str, Any]:
    import numpy as np  # heavy: only when a job trains

    params: dict[str, Any] = {
        "tree_method": "hist",
        "device": config.device,
        "eta": config.learning_rate,
        "max_depth": config.max_depth,
        "seed": config.seed,
    }
    if data.task == "classification" and len(data.classes) == 2:
        # early stopping watches the last metric: AUC ranks, so it is not fooled by scale_pos_weight
        params.update(objective="binary:logistic", eval_metric=["logloss", "auc"])
    elif data.task == "classification":
        params.update(objective="multi:softprob", num_class=len(data.classes), eval_metric=["mlogloss"])
    else:
        params.update(objective="reg:squarederror", eval_metric=["rmse"])
    if config.scale_pos_weight is not None:
        if not (data.task == "classification" and len(data.classes) == 2):
            raise BadInput(
                f"scale_pos_weight={config.scale_pos_weight!r} applies to binary classification only, "
                f"but the task is {data.task} with {len(data.classes)} classes"
            )
        if config.scale_pos_weight == "auto":
            positives = int(np.sum(y_train == 1))
            negatives = int(len(y_train) - positives)
            params["scale_pos_weight"] = negatives / positives
            log.info(
                "scale_pos_weight=auto: %d negatives / %d positives = %.3f",
                negatives,
                positives,
                params["scale_pos_weight"],
            )
        else:
            params["scale_pos_weight"] = config.scale_pos_weight
    extra = dict(config.params)
    if isinstance(extra.get("eval_metric"), str) and "," in extra["eval_metric"]:
        extra["eval_metric"] = [m.strip() for m in extra["eval_metric"].split(",") if m.strip()]
    params.update(extra)
    log.info("xgboost params: %s", json.dumps(params, sort_keys=True, default=str))
    return params


def _resume(config: XGBoostConfig, feature_names: list[str]) -> tuple[xgb.Booster | None, int]:
    """The newest checkpoint's model and round, or ``(None, 0)``."""
    import xgboost as xgb  # heavy: only when a job trains

    from airflow_trainkit import storage

    if not config.checkpoint_uri:
        return None, 0
    if not storage.is_local(config.checkpoint_uri):
        raise BadInput(f"checkpoint {redact_uri(config.checkpoint_uri)!r} must be a local folder")
    found = newest_checkpoint(storage.local_path(config.checkpoint_uri))
    if found is None:
        log.info("no checkpoint in %s: starting from round 0", config.checkpoint_uri)
        return None, 0
    round_number, path = found
    booster = xgb.Booster(model_file=str(path))
    if booster.feature_names and list(booster.feature_names) != feature_names:
        raise BadInput(
            f"checkpoint {str(path)!r} was trained on features {booster.feature_names!r}, this job has "
            f"{feature_names!r}: use a fresh checkpoint folder"
        )
    log.info("resuming from checkpoint %s at round %d", path, round_number)
    return booster, round_number


def _best_iteration(booster: xgb.Booster) -> int:
    try:
        best = booster.best_iteration
    except AttributeError:
        best = None
    return int(best) if best is not None else booster.num_boosted_rounds() - 1


def _metrics(data: _Prepared, booster: xgb.Booster, dvalid: xgb.DMatrix, y_valid: Any) -> dict[str, Any]:
    import numpy as np  # heavy: only when a job trains
    from sklearn import metrics as skm

    predictions = booster.predict(dvalid)
    if data.task == "regression":
        rmse = float(math.sqrt(skm.mean_squared_error(y_valid, predictions)))
        mape = float(skm.mean_absolute_percentage_error(y_valid, predictions))
        return {"rmse": rmse, "mape": mape}
    labels = list(range(len(data.classes)))
    if len(data.classes) == 2:
        predicted = (predictions >= 0.5).astype(int)
        probabilities = np.column_stack([1 - predictions, predictions])
    else:
        predicted = predictions.argmax(axis=1)
        probabilities = predictions
    result: dict[str, Any] = {
        "f1_weighted": float(
            skm.f1_score(y_valid, predicted, average="weighted", labels=labels, zero_division=0)
        ),
        "log_loss": float(skm.log_loss(y_valid, probabilities, labels=labels)),
    }
    if len(np.unique(y_valid)) < 2:
        log.warning("the validation set holds one class only: auc_roc is undefined (null)")
        result["auc_roc"] = None
    elif len(data.classes) == 2:
        result["auc_roc"] = float(skm.roc_auc_score(y_valid, predictions))
    else:
        result["auc_roc"] = float(
            skm.roc_auc_score(y_valid, probabilities, multi_class="ovr", average="weighted", labels=labels)
        )
    return result


def _meta(
    config: XGBoostConfig,
    data: _Prepared,
    params: dict[str, Any],
    booster: xgb.Booster,
    best_iteration: int,
    start_round: int,
) -> dict[str, Any]:
    import numpy as np  # heavy: only when a job trains
    import pandas as pd
    import sklearn
    import xgboost as xgb

    import airflow_trainkit

    types = {}
    for name in data.features.columns:
        dtype = data.features[name].dtype
        types[str(name)] = "categorical" if name in data.categories else str(dtype)
    return {
        "model_file": f"model.{config.model_format}",
        "model_format": config.model_format,
        "library": "xgboost",
        "task": data.task,
        "target": config.target,
        "classes": data.classes,
        "objective": params.get("objective"),
        "feature_names": [str(c) for c in data.features.columns],
        "feature_types": types,
        "categories": data.categories,
        "dropped_columns": data.dropped,
        "params": params,
        "num_boosted_rounds": booster.num_boosted_rounds(),
        "best_iteration": best_iteration,
        "resumed_from_round": start_round,
        "inputs": {
            "train": redact_uri(config.train_uri),
            "validation": redact_uri(config.validation_uri) if config.validation_uri else None,
        },
        "validation_fraction": None if config.validation_uri else config.validation_fraction,
        "config": {
            k: v for k, v in asdict(config).items() if k not in ("params", "train_uri", "validation_uri")
        }
        | {"output_uri": redact_uri(config.output_uri)},
        "library_versions": {
            "xgboost": xgb.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
            "airflow_trainkit": getattr(airflow_trainkit, "__version__", None) or _dist_version(),
        },
    }


def _dist_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("airflow-trainkit")
    except PackageNotFoundError:
        return None


def _log_every(every: int, start_round: int, total: int) -> xgb.callback.TrainingCallback:
    """A callback that logs the train and validation metrics every ``every`` rounds."""
    import xgboost as xgb  # heavy: only when a job trains

    class LogEvery(xgb.callback.TrainingCallback):
        trained = 0  # rounds trained in this run, read back after training

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            done = start_round + epoch + 1
            self.trained = epoch + 1
            if done % every == 0 or epoch == 0:
                parts = [
                    f"{data}-{metric}={history[-1]:.5f}"
                    for data, by_metric in evals_log.items()
                    for metric, history in by_metric.items()
                ]
                log.info("round %d/%d %s", done, total, " ".join(parts))
            return False

    return LogEvery()


def _checkpointer(folder: Path, every: int) -> xgb.callback.TrainingCallback:
    """A callback that writes ``model_<round>.json`` every ``every`` rounds, atomically, keeping the last few."""
    import xgboost as xgb  # heavy: only when a job trains

    from airflow_trainkit.storage import write_bytes_atomic

    class Checkpointer(xgb.callback.TrainingCallback):
        start_round = 0

        def before_training(self, model: Any) -> Any:
            self.start_round = model.num_boosted_rounds()
            folder.mkdir(parents=True, exist_ok=True)
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            done = self.start_round + epoch + 1
            if done % every == 0:
                path = folder / f"model_{done:06d}.json"
                write_bytes_atomic(str(path), bytes(model.save_raw(raw_format="json")))
                log.info("checkpoint: round %d -> %s", done, path)
                kept = sorted(p for p in folder.glob("model_*.json") if p.stem[6:].isdigit())
                for old in kept[:-KEEP_CHECKPOINTS]:
                    old.unlink(missing_ok=True)
            return False

    return Checkpointer()
