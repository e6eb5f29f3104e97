"""The built-in XGBoost trainer's settings: its command line, and the merge of flags, hyperparameters
and defaults into one checked :class:`XGBoostConfig`."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any

from airflow_trainkit.trainers.contract import BadInput, TrainerEnv

PROG = "trainkit-xgboost"
TASKS = ("classification", "regression", "auto")
MODEL_FORMATS = ("json", "ubj")


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
    num_boost_round: int = 2000
    early_stopping_rounds: int = 50
    learning_rate: float = 0.05
    max_depth: int | None = None  # None: from the training rows, see ``auto_max_depth``
    scale_pos_weight: float | str | None = None
    validation_fraction: float = 0.2
    drop_columns: list[str] = field(default_factory=list)
    seed: int = 42
    checkpoint_uri: str | None = None
    checkpoint_interval: int = 10
    log_every: int = 10
    progress_interval: float = 2.0  # seconds between writes of progress.json; 0: after every round
    model_format: str = "json"
    device: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)


# Tree depth by training rows when max_depth is "auto": few rows support few splits per tree, so
# shallow trees generalise better on small tables; large tables with interactions need deeper ones.
AUTO_MAX_DEPTH = ((1_000, 3), (10_000, 4))
AUTO_MAX_DEPTH_ABOVE = 6


def auto_max_depth(train_rows: int) -> int:
    """The tree depth for ``train_rows`` training rows: 3 below 1,000, 4 below 10,000, else 6."""
    for below, depth in AUTO_MAX_DEPTH:
        if train_rows < below:
            return depth
    return AUTO_MAX_DEPTH_ABOVE


# hyperparameter name -> (converter, check, what a good value is)
_KNOWN: dict[str, tuple[Any, Any, str]] = {
    "target": (str, lambda v: bool(v), "a column name"),
    "task": (str, lambda v: v in TASKS, "one of " + ", ".join(TASKS)),
    "num_boost_round": (int, lambda v: v >= 1, "an integer >= 1"),
    "early_stopping_rounds": (int, lambda v: v >= 0, "an integer >= 0 (0 turns it off)"),
    "learning_rate": (float, lambda v: v > 0, "a number > 0"),
    "max_depth": (int, lambda v: v >= 0, "an integer >= 0 or 'auto'"),
    "validation_fraction": (float, lambda v: 0 < v < 1, "a number between 0 and 1"),
    "seed": (int, lambda v: True, "an integer"),
    "checkpoint_interval": (int, lambda v: v >= 1, "an integer >= 1"),
    "log_every": (int, lambda v: v >= 1, "an integer >= 1"),
    "progress_interval": (
        float,
        lambda v: math.isfinite(v) and v >= 0,
        "a number of seconds >= 0 (0: after every round)",
    ),
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
    add("--num-boost-round", type=int, help="maximum boosting rounds (default 2000)")
    add(
        "--early-stopping-rounds",
        type=int,
        help="stop after N rounds without improvement of the validation log-loss or RMSE (default 50, 0=off)",
    )
    add("--learning-rate", type=float, help="eta (default 0.05)")
    add(
        "--max-depth",
        help="tree depth, or 'auto' (default): 3 below 1,000 training rows, 4 below 10,000, else 6",
    )
    add("--scale-pos-weight", help="'auto' (negatives/positives) or a number; binary classification only")
    add("--seed", type=int, help="random seed for the split and XGBoost (default 42)")
    add("--drop-columns", help="comma-separated columns to leave out, e.g. an id")
    add("--checkpoint", help="local checkpoint folder (env TRAINKIT_CHECKPOINT_URI)")
    add("--checkpoint-interval", type=int, help="save a checkpoint every N rounds (default 10)")
    add(
        "--progress-interval",
        type=float,
        help="seconds between writes of progress.json to a local output folder (default 2, 0=every round)",
    )
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
    hps = _merged_hyperparameters(args, env)
    values = _known_values(hps)
    spw = _scale_pos_weight(hps.get("scale_pos_weight"))
    if spw is not None:
        values["scale_pos_weight"] = spw
    drop = _drop_columns(hps.get("drop_columns"))
    if drop is not None:
        values["drop_columns"] = drop

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


def _merged_hyperparameters(args: argparse.Namespace, env: TrainerEnv) -> dict[str, Any]:
    """The job's hyperparameters, then each ``--param KEY=VALUE``, then the named flags that were given."""
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
        "progress_interval": args.progress_interval,
        "model_format": args.model_format,
        "scale_pos_weight": args.scale_pos_weight,
        "drop_columns": args.drop_columns,
    }
    hps.update({k: v for k, v in flag_map.items() if v is not None})
    if str(hps.get("max_depth", "")).strip().lower() == "auto":
        hps.pop("max_depth")  # the default: chosen from the training rows
    return hps


def _known_values(hps: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``_KNOWN`` that ``hps`` sets, converted and checked."""
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
    return values


def _scale_pos_weight(spw: Any) -> float | str | None:
    """``"auto"``, a positive number, or ``None`` when not set."""
    if spw is None or spw == "":
        return None
    if str(spw).strip().lower() == "auto":
        return "auto"
    try:
        weight = float(spw)
    except (TypeError, ValueError):
        raise BadInput(f"hyperparameter 'scale_pos_weight' must be 'auto' or a number, got {spw!r}") from None
    if not weight > 0:
        raise BadInput(f"hyperparameter 'scale_pos_weight' must be > 0, got {spw!r}")
    return weight


def _drop_columns(drop: Any) -> list[str] | None:
    """Columns to leave out, from a list of names or ``"a,b"``; ``None`` when not set."""
    if isinstance(drop, str):
        return [c.strip() for c in drop.split(",") if c.strip()]
    if isinstance(drop, list) and all(isinstance(c, str) for c in drop):
        return list(drop)
    if drop is not None:
        raise BadInput(f"hyperparameter 'drop_columns' must be a list of names or 'a,b', got {drop!r}")
    return None
