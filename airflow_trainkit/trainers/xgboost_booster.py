"""The built-in XGBoost trainer's booster: its parameters, the resume from a checkpoint, the per-round
logging and checkpoint callbacks, and the metrics and metadata written about the trained model."""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow_trainkit.trainers.contract import PROGRESS_FILE, BadInput, newest_checkpoint, redact_uri
from airflow_trainkit.trainers.xgboost_config import auto_max_depth

if TYPE_CHECKING:
    from pathlib import Path

    import xgboost as xgb

    from airflow_trainkit.trainers.xgboost_config import XGBoostConfig
    from airflow_trainkit.trainers.xgboost_data import _Prepared

log = logging.getLogger("airflow_trainkit.trainer.xgboost")

KEEP_CHECKPOINTS = 2


def _params(config: XGBoostConfig, data: _Prepared, y_train: Any) -> dict[str, Any]:
    import numpy as np  # heavy: only when a job trains

    max_depth = config.max_depth
    if max_depth is None:
        max_depth = auto_max_depth(len(y_train))
        log.info("max_depth=auto: %d for %d training rows", max_depth, len(y_train))
    params: dict[str, Any] = {
        "tree_method": "hist",
        "device": config.device,
        "eta": config.learning_rate,
        "max_depth": max_depth,
        # Each tree sees 80 % of the rows and of the columns: on small tables this keeps trees from
        # all fitting the same noise (on the wine set, half the validation log-loss of no sampling).
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "seed": config.seed,
    }
    # Early stopping watches the last eval metric: a proper scoring rule of the task. AUC is not
    # one: it only ranks, stops improving at 1.0 while the probabilities are still timid, and so
    # stopped near-separable problems after a few trees. With scale_pos_weight the validation
    # rows carry the same weights as the training rows (see ``_validation_weights``).
    if data.task == "classification" and len(data.classes) == 2:
        params.update(objective="binary:logistic", eval_metric=["auc", "logloss"])
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


def _stopping_metric(params: dict[str, Any]) -> str:
    """The metric early stopping watches: the last of ``eval_metric``, as XGBoost's own rule."""
    metrics = params.get("eval_metric")
    if isinstance(metrics, (list, tuple)) and metrics:
        return str(metrics[-1])
    return str(metrics)


def _class_weight(params: dict[str, Any]) -> float | None:
    """The weight of a positive row in binary classification (``scale_pos_weight``), or ``None``."""
    weight = params.get("scale_pos_weight")
    if weight is None or params.get("objective") != "binary:logistic":
        return None
    return float(weight)


def _validation_weights(params: dict[str, Any], labels: Any) -> Any | None:
    """The validation rows' weights: those of training under ``scale_pos_weight``, else none.

    Training minimises the log-loss with positives counted ``scale_pos_weight`` times; an
    unweighted validation log-loss would judge the model on another objective than the one it is
    trained on, and early stopping would stop where the two disagree, not where the model stops
    learning. Weighted the same way, the validation log-loss is the same proper scoring rule.
    """
    import numpy as np  # heavy: only when a job trains

    weight = _class_weight(params)
    if weight is None:
        return None
    return np.where(np.asarray(labels) == 1, weight, 1.0)


def _recalibrate(booster: xgb.Booster, dtrain: xgb.DMatrix, labels: Any) -> xgb.Booster:
    """The booster with its base score refitted so that, on the (unweighted) training rows, its
    mean predicted probability is their positive share.

    Counting positives ``scale_pos_weight`` times inflates the odds the model learns: its scores
    rank as well as ever, but as probabilities they overstate the positive class, and the
    log-loss the gate judges would say so. Shifting every log-odds by one constant keeps the
    ranking (and AUC) and fixes calibration in the large. The constant is fitted on the training
    rows, not the validation rows the metrics are computed on, and not taken as the theoretical
    ``-log(scale_pos_weight)``: a model stopped early, and fitted closely to its few heavy
    positives, is not at the reweighted optimum that formula assumes (on a 5 % positive table it
    halved the mean probability; refitted, the mean is the positive share).
    """
    import numpy as np  # heavy: only when a job trains
    import xgboost as xgb

    margins = booster.predict(dtrain, output_margin=True).astype(np.float64)
    share = float(np.mean(labels))

    def mean_probability(shift: float) -> float:
        return float(np.mean(0.5 * (1 + np.tanh((margins + shift) / 2))))

    low, high = -50.0, 50.0  # the mean probability grows with the shift: bisect
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if mean_probability(middle) < share else (low, middle)
    shift = (low + high) / 2
    learner = json.loads(booster.save_config())["learner"]["learner_model_param"]
    base = float(str(learner["base_score"]).strip("[]").split(",")[0])
    margin = math.log(base / (1 - base)) + shift
    booster.set_param({"base_score": 1 / (1 + math.exp(-margin))})
    log.info(
        "scale_pos_weight: probabilities recalibrated to the real class balance "
        "(log-odds shifted by %+.4f; mean on the training rows %.4f = their positive share)",
        shift,
        share,
    )
    # A booster caches its predictions: the saved, corrected model is loaded afresh.
    return xgb.Booster(model_file=bytearray(booster.save_raw(raw_format="json")))


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


