"""``trainkit demo`` (the README's ``./run demo``): a line per task, the summary, the log in a file.

This runs the ``trainkit_demo`` DAG once end to end, so tests/example_dags does not run it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_TASKS = [
    "prepare_data",
    "validate",
    "quote_costs",
    "train",
    "register",
    "promote",
    "check_drift",
    "summary",
]


@pytest.mark.integration
def test_demo_prints_a_line_per_task_then_the_summary(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINKIT_", "AIRFLOW"))}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "trainkit"), "demo", "--home", str(tmp_path / "demo-home")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    finished = lines.index("trainkit demo finished:")
    assert finished <= 40, "\n".join(lines[:finished])
    before = lines[:finished]
    for task_id in DEMO_TASKS:
        (line,) = [x for x in before if x.startswith(f"  {task_id} ")]
        assert line.split()[1] == "success", line
    train = next(x for x in before if x.startswith("  train "))
    assert "auc_roc" in train and "log_loss" in train
    assert any(x.startswith("trainkit_demo run ") and "success (8 success)" in x for x in before)
    log = Path(next(x for x in before if x.startswith("full log: ")).removeprefix("full log: "))
    assert log.is_relative_to(tmp_path / "demo-home") and len(log.read_text().splitlines()) > 100
    # MLflow's and Airflow's chatter is in the log only.
    assert "Model validation passed" not in proc.stdout and "Model validation passed" in log.read_text()
    summary = lines[finished + 1 :]
    assert any(x.startswith("  promotion: promoted") for x in summary)
    assert summary[-1] == f"  full log: {log}"
