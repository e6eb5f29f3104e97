"""No secret on disk, in a log, an XCom or an error.

On-prem training, data validation and drift run for real with recognisable secrets around them: a SQL
connection's password holding ``@``, ``/`` and ``:`` (it travels %-escaped inside the URL), an API key
and a URL with a password in the worker's environment, and a secret in the training spec's ``env``.
Then every file they left, every log record and every byte printed, every XCom and return value and
every exception text is searched: no spelling of any secret may be found. The search is shown to find
a secret planted where it looks.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from airflow.sdk.log import redact
from sql_testing import password_connection, require_password
from trainkit_testing import first_trigger_event, make_context

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.demo.data import make_churn_frame
from airflow_trainkit.exceptions import DataValidationFailed, DriftDetected, TrainingJobFailed
from airflow_trainkit.operators.drift import DriftCheckOperator, drift_alias
from airflow_trainkit.operators.training import TrainModelOperator
from airflow_trainkit.operators.validation import ValidateDataOperator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
CONTRACT = str(REPO / "example_dags" / "contracts" / "churn.yaml")
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb", "age", "contract", "region"]

# name -> (head, rest). The head (letters and digits) survives every escaping (%-, +-, SQLAlchemy's),
# so looking for the heads finds every spelling of a secret, and a part of one too.
_PARTS = {
    "connection password": ("tkConnPw7q", "@/:rest"),
    "MY_SERVICE_API_KEY": ("tkApiKey8r", "-value"),
    "DATABASE_URL password": ("tkUrlPw9s", "@rest"),
    "spec.env secret": ("tkSpecEnv0t", "-value"),
}
HEADS = {name: head for name, (head, _) in _PARTS.items()}
SECRETS = {name: head + rest for name, (head, rest) in _PARTS.items()}
DATABASE_URL = f"postgresql://svc:{quote(SECRETS['DATABASE_URL password'], safe='')}@db.internal/app"
# The job reports which variables it sees, never their values.
REPORT_ENV = (
    "for v in TK_SPEC_SECRET MY_SERVICE_API_KEY DATABASE_URL AIRFLOW_CONN_TK_WAREHOUSE; do "
    'if [ -n "$(printenv $v)" ]; then echo "$v=set"; else echo "$v=unset"; fi; done'
)


def find_secrets(trees: Iterable[Path], texts: Mapping[str, str]) -> list[str]:
    """``"<where>: <secret>"`` for every file under ``trees`` and every text holding a secret's head."""
    hits = []
    for tree in trees:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                hits += [f"{path}: {name}" for name, head in HEADS.items() if head.encode() in data]
    for where, text in texts.items():
        hits += [f"{where}: {name}" for name, head in HEADS.items() if head in text]
    return hits