def _progress_callback(writer: ProgressWriter) -> xgb.callback.TrainingCallback:
    """A callback that hands each round's evals log to ``writer`` (place it before early stopping:
    XGBoost skips the callbacks after one that stops training)."""
    import xgboost as xgb  # heavy: only when a job trains

    class Progress(xgb.callback.TrainingCallback):
        def before_training(self, model: Any) -> Any:
            writer.write()  # replaces a progress.json an earlier run left in the folder
            writer.last_write = None  # the first round is written at once
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            writer.evals_log = evals_log
            writer.trained = epoch + 1
            if writer.due():
                writer.write()
            return False

        def after_training(self, model: Any) -> Any:
            writer.write()
            return model

    return Progress()


class ProgressWriter:
    """This run's per-round metrics as ``progress.json`` (:data:`~airflow_trainkit.trainers.contract.PROGRESS_FILE`):
    ``{"round", "first_round", "history", "updated_at"}``, where ``history`` maps ``<data>-<metric>``
    of XGBoost's evals log to one value per round of this run.

    While training, the file is written atomically into a local output folder at most once per
    ``every`` seconds after a round (``0``: after every round) and after the last round; to an output
    in object storage nothing is written until the output folder itself is. A write that fails is
    logged once and not tried again: progress is for watchers, the model is the job.

    :param start_round: the round a checkpoint resumed from (``0`` for a fresh run).
    :param live: write while training; ``False`` keeps the history for :meth:`document` only (the
        distributed trainer's workers other than rank 0).
    """

    def __init__(self, output_uri: str, every: float, start_round: int, *, live: bool = True) -> None:
        self.output_uri = output_uri
        self.every = every
        self.start_round = start_round
        self.live = live
        self.failed = False
        self.evals_log: Any = {}
        self.trained = 0
        self.last_write: float | None = None

    def document(self) -> str:
        """The file's content now: strict JSON, a value that is not finite written as ``null``."""
        from datetime import UTC, datetime

        history = {
            f"{data}-{metric}": [_finite_or_none(v) for v in values]
            for data, by_metric in self.evals_log.items()
            for metric, values in by_metric.items()
        }
        body = {
            "round": self.start_round + self.trained,
            "first_round": self.start_round + 1,
            "history": history,
            "updated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        return json.dumps(body, allow_nan=False) + "\n"

    def due(self) -> bool:
        """Whether a round's write is due: the first one, then at most once per ``every`` seconds."""
        return self.last_write is None or time.monotonic() - self.last_write >= self.every

    def write(self) -> None:
        """Write ``progress.json`` into a local output folder now (nothing for object storage)."""
        from airflow_trainkit.storage import is_local, join_uri, write_bytes_atomic

        if not self.live or self.failed or not is_local(self.output_uri):
            return
        try:
            write_bytes_atomic(join_uri(self.output_uri, PROGRESS_FILE), self.document().encode())
        except OSError as err:
            self.failed = True
            log.warning("cannot write %s (%s); no more progress is written", PROGRESS_FILE, err)
            return
        self.last_write = time.monotonic()


def _finite_or_none(value: Any) -> float | None:
    number = float(value[0] if isinstance(value, tuple) else value)  # (mean, std) in xgb.cv
    return number if math.isfinite(number) else None
