"""The built-in XGBoost trainer: ``python -m airflow_trainkit.trainers.xgboost``.

Reads a table, trains a classifier or a regressor, and writes ``model.json``, ``model_meta.json`` and
``metrics.json`` to the output folder, whole or not at all. Heavy libraries load only in ``main``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from airflow_trainkit.trainers.contract import PROGRESS_FILE, TrainerEnv, redact_uri, run_main
from airflow_trainkit.trainers.xgboost_booster import (
    KEEP_CHECKPOINTS,
    ProgressWriter,
    _best_iteration,
    _checkpointer,
    _class_weight,
    _log_every,
    _meta,
    _metrics,
    _params,
    _progress_callback,
    _recalibrate,
    _resume,
    _stopping_metric,
    _validation_weights,
)
from airflow_trainkit.trainers.xgboost_config import (
    MODEL_FORMATS,
    PROG,
    TASKS,
    XGBoostConfig,
    build_parser,
    resolve_config,
)
from airflow_trainkit.trainers.xgboost_data import _prepare, _prepare_more, _split

__all__ = [
    "KEEP_CHECKPOINTS",
    "MODEL_FORMATS",
    "PROG",
    "TASKS",
    "XGBoostConfig",
    "build_parser",
    "main",
    "resolve_config",
    "train",
]

log = logging.getLogger("airflow_trainkit.trainer.xgboost")


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
    dvalid = xgb.DMatrix(
        x_valid,
        label=y_valid,
        weight=_validation_weights(params, y_valid),
        enable_categorical=True,
        nthread=-1,
    )

    start_model, start_round = _resume(config, list(x_train.columns))
    remaining = config.num_boost_round - start_round
    logger = _log_every(config.log_every, start_round, config.num_boost_round)
    progress = ProgressWriter(config.output_uri, config.progress_interval, start_round)
    # Progress before early stopping: XGBoost skips the callbacks after one that stops training.
    callbacks = [logger, _progress_callback(progress)]
    if config.checkpoint_uri:
        callbacks.append(_checkpointer(storage.local_path(config.checkpoint_uri), config.checkpoint_interval))
    if config.early_stopping_rounds:
        callbacks.append(
            xgb.callback.EarlyStopping(
                rounds=config.early_stopping_rounds,
                metric_name=_stopping_metric(params),
                data_name="validation",
                save_best=True,
            )
        )
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
    if _class_weight(params) is not None:
        booster = _recalibrate(booster, dtrain, y_train)
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
        PROGRESS_FILE: progress.document(),
    }
    storage.write_folder_atomic(config.output_uri, files)
    log.info("wrote %s to %s", ", ".join(sorted(files)), redact_uri(config.output_uri))
    return {"metrics": metrics, "meta": meta, "output_uri": config.output_uri}


if __name__ == "__main__":
    sys.exit(run_main(main, prog=PROG))
