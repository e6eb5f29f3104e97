"""The built-in XGBoost trainer, run on the demo churn data as the on-prem backend starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_trainkit.trainers.contract import (
    EXIT_BAD_INPUT,
    EXIT_UNEXPECTED,
    TrainerEnv,
    read_channel,
    run_main,
)
from airflow_trainkit.trainers.xgboost import PROG, build_parser, main, resolve_config

pytestmark = pytest.mark.integration  # trains real models, some in a process of their own

REPO = Path(__file__).resolve().parents[2]
ROWS = 5000  # the demo's size; the churn label is noisy (best possible AUC ~0.77), so keep enough rows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from airflow_trainkit.demo.data import write_churn_dataset

    folder = tmp_path_factory.mktemp("churn")
    write_churn_dataset(folder / "churn.csv", ROWS)
    write_churn_dataset(folder / "churn.parquet", ROWS)
    write_churn_dataset(folder / "holdout.csv", 1000, seed=11)
    return folder


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(("TRAINKIT_", "SM_")) or key == "CUDA_VISIBLE_DEVICES":
            monkeypatch.delenv(key)
    return monkeypatch


def backend_env(inputs: dict[str, str], output: Path, hyperparameters: dict, **extra: str) -> dict[str, str]:
    """The variables the on-prem backend sets for a job (see backends/onprem ``submit``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINKIT_", "SM_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
            "TRAINKIT_JOB_ID": "test-job",
            "TRAINKIT_OUTPUT_URI": str(output),
            "TRAINKIT_INPUTS": json.dumps(inputs),
            "TRAINKIT_HYPERPARAMETERS": json.dumps(hyperparameters),
            "TRAINKIT_GPU_COUNT": "0",
            "CUDA_VISIBLE_DEVICES": "",
            **{f"TRAINKIT_INPUT_{name.upper()}": uri for name, uri in inputs.items()},
            **extra,
        }
    )
    return env