def error_text(err: BaseException) -> str:
    """What a task log shows of an exception: its traceback, with the chain it did not suppress."""
    return "".join(traceback.format_exception(err)) + repr(err)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite warehouse behind a connection whose password holds '@', '/' and ':'."""
    database = str(tmp_path / "warehouse.db")
    clean = make_churn_frame(2000, seed=7)
    bad = clean.copy()
    bad.loc[:9, "age"] = 250
    with sqlite3.connect(database) as conn:
        clean.to_sql("churn", conn, index=False)
        bad.to_sql("churn_bad", conn, index=False)
        make_churn_frame(2000, seed=8, drift=0.5).to_sql("churn_drifted", conn, index=False)
    require_password(database, SECRETS["connection password"])
    password_connection(
        monkeypatch, "tk_warehouse", database, login="trainer", password=SECRETS["connection password"]
    )
    password_connection(monkeypatch, "tk_wrong", database, login="trainer", password="not-the-password")
    return "tk_warehouse"


def test_no_secret_reaches_a_file_a_log_an_xcom_or_an_error(
    onprem_root: Path,
    warehouse: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MY_SERVICE_API_KEY", SECRETS["MY_SERVICE_API_KEY"])
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    # Temporary files of the libraries (GX's Data Docs, ...) land in the searched tree too.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    caplog.set_level(logging.DEBUG)
    texts: dict[str, str] = {}
    contexts: list[dict[str, Any]] = []

    def context(task_id: str) -> dict[str, Any]:
        from airflow.sdk.execution_time.context import OutletEventAccessors

        ctx = make_context(dag_id="no_secrets", run_id="manual__1", task_id=task_id)
        ctx.update(run_id="manual__1", dag=None, outlet_events=OutletEventAccessors())
        contexts.append(ctx)
        return ctx

    def run(name: str, op: Any, *, raises: type[BaseException] | None = None) -> Any:
        ctx = context(op.task_id)
        try:
            try:
                result = op.execute(ctx)
            except TaskDeferred as deferred:
                texts[f"{name} trigger"] = json.dumps(deferred.trigger.serialize(), default=str)
                texts[f"{name} deferral"] = json.dumps(deferred.kwargs, default=str)
                event = first_trigger_event(deferred.trigger)
                texts[f"{name} event"] = json.dumps(event, default=str)
                result = op.execute_complete(ctx, event=event, **deferred.kwargs)
        except Exception as err:
            if raises is None or not isinstance(err, raises):
                raise
            texts[f"{name} error"] = error_text(err)
            return err
        assert raises is None, f"{name} raised nothing"
        texts[f"{name} result"] = json.dumps(result, default=str)
        return result

    # Training on this host: the job gets spec.env, and none of the worker's secrets.
    spec = {"command": ["sh", "-c", REPORT_ENV], "env": {"TK_SPEC_SECRET": SECRETS["spec.env secret"]}}
    trained = run(
        "train", TrainModelOperator(task_id="train", backend="onprem", spec=spec, poll_interval=0.05)
    )
    job_dir = onprem_root / trained["job_id"]
    assert (job_dir / "output.log").read_text().split() == [
        "TK_SPEC_SECRET=set",
        "MY_SERVICE_API_KEY=unset",
        "DATABASE_URL=unset",
        "AIRFLOW_CONN_TK_WAREHOUSE=unset",
    ]
    failing = {**spec, "command": ["sh", "-c", f"{REPORT_ENV}; exit 3"]}
    run(
        "train failing",
        TrainModelOperator(task_id="train_failing", backend="onprem", spec=failing, poll_interval=0.05),
        raises=TrainingJobFailed,
    )

    # Validation and drift through the password-protected connection: passing, failing, erring.
    def validate(task_id: str, data: str) -> ValidateDataOperator:
        return ValidateDataOperator(task_id=task_id, data=data, contract=CONTRACT, database_conn_id=warehouse)

    assert run("validate", validate("validate", "SELECT * FROM churn"))["success"]
    run("validate bad", validate("validate_bad", "SELECT * FROM churn_bad"), raises=DataValidationFailed)
    run("validate missing", validate("validate_missing", "SELECT * FROM missing"), raises=OSError)

    def drift(task_id: str, current: str, conn_id: str = warehouse, **kwargs: Any) -> DriftCheckOperator:
        return DriftCheckOperator(
            task_id=task_id,
            reference="SELECT * FROM churn",
            current=f"SELECT * FROM {current}",
            reference_database_conn_id=conn_id,
            current_database_conn_id=conn_id,
            config={"columns": FEATURES, "drift_share": 0.3},
            **kwargs,
        )

    summary = run("drift", drift("drift", "churn_drifted", on_failure="warn", model_name="churn"))
    events = contexts[-1]["outlet_events"][drift_alias("churn")].asset_alias_events
    assert summary["drift"] is True and len(events) == 1
    texts["drift asset event"] = json.dumps(events[0].extra, default=str)
    run(
        "drift fail",
        drift("drift_fail", "churn_drifted", report_uri=str(tmp_path / "r")),
        raises=DriftDetected,
    )
    run("drift missing", drift("drift_missing", "missing"), raises=OSError)
    refused = run("drift refused", drift("drift_refused", "churn", conn_id="tk_wrong"), raises=OSError)
    assert "password authentication failed for user 'trainer'" in str(refused)

    # Both operators masked the password as written and as the URL spells it.
    for spelling in (SECRETS["connection password"], quote(SECRETS["connection password"], safe="")):
        assert redact(f"<{spelling}>") == "<***>"

    for i, ctx in enumerate(contexts):
        texts[f"xcoms {i}"] = json.dumps(ctx["ti"].xcoms, default=str)
        texts[f"task state {i}"] = json.dumps(ctx["task_state_store"].values, default=str)
    texts["log records"] = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )
    printed = capfd.readouterr()
    texts["stdout"], texts["stderr"] = printed.out, printed.err
    trees = [tmp_path]
    assert (job_dir / "job.json").exists() and list((tmp_path / "trainkit" / "reports").rglob("*.html"))
    assert find_secrets(trees, texts) == []

    # The search finds what it looks for: a secret planted in a job directory, in any spelling.
    (job_dir / "planted.txt").write_text(f"DATABASE_URL={DATABASE_URL}")
    assert find_secrets(trees, texts) == [f"{job_dir / 'planted.txt'}: DATABASE_URL password"]
    texts["planted"] = quote_plus(SECRETS["connection password"])
    assert find_secrets([], texts) == ["planted: connection password"]
