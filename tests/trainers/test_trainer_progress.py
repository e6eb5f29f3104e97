"""The built-in trainer's progress.json: written while it trains, kept in the finished output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_trainkit.trainers.contract import PROGRESS_FILE, progress_history

pytestmark = pytest.mark.integration  # trains real models in a process of their own

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 300


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from airflow_trainkit.demo.data import write_churn_dataset

    return write_churn_dataset(tmp_path_factory.mktemp("churn") / "churn.csv", 400)


def trainer(table: Path, output: Path, *flags: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINKIT_", "SM_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    argv = ["--train", str(table), "--target", "churned", "--drop-columns", "customer_id"]
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_trainkit.trainers.xgboost", *argv, "--output", str(output), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_progress_grows_while_training_and_the_output_keeps_the_whole_history(table, tmp_path):
    out = tmp_path / "out"
    flags = ["--num-boost-round", str(ROUNDS), "--early-stopping-rounds", "0", "--progress-interval", "0"]
    proc = trainer(table, out, *flags)
    seen: list[dict] = []  # documents read while the process still ran
    while proc.poll() is None:
        try:
            document = json.loads((out / PROGRESS_FILE).read_text())
        except FileNotFoundError:  # not yet; a reader never sees half a file (atomic rename)
            pass
        else:
            if proc.poll() is None and (not seen or document["round"] != seen[-1]["round"]):
                seen.append(document)
        time.sleep(0.02)
    log = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, log
    during = [d for d in seen if d["history"]]
    assert len(during) >= 2, f"saw {[d['round'] for d in seen]} while it ran"
    rounds = [d["round"] for d in during]
    assert rounds == sorted(rounds) and rounds[0] < rounds[-1] <= ROUNDS
    for document in during:
        assert document["first_round"] == 1
        assert set(document["history"]) == {
            "train-auc",
            "train-logloss",
            "validation-auc",
            "validation-logloss",
        }
        assert {len(v) for v in document["history"].values()} == {document["round"]}
    assert during[0]["history"]["validation-auc"] == during[-1]["history"]["validation-auc"][: rounds[0]]

    # The finished folder, written whole, has the final progress.json among its files.
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "metrics.json",
        "model.json",
        "model_meta.json",
        PROGRESS_FILE,
    ]
    final = json.loads((out / PROGRESS_FILE).read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert final["round"] == metrics["rounds_trained"] == ROUNDS
    assert {len(v) for v in final["history"].values()} == {ROUNDS}
    assert final["updated_at"].endswith("+00:00")
    history = progress_history((out / PROGRESS_FILE).read_bytes())
    assert history is not None and len(history["validation-logloss"]) == ROUNDS


def test_early_stopping_and_resume_count_the_rounds_of_this_run(table, tmp_path):
    out, checkpoints = tmp_path / "out", tmp_path / "ckpt"
    base = ["--progress-interval", "0", "--checkpoint", str(checkpoints), "--checkpoint-interval", "10"]
    # Early stopping: the history holds every round trained, the stopping one included.
    proc = trainer(table, out, *base, "--num-boost-round", "400", "--early-stopping-rounds", "10")
    assert proc.wait() == 0, proc.stdout.read() if proc.stdout else ""
    metrics = json.loads((out / "metrics.json").read_text())
    first = json.loads((out / PROGRESS_FILE).read_text())
    assert metrics["rounds_trained"] < 400  # it stopped early
    assert first["round"] == metrics["rounds_trained"] and first["first_round"] == 1
    assert {len(v) for v in first["history"].values()} == {metrics["rounds_trained"]}

    # A resumed run: rounds count from the checkpoint, the history holds this run's rounds only.
    checkpointed = max(int(p.stem[6:]) for p in checkpoints.glob("model_*.json"))
    proc = trainer(
        table, out, *base, "--num-boost-round", str(checkpointed + 7), "--early-stopping-rounds", "0"
    )
    assert proc.wait() == 0, proc.stdout.read() if proc.stdout else ""
    resumed = json.loads((out / PROGRESS_FILE).read_text())
    assert (resumed["first_round"], resumed["round"]) == (checkpointed + 1, checkpointed + 7)
    assert {len(v) for v in resumed["history"].values()} == {7}