def run_module(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_trainkit.trainers.xgboost", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def run_inline(argv: list[str]) -> int:
    return run_main(main, argv, prog=PROG)


def no_leftovers(folder: Path) -> list[str]:
    """Hidden staging or replaced folders next to ``folder``."""
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


@pytest.fixture(scope="module")
def classification_run(data_dir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = data_dir / "out-classification"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")  # the backend pre-creates the folder
    env = backend_env(
        {"train": str(data_dir / "churn.csv")},
        out,
        {"target": "churned", "drop_columns": ["customer_id"], "num_boost_round": 200},
    )
    return run_module(env), out


def test_classification_writes_model_and_metrics(classification_run) -> None:
    proc, out = classification_run
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "metrics.json",
        "model.json",
        "model_meta.json",
        "progress.json",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["auc_roc"] > 0.7
    assert 0 < metrics["f1_weighted"] <= 1
    assert 0 < metrics["log_loss"] < 0.69
    assert metrics["n_train"] == 4000 and metrics["n_validation"] == 1000
    assert 0 <= metrics["best_iteration"] < metrics["rounds_trained"] <= 200
    meta = json.loads((out / "model_meta.json").read_text())
    assert meta["task"] == "classification" and meta["target"] == "churned"
    assert meta["objective"] == "binary:logistic"
    assert "customer_id" not in meta["feature_names"] and "churned" not in meta["feature_names"]
    assert meta["feature_types"]["contract"] == "categorical"
    assert meta["categories"]["region"] == ["east", "north", "south", "west"]
    assert meta["params"]["device"] == "cpu" and meta["params"]["tree_method"] == "hist"
    assert set(meta["library_versions"]) >= {"xgboost", "pandas", "scikit-learn"}


def test_classification_logs_with_timestamps_every_ten_rounds(classification_run) -> None:
    proc, _ = classification_run
    lines = proc.stdout.splitlines()
    rounds = [line for line in lines if " round 10/200 " in line or " round 20/200 " in line]
    assert len(rounds) == 2, proc.stdout
    assert "validation-auc=" in rounds[0] and "validation-logloss=" in rounds[0]
    assert all(line[:4].isdigit() and line[4] == "-" and "T" in line[:20] for line in lines)


def test_model_loads_back_and_predicts(classification_run, data_dir: Path) -> None:
    import pandas as pd
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    _, out = classification_run
    meta = json.loads((out / "model_meta.json").read_text())
    booster = xgb.Booster(model_file=str(out / "model.json"))
    assert booster.num_boosted_rounds() == meta["num_boosted_rounds"] == meta["best_iteration"] + 1
    frame = pd.read_csv(data_dir / "holdout.csv")
    features = frame[meta["feature_names"]].copy()
    for name, categories in meta["categories"].items():
        features[name] = pd.Categorical(features[name], categories=categories)
    predictions = booster.predict(xgb.DMatrix(features, enable_categorical=True))
    assert predictions.shape == (1000,)
    assert ((predictions > 0) & (predictions < 1)).all()
    assert roc_auc_score(frame["churned"], predictions) > 0.7


def test_output_folder_replaced_whole_with_no_leftovers(classification_run) -> None:
    _, out = classification_run
    assert not (out / "stale.txt").exists()
    assert no_leftovers(out) == []


def test_missing_target_exits_2_naming_the_column(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = backend_env({"train": str(data_dir / "churn.csv")}, out, {"target": "churn_flag"})
    proc = run_module(env)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "target column 'churn_flag' is not in the training table" in proc.stderr
    assert "churned" in proc.stderr  # the columns that are there
    assert not out.exists()


def test_regression_writes_rmse_and_mape(data_dir: Path, tmp_path: Path, clean_env, capsys) -> None:
    out = tmp_path / "reg"
    code = run_inline(
        [
            "--train",
            str(data_dir / "churn.parquet"),
            "--target",
            "tenure_months",
            "--task",
            "regression",
            "--drop-columns",
            "customer_id",
            "--num-boost-round",
            "60",
            "--output",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"rmse", "mape", "n_train", "n_validation", "best_iteration"}
    assert 0 < metrics["rmse"] < 25  # tenure is gamma(2, 12): std ~17; churn and contract carry signal
    assert metrics["mape"] > 0
    meta = json.loads((out / "model_meta.json").read_text())
    assert meta["task"] == "regression" and meta["objective"] == "reg:squarederror"


def test_validation_file_and_scale_pos_weight_auto(data_dir: Path, tmp_path: Path, clean_env, capsys) -> None:
    out = tmp_path / "val"
    clean_env.setenv("TRAINKIT_INPUTS", json.dumps({"train": str(data_dir / "churn.parquet")}))
    clean_env.setenv("TRAINKIT_INPUT_VALIDATION", str(data_dir / "holdout.csv"))
    clean_env.setenv(
        "TRAINKIT_HYPERPARAMETERS",
        json.dumps(
            {"target": "churned", "scale_pos_weight": "auto", "drop_columns": "customer_id", "max_depth": 3}
        ),
    )
    clean_env.setenv("TRAINKIT_OUTPUT_URI", str(out))
    code = run_inline(["--num-boost-round", "40"])
    logs = capsys.readouterr().out
    assert code == 0, logs
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == ROWS and metrics["n_validation"] == 1000
    meta = json.loads((out / "model_meta.json").read_text())
    assert meta["inputs"]["validation"].endswith("holdout.csv")
    assert meta["params"]["max_depth"] == 3
    assert 4.0 < meta["params"]["scale_pos_weight"] < 7.0  # ~16 % positives
    assert "scale_pos_weight=auto:" in logs


def test_checkpoint_resume_trains_only_the_remaining_rounds(
    data_dir: Path, tmp_path: Path, clean_env, capsys
) -> None:
    import xgboost as xgb

    out, checkpoints = tmp_path / "out", tmp_path / "ckpt"
    clean_env.setenv("TRAINKIT_CHECKPOINT_URI", str(checkpoints))
    argv = [
        "--train",
        str(data_dir / "churn.csv"),
        "--target",
        "churned",
        "--drop-columns",
        "customer_id",
        "--num-boost-round",
        "25",
        "--early-stopping-rounds",
        "0",
        # Row and column sampling draw anew on resume (XGBoost keeps no random state in a model):
        # without them, a resumed run is the uninterrupted run, which the last assert checks.
        "--param",
        "subsample=1",
        "--param",
        "colsample_bytree=1",
        "--output",
        str(out),
    ]
    assert run_inline(argv) == 0
    first = capsys.readouterr().out
    assert "no checkpoint in" in first
    assert sorted(p.name for p in checkpoints.iterdir()) == ["model_000010.json", "model_000020.json"]
    first_metrics = json.loads((out / "metrics.json").read_text())
    assert first_metrics["rounds_trained"] == 25 and first_metrics["resumed_from_round"] == 0

    import shutil

    shutil.rmtree(out)  # as if the job died before writing its output
    assert run_inline(argv) == 0
    second = capsys.readouterr().out
    assert "resuming from checkpoint" in second and "at round 20" in second
    assert "trained 5 round(s) in this run (rounds 21..25)" in second
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_round"] == 20 and metrics["rounds_trained"] == 5
    assert metrics["num_boosted_rounds"] == 25
    assert xgb.Booster(model_file=str(out / "model.json")).num_boosted_rounds() == 25
    # Resuming on the same data continues the same model: the scores match the uninterrupted run.
    assert metrics["log_loss"] == pytest.approx(first_metrics["log_loss"], rel=1e-4)


def test_single_class_target_exits_2(tmp_path: Path, clean_env, capsys) -> None:
    from airflow_trainkit.demo.data import make_churn_frame

    frame = make_churn_frame(200)
    frame["churned"] = 0
    frame.to_csv(tmp_path / "one.csv", index=False)
    argv = ["--train", str(tmp_path / "one.csv"), "--target", "churned", "--task", "classification"]
    code = run_inline([*argv, "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert "target column 'churned' has a single class 0" in err


def test_unreadable_and_empty_inputs_exit_2_naming_the_uri(tmp_path: Path, clean_env, capsys) -> None:
    output = ["--target", "y", "--output", str(tmp_path / "out")]
    missing = tmp_path / "nope.csv"
    assert run_inline(["--train", str(missing), *output]) == EXIT_BAD_INPUT
    assert f"input 'train': cannot read '{missing}'" in capsys.readouterr().err

    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    assert run_inline(["--train", str(broken), *output]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"cannot read '{broken}'" in err and "parquet" in err.lower()

    empty = tmp_path / "empty.csv"
    empty.write_text("x,y\n")
    assert run_inline(["--train", str(empty), *output]) == EXIT_BAD_INPUT
    assert "has no rows" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_hyperparameter_names_field_and_value(tmp_path: Path, clean_env, capsys) -> None:
    clean_env.setenv("TRAINKIT_HYPERPARAMETERS", json.dumps({"target": "y", "learning_rate": "fast"}))
    assert run_inline(["--train", "x.csv", "--output", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "hyperparameter 'learning_rate' must be a number > 0, got 'fast'" in capsys.readouterr().err


def test_failure_after_training_leaves_the_old_output(
    data_dir: Path, tmp_path: Path, clean_env, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_trainkit.trainers import xgboost as trainer

    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"auc_roc": 0.5}')

    def broken_metrics(*args, **kwargs):
        raise RuntimeError("evaluation blew up")

    monkeypatch.setattr(trainer, "_metrics", broken_metrics)
    argv = ["--train", str(data_dir / "holdout.csv"), "--target", "churned", "--num-boost-round", "5"]
    assert run_inline([*argv, "--output", str(out)]) == EXIT_UNEXPECTED
    assert "RuntimeError: evaluation blew up" in capsys.readouterr().err
    # The old output stays; only the progress of the failed run was written beside it as it trained.
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "progress.json"]
    assert json.loads((out / "progress.json").read_text())["round"] == 5
    assert (out / "metrics.json").read_text() == '{"auc_roc": 0.5}'
    assert no_leftovers(out) == []


@pytest.mark.parametrize(
    ("gpus", "visible", "device"),
    [("1", "0", "cuda"), ("1", "", "cpu"), ("0", "0", "cpu"), ("2", "0,1", "cuda"), ("1", "-1", "cpu")],
)
def test_device_follows_the_gpus_given(gpus: str, visible: str, device: str) -> None:
    env = TrainerEnv.from_env(
        {
            "TRAINKIT_GPU_COUNT": gpus,
            "CUDA_VISIBLE_DEVICES": visible,
            "TRAINKIT_HYPERPARAMETERS": '{"target": "y"}',
        }
    )
    config = resolve_config(build_parser().parse_args(["--train", "t.csv", "--output", "/o"]), env)
    assert config.device == device


def test_flags_override_hyperparameters_and_unknown_ones_pass_through() -> None:
    env = TrainerEnv.from_env(
        {
            "TRAINKIT_INPUTS": '{"train": "/a.csv", "validation": "/v.csv"}',
            "TRAINKIT_INPUT_TRAIN": "/b.csv",
            "TRAINKIT_OUTPUT_URI": "/out",
            "TRAINKIT_HYPERPARAMETERS": json.dumps(
                {"target": "y", "max_depth": 8, "subsample": 0.7, "seed": "3"}
            ),
        }
    )
    args = build_parser().parse_args(["--max-depth", "2", "--param", "min_child_weight=4"])
    config = resolve_config(args, env)
    assert (config.train_uri, config.validation_uri, config.output_uri) == ("/b.csv", "/v.csv", "/out")
    assert config.max_depth == 2 and config.seed == 3
    assert config.params == {"subsample": 0.7, "min_child_weight": "4"}


def test_sagemaker_env_fallback_and_folder_channel(tmp_path: Path) -> None:
    from airflow_trainkit.demo.data import write_churn_dataset

    train_dir = tmp_path / "train"
    write_churn_dataset(train_dir / "part-0.csv", 30, seed=1)
    write_churn_dataset(train_dir / "part-1.parquet", 20, seed=2)
    (train_dir / "README").write_text("not a table")
    env = TrainerEnv.from_env(
        {
            "SM_CHANNEL_TRAIN": str(train_dir),
            "SM_MODEL_DIR": str(tmp_path / "model"),
            "SM_HPS": '{"target": "churned", "num_boost_round": "50"}',
            "SM_NUM_GPUS": "1",
            "CUDA_VISIBLE_DEVICES": "0",
        }
    )
    assert env.source == "sagemaker" and env.has_gpu
    assert env.inputs == {"train": str(train_dir)} and env.output_uri == str(tmp_path / "model")
    assert resolve_config(build_parser().parse_args([]), env).num_boost_round == 50
    assert len(read_channel("train", str(train_dir))) == 50


def test_import_is_light() -> None:
    code = (
        "import sys, airflow_trainkit.trainers.xgboost; "
        "print(sorted(m for m in ('xgboost', 'pandas', 'numpy', 'sklearn') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "[]"
