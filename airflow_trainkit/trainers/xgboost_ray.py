"""The built-in XGBoost trainer, data-parallel on a Ray cluster: ``python -m airflow_trainkit.trainers.xgboost_ray``.

Runs as a Ray job's driver. It reads and prepares the table exactly as the single-process trainer
(:mod:`airflow_trainkit.trainers.xgboost`: same flags, same ``TRAINKIT_*`` variables, same split),
starts ``TRAINKIT_RAY_WORKERS`` Ray actors, gives each a share of the training rows, and trains one
model across them with XGBoost's own collective (a ``RabitTracker`` in the driver, a communicator in
each actor): every boosting round sums the workers' gradient histograms, so the model is the one
model of all the rows. The driver then writes the same ``model.json``, ``model_meta.json``,
``metrics.json`` and ``progress.json`` as the single-process trainer (the rank-0 worker writes
``progress.json`` while it trains, with the validation metrics only); ``metrics.json`` also records
``world_size`` and each worker's rows. Needs ``ray``, ``xgboost``, ``pandas`` and ``scikit-learn`` on the cluster (not
Airflow, not trainkit: the job's working directory carries this module). Checkpoint resume is not
supported here; a ``checkpoint_uri`` is refused.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from airflow_trainkit.trainers.contract import PROGRESS_FILE, BadInput, TrainerEnv, redact_uri, run_main
from airflow_trainkit.trainers.xgboost_config import PROG, XGBoostConfig, build_parser, resolve_config

log = logging.getLogger("airflow_trainkit.trainer.xgboost_ray")

WORKERS_VAR = "TRAINKIT_RAY_WORKERS"
CPUS_VAR = "TRAINKIT_RAY_CPUS_PER_WORKER"
GPUS_VAR = "TRAINKIT_RAY_GPUS_PER_WORKER"


def main(argv: list[str] | None = None) -> None:
    """Train across the Ray workers and write the output folder; :class:`BadInput` for bad input."""
    args = build_parser().parse_args(argv)
    env = TrainerEnv.from_env()
    workers = _int_var(WORKERS_VAR, 2, low=1)
    cpus = _float_var(CPUS_VAR, 1.0)
    gpus = _float_var(GPUS_VAR, 0.0)
    config = resolve_config(args, env)
    if config.checkpoint_uri:
        raise BadInput("checkpoints are not supported by the distributed trainer: drop checkpoint_uri")
    if gpus > 0 and "device" not in config.params:
        config.device = "cuda"
    started = time.monotonic()
    log.info(
        "xgboost on ray: %d worker(s) x %g CPU%s, train=%s target=%s output=%s",
        workers,
        cpus,
        f" + {gpus:g} GPU" if gpus else "",
        redact_uri(config.train_uri),
        config.target,
        redact_uri(config.output_uri),
    )
    result = train(config, workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus)
    log.info("done in %.1f s: %s", time.monotonic() - started, json.dumps(result["metrics"], sort_keys=True))


def train(
    config: XGBoostConfig, *, workers: int, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0
) -> dict[str, Any]:
    """Read, train across ``workers`` Ray actors, evaluate and write; as the single-process ``train``."""
    import numpy as np  # heavy: only when a job trains
    import ray
    import xgboost as xgb
    from xgboost.tracker import RabitTracker

    from airflow_trainkit import storage
    from airflow_trainkit.trainers.contract import read_channel
    from airflow_trainkit.trainers.xgboost_booster import (
        _best_iteration,
        _class_weight,
        _meta,
        _metrics,
        _params,
        _recalibrate,
        _validation_weights,
    )
    from airflow_trainkit.trainers.xgboost_data import _prepare, _prepare_more, _split

    frame = read_channel("train", config.train_uri)
    data = _prepare(frame, config)
    if config.validation_uri:
        x_train, y_train = data.features, data.labels
        x_valid, y_valid = _prepare_more(read_channel("validation", config.validation_uri), data, config)
    else:
        x_train, x_valid, y_train, y_valid = _split(data, config)
    if len(x_train) < workers:
        raise BadInput(f"{workers} workers need at least {workers} training rows, got {len(x_train)}")
    params = _params(config, data, y_train)
    params["nthread"] = max(1, int(cpus_per_worker))
    weights = _validation_weights(params, y_valid)
    shards = [(int(p[0]), int(p[-1]) + 1) for p in np.array_split(np.arange(len(x_train)), workers)]

    ray.init(log_to_driver=True)
    tracker = RabitTracker(host_ip=ray.util.get_node_ip_address(), n_workers=workers, sortby="task")
    tracker.start()
    worker_args = tracker.worker_args()
    options: dict[str, Any] = {"num_cpus": cpus_per_worker}
    if gpus_per_worker:
        options["num_gpus"] = gpus_per_worker
    actor: Any = ray.remote(**options)(_Worker)
    train_ref, valid_ref = ray.put((x_train, y_train)), ray.put((x_valid, y_valid, weights))
    actors = [actor.remote(rank) for rank in range(workers)]
    calls = [
        a.fit.remote(
            worker_args,
            params,
            train_ref,
            valid_ref,
            shard,
            config.num_boost_round,
            config.early_stopping_rounds,
            (config.output_uri, config.progress_interval),
        )
        for a, shard in zip(actors, shards, strict=True)
    ]
    answers = ray.get(calls)
    tracker.wait_for()
    raw = next(a["model"] for a in answers if a["rank"] == 0)
    world_sizes = {a["world_size"] for a in answers}
    if world_sizes != {workers}:
        raise RuntimeError(f"workers saw world sizes {sorted(world_sizes)}, expected {workers}")
    booster = xgb.Booster(model_file=bytearray(raw))
    dtrain = xgb.DMatrix(x_train, label=y_train, enable_categorical=True, nthread=-1)
    dvalid = xgb.DMatrix(x_valid, label=y_valid, weight=weights, enable_categorical=True, nthread=-1)
    best_iteration = _best_iteration(booster)
    if _class_weight(params) is not None:
        booster = _recalibrate(booster, dtrain, y_train)
    rounds = booster.num_boosted_rounds()
    metrics = _metrics(data, booster, dvalid, y_valid)
    metrics.update(
        n_train=len(x_train),
        n_validation=len(x_valid),
        best_iteration=best_iteration,
        num_boosted_rounds=rounds,
        rounds_trained=next(a["rounds_trained"] for a in answers if a["rank"] == 0),
        resumed_from_round=0,
        world_size=workers,
        worker_rows=[a["rows"] for a in sorted(answers, key=lambda a: a["rank"])],
        distributed="xgboost collective on ray actors",
    )
    meta = _meta(config, data, params, booster, best_iteration, 0)
    meta["world_size"] = workers
    model_name = f"model.{config.model_format}"
    files: dict[str, bytes | str] = {
        model_name: bytes(booster.save_raw(raw_format=config.model_format)),
        "model_meta.json": json.dumps(meta, indent=2, default=str, sort_keys=True) + "\n",
        "metrics.json": json.dumps(metrics, indent=2, sort_keys=True) + "\n",
        PROGRESS_FILE: next(a["progress"] for a in answers if a["rank"] == 0),
    }
    storage.write_folder_atomic(config.output_uri, files)
    log.info("wrote %s to %s", ", ".join(sorted(files)), redact_uri(config.output_uri))
    return {"metrics": metrics, "meta": meta, "output_uri": config.output_uri}


class _Worker:
    """One Ray actor's share of the training: its rows, the collective, the same rounds as the others."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def fit(
        self,
        worker_args: dict[str, Any],
        params: dict[str, Any],
        train: tuple[Any, Any],
        valid: tuple[Any, Any, Any],
        shard: tuple[int, int],
        num_boost_round: int,
        early_stopping_rounds: int,
        progress_to: tuple[str, float],
    ) -> dict[str, Any]:
        import xgboost as xgb
        from xgboost import collective

        from airflow_trainkit.trainers.xgboost_booster import (
            ProgressWriter,
            _progress_callback,
            _stopping_metric,
        )

        x_train, y_train = train
        x_valid, y_valid, weights = valid
        start, end = shard
        with collective.CommunicatorContext(**worker_args, dmlc_task_id=str(self.rank)):
            dtrain = xgb.DMatrix(
                x_train.iloc[start:end], label=y_train[start:end], enable_categorical=True, nthread=-1
            )
            # Every worker evaluates the whole validation set: the summed metric is the same on all
            # of them, so early stopping ends every worker at the same round.
            dvalid = xgb.DMatrix(x_valid, label=y_valid, weight=weights, enable_categorical=True, nthread=-1)
            counter = _RoundCounter.make()
            # Rank 0 writes progress.json (every worker sees the same summed metrics); before early
            # stopping, since XGBoost skips the callbacks after one that stops training.
            progress = ProgressWriter(*progress_to, 0, live=collective.get_rank() == 0)
            callbacks = [counter, _progress_callback(progress)]
            if early_stopping_rounds:
                callbacks.append(
                    xgb.callback.EarlyStopping(
                        rounds=early_stopping_rounds,
                        metric_name=_stopping_metric(params),
                        data_name="validation",
                        save_best=True,
                    )
                )
            booster = xgb.train(
                params,
                dtrain,
                num_boost_round=num_boost_round,
                evals=[(dvalid, "validation")],
                callbacks=callbacks,
                verbose_eval=False,
            )
            world_size = collective.get_world_size()
            rank = collective.get_rank()
        return {
            "rank": rank,
            "world_size": world_size,
            "rows": end - start,
            "rounds_trained": int(counter.trained),
            "model": bytes(booster.save_raw(raw_format="ubj")) if rank == 0 else b"",
            "progress": progress.document(),
        }


class _RoundCounter:
    """An XGBoost callback that counts the rounds trained (early stopping may keep fewer)."""

    @staticmethod
    def make() -> Any:
        import xgboost as xgb

        class Counter(xgb.callback.TrainingCallback):
            trained = 0

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                self.trained = epoch + 1
                return False

        return Counter()


def _int_var(name: str, default: int, *, low: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise BadInput(f"{name} must be a whole number, got {raw!r}") from None
    if value < low:
        raise BadInput(f"{name} must be at least {low}, got {raw!r}")
    return value


def _float_var(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise BadInput(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise BadInput(f"{name} must be at least 0, got {raw!r}")
    return value


if __name__ == "__main__":
    sys.exit(run_main(main, prog=f"{PROG}-ray"))
