"""The built-in XGBoost trainer: ``python -m airflow_trainkit.trainers.xgboost``.

Reads a table, trains a classifier or a regressor, and writes ``model.json``, ``model_meta.json`` and
``metrics.json`` to the output folder, whole or not at all. Heavy libraries load only in ``main``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_trainkit.trainers.contract import BadInput, TrainerEnv, newest_checkpoint, redact_uri, run_main

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    import xgboost as xgb

log = logging.getLogger("airflow_trainkit.trainer.xgboost")

PROG = "trainkit-xgboost"
TASKS = ("classification", "regression", "auto")
MODEL_FORMATS = ("json", "ubj")
KEEP_CHECKPOINTS = 2


@dataclass
class XGBoostConfig:
    """Everything the trainer needs, after flags, hyperparameters and defaults are merged.

    :param params: the other XGBoost parameters, passed through to ``xgb.train``.
    """

    train_uri: str
    output_uri: str
    target: str
    validation_uri: str | None = None
    task: str = "auto"
    num_boost_round: int = 300
    early_stopping_rounds: int = 20
    learning_rate: float = 0.1
    max_depth: int = 6
    scale_pos_weight: float | str | None = None
    validation_fraction: float = 0.2
    drop_columns: list[str] = field(default_factory=list)
    seed: int = 42
    checkpoint_uri: str | None = None
    checkpoint_interval: int = 10
    log_every: int = 10
    model_format: str = "json"
    device: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)


# hyperparameter name -> (converter, check, what a good value is)
_KNOWN: dict[str, tuple[Any, Any, str]] = {
    "target": (str, lambda v: bool(v), "a column name"),
    "task": (str, lambda v: v in TASKS, "one of " + ", ".join(TASKS)),
    "num_boost_round": (int, lambda v: v >= 1, "an integer >= 1"),
    "early_stopping_rounds": (int, lambda v: v >= 0, "an integer >= 0 (0 turns it off)"),
    "learning_rate": (float, lambda v: v > 0, "a number > 0"),
    "max_depth": (int, lambda v: v >= 0, "an integer >= 0"),
    "validation_fraction": (float, lambda v: 0 < v < 1, "a number between 0 and 1"),
    "seed": (int, lambda v: True, "an integer"),
    "checkpoint_interval": (int, lambda v: v >= 1, "an integer >= 1"),
    "log_every": (int, lambda v: v >= 1, "an integer >= 1"),
    "model_format": (str, lambda v: v in MODEL_FORMATS, "json or ubj"),
}
_NOT_PASSED_THROUGH = {*_KNOWN, "scale_pos_weight", "drop_columns", "validation", "train", "output"}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every flag overrides the environment and the hyperparameters."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train an XGBoost model on a CSV/Parquet table. Flags override TRAINKIT_* environment.",
    )
    add = parser.add_argument
    add("--train", help="URI of the training table or folder (env: channel 'train')")
    add("--validation", help="URI of a validation table; without it a share of train is held out")
    add("--target", help="the label column")
    add("--task", choices=TASKS, help="classification, regression or auto (default: auto)")
    add("--output", help="output folder URI (env TRAINKIT_OUTPUT_URI)")
    add("--validation-fraction", type=float, help="held-out share of train (default 0.2)")
    add("--num-boost-round", type=int, help="maximum boosting rounds (default 300)")
    add(
        "--early-stopping-rounds",
        type=int,
        help="stop after N rounds without improvement (default 20, 0=off)",
    )
    add("--learning-rate", type=float, help="eta (default 0.1)")
    add("--max-depth", type=int, help="tree depth (default 6)")
    add("--scale-pos-weight", help="'auto' (negatives/positives) or a number; binary classification only")
    add("--seed", type=int, help="random seed for the split and XGBoost (default 42)")
    add("--drop-columns", help="comma-separated columns to leave out, e.g. an id")
    add("--checkpoint", help="local checkpoint folder (env TRAINKIT_CHECKPOINT_URI)")
    add("--checkpoint-interval", type=int, help="save a checkpoint every N rounds (default 10)")
    add("--model-format", choices=MODEL_FORMATS, help="json (default) or ubj")
    add(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other XGBoost parameter, e.g. --param subsample=0.8 (repeatable)",
    )
    return parser


def resolve_config(args: argparse.Namespace, env: TrainerEnv) -> XGBoostConfig:
    """Merge flags over hyperparameters over defaults.

    :raises BadInput: a value is missing or wrong; the message names the field and the value.
    """
    hps = dict(env.hyperparameters)
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--param must be KEY=VALUE, got {item!r}")
        hps[key.strip()] = value
    flag_map = {
        "target": args.target,
        "task": args.task,
        "num_boost_round": args.num_boost_round,
        "early_stopping_rounds": args.early_stopping_rounds,
        "learning_rate": args.learning_rate,
        "max_depth": args.max_depth,
        "validation_fraction": args.validation_fraction,
        "seed": args.seed,
        "checkpoint_interval": args.checkpoint_interval,
        "model_format": args.model_format,
        "scale_pos_weight": args.scale_pos_weight,
        "drop_columns": args.drop_columns,
    }
    hps.update({k: v for k, v in flag_map.items() if v is not None})

    values: dict[str, Any] = {}
    for name, (convert, check, expected) in _KNOWN.items():
        if name not in hps or hps[name] is None:
            continue
        raw = hps[name]
        try:
            value = convert(raw)
            if convert is int and isinstance(raw, float) and raw != int(raw):
                raise ValueError(raw)
        except (TypeError, ValueError):
            raise BadInput(f"hyperparameter {name!r} must be {expected}, got {raw!r}") from None
        if not check(value):
            raise BadInput(f"hyperparameter {name!r} must be {expected}, got {raw!r}")
        values[name] = value

    spw = hps.get("scale_pos_weight")
    if spw is not None and spw != "":
        if str(spw).strip().lower() == "auto":
            values["scale_pos_weight"] = "auto"
        else:
            try:
                values["scale_pos_weight"] = float(spw)
            except (TypeError, ValueError):
                raise BadInput(
                    f"hyperparameter 'scale_pos_weight' must be 'auto' or a number, got {spw!r}"
                ) from None
            if not values["scale_pos_weight"] > 0:
                raise BadInput(f"hyperparameter 'scale_pos_weight' must be > 0, got {spw!r}")

    drop = hps.get("drop_columns")
    if isinstance(drop, str):
        values["drop_columns"] = [c.strip() for c in drop.split(",") if c.strip()]
    elif isinstance(drop, list) and all(isinstance(c, str) for c in drop):
        values["drop_columns"] = list(drop)
    elif drop is not None:
        raise BadInput(f"hyperparameter 'drop_columns' must be a list of names or 'a,b', got {drop!r}")

    train_uri = args.train or env.inputs.get("train")
    if not train_uri:
        raise BadInput(
            "no training data: pass --train URI or set the 'train' input channel (TRAINKIT_INPUTS)"
        )
    output_uri = args.output or env.output_uri
    if not output_uri:
        raise BadInput("no output: pass --output URI or set TRAINKIT_OUTPUT_URI")
    if "target" not in values:
        raise BadInput("no target column: pass --target COLUMN or set hyperparameter 'target'")

    params = {k: v for k, v in hps.items() if k not in _NOT_PASSED_THROUGH}
    device = str(params.pop("device", "cuda" if env.has_gpu else "cpu"))
    return XGBoostConfig(
        train_uri=train_uri,
        validation_uri=args.validation or env.inputs.get("validation"),
        output_uri=output_uri,
        checkpoint_uri=args.checkpoint or env.checkpoint_uri,
        device=device,
        params=params,
        **values,
    )


def main(argv: list[str] | None = None) -> None:
    """Train and write the output folder; raises :class:`BadInput` for bad input."""
    args = build_parser().parse_args(argv)
    env = TrainerEnv.from_env()
    config = resolve_config(args, env)
    started = time.monotonic()
    log.info(
        "xgboost trainer: train=%s validation=%s target=%s output=%s device=%s (config from %s env)",
        redact_uri(config.train_uri),
        redact_uri(config.validation_uri) if config.validation_uri else "(split)",
        config.target,
        redact_uri(config.output_uri),
        config.device,
        env.source,
    )
    result = train(config)
    log.info(
        "done in %.1f s: %s",
        time.monotonic() - started,
        json.dumps(result["metrics"], sort_keys=True, default=str),
    )


def train(config: XGBoostConfig) -> dict[str, Any]:
    """Read, train, evaluate and write; returns ``{"metrics": ..., "meta": ..., "output_uri": ...}``."""
    from airflow_trainkit import storage
    from airflow_trainkit.trainers.contract import read_channel

    frame = read_channel("train", config.train_uri)
    data = _prepare(frame, config)
    if config.validation_uri:
        valid_frame = read_channel("validation", config.validation_uri)
        x_train, y_train = data.features, data.labels
        x_valid, y_valid = _prepare_more(valid_frame, data, config)
    else:
        x_train, x_valid, y_train, y_valid = _split(data, config)
    log.info(
        "task=%s rows: train=%d validation=%d features=%d (%d categorical)",
        data.task,
        len(x_train),
        len(x_valid),
        x_train.shape[1],
        len(data.categories),
    )

    import xgboost as xgb  # heavy: only when a job trains, after the input checks

    params = _params(config, data, y_train)
    dtrain = xgb.DMatrix(x_train, label=y_train, enable_categorical=True, nthread=-1)
    dvalid = xgb.DMatrix(x_valid, label=y_valid, enable_categorical=True, nthread=-1)

    start_model, start_round = _resume(config, list(x_train.columns))
    remaining = config.num_boost_round - start_round
    logger = _log_every(config.log_every, start_round, config.num_boost_round)
    callbacks = [logger]
    if config.checkpoint_uri:
        callbacks.append(_checkpointer(storage.local_path(config.checkpoint_uri), config.checkpoint_interval))
    if config.early_stopping_rounds:
        callbacks.append(xgb.callback.EarlyStopping(rounds=config.early_stopping_rounds, save_best=True))
    if remaining > 0:
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=remaining,
            evals=[(dtrain, "train"), (dvalid, "validation")],
            callbacks=callbacks,
            verbose_eval=False,
            xgb_model=start_model,
        )
    elif start_model is not None:
        log.info(
            "checkpoint at round %d already reaches num_boost_round=%d", start_round, config.num_boost_round
        )
        booster = start_model
    else:  # cannot happen: num_boost_round >= 1 and no checkpoint means remaining >= 1
        raise RuntimeError(f"nothing to train: num_boost_round={config.num_boost_round}, start={start_round}")
    rounds = booster.num_boosted_rounds()
    best_iteration = _best_iteration(booster)
    trained = int(getattr(logger, "trained", 0))
    log.info(
        "trained %d round(s) in this run (rounds %d..%d)%s; the model keeps %d round(s), best iteration %d",
        trained,
        start_round + 1,
        start_round + trained,
        " (early stopping)" if 0 < trained < remaining else "",
        rounds,
        best_iteration,
    )

    metrics = _metrics(data, booster, dvalid, y_valid)
    metrics.update(
        n_train=len(x_train),
        n_validation=len(x_valid),
        best_iteration=best_iteration,
        num_boosted_rounds=rounds,
        rounds_trained=trained,
        resumed_from_round=start_round,
    )
    meta = _meta(config, data, params, booster, best_iteration, start_round)
    model_name = f"model.{config.model_format}"
    files: dict[str, bytes | str] = {
        model_name: bytes(booster.save_raw(raw_format=config.model_format)),
        "model_meta.json": json.dumps(meta, indent=2, default=str, sort_keys=True) + "\n",
        "metrics.json": json.dumps(metrics, indent=2, sort_keys=True) + "\n",
    }
    storage.write_folder_atomic(config.output_uri, files)
    log.info("wrote %s to %s", ", ".join(sorted(files)), redact_uri(config.output_uri))
    return {"metrics": metrics, "meta": meta, "output_uri": config.output_uri}


@dataclass
class _Prepared:
    features: pd.DataFrame
    labels: Any
    task: str
    classes: list[Any]
    categories: dict[str, list[Any]]
    dropped: list[str]


def _prepare(frame: pd.DataFrame, config: XGBoostConfig) -> _Prepared:
    import pandas as pd  # heavy: only when a job trains

    if config.target not in frame.columns:
        raise BadInput(
            f"target column {config.target!r} is not in the training table {redact_uri(config.train_uri)!r}; "
            f"columns are: {', '.join(map(str, frame.columns))}"
        )
    missing = [c for c in config.drop_columns if c not in frame.columns]
    if missing:
        raise BadInput(f"drop_columns: column(s) {', '.join(map(repr, missing))} not in the training table")
    target = frame[config.target]
    no_label = int(target.isna().sum())
    if no_label:
        log.warning("dropping %d row(s) without a value in target %r", no_label, config.target)
        frame = frame[target.notna()].reset_index(drop=True)
        target = frame[config.target]
    if frame.empty:
        raise BadInput(f"target column {config.target!r} has no values in {redact_uri(config.train_uri)!r}")
    features = frame.drop(columns=[config.target, *config.drop_columns])
    if features.shape[1] == 0:
        raise BadInput(f"no feature columns left after dropping target {config.target!r} and drop_columns")

    task = config.task
    numeric_target = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if task == "auto":
        integral = numeric_target and bool((target == target.round()).all())
        task = (
            "classification"
            if (not numeric_target or (integral and target.nunique() <= 20))
            else "regression"
        )
        log.info("task auto-detected as %s from target %r (%s)", task, config.target, target.dtype)
    classes: list[Any] = []
    if task == "classification":
        classes = sorted(target.unique().tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise BadInput(
                f"target column {config.target!r} has a single class {classes[0]!r}: classification needs "
                "at least two"
            )
        labels = target.map({c: i for i, c in enumerate(classes)}).astype("int32").to_numpy()
    else:
        if not numeric_target:
            raise BadInput(f"regression target {config.target!r} must be numeric, got dtype {target.dtype}")
        labels = target.astype("float64").to_numpy()

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
    return _Prepared(features, labels, task, classes, categories, list(config.drop_columns))


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


if __name__ == "__main__":
    sys.exit(run_main(main, prog=PROG))
