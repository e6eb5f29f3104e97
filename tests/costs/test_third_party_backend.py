"""PROOF: a backend from another package is quoted, picked, trained on and costed, with no edit
under ``airflow_trainkit/``.

The package, ``acme_trainkit_backend``, is written by the test under ``tmp_path`` with a
``*.dist-info`` whose ``entry_points.txt`` registers it in the ``airflow_trainkit.backends`` group,
the way ``pip install`` would leave it. Its backend runs the job's command as a real subprocess and
keeps the job's state in files; it declares its capabilities and its pricing, and ships its prices as
rows of a price catalog (``$TRAINKIT_PRICE_CATALOG``) whose ``backend`` is its catalog key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING

import pytest
from trainkit_testing import isolated_backends, make_context

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration  # installs a package and runs its jobs as processes

ACME = '''
"""Acme GPU cloud for airflow-trainkit: each job is a subprocess whose state lives in files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from airflow_trainkit.exceptions import TrainingJobNotFound
from airflow_trainkit.training.backend import JobPhase, JobStatus, TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing

_RUN = '"$@" > output.log 2>&1; echo $? > exit_code.tmp; mv exit_code.tmp exit_code'
_CHILDREN = []  # reaped by the interpreter at exit; a real cloud would not need this


class AcmeState(str, Enum):
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


@register_backend("acme")
class AcmeBackend(TrainingBackend):
    State = AcmeState
    PHASES = {
        AcmeState.RUNNING: JobPhase.RUNNING,
        AcmeState.DONE: JobPhase.SUCCEEDED,
        AcmeState.FAILED: JobPhase.FAILED,
        AcmeState.CANCELLED: JobPhase.STOPPED,
    }
    capabilities = Capabilities(
        max_instance_count=1,
        not_applicable={"image": "jobs run on the instance itself", "tags": "jobs carry no labels"},
    )
    pricing = BackendPricing(
        catalog_key="acme",
        basis="wall time x the instance's hourly price (spot price for spot runs), at least one minute",
        minimum_billed_seconds=60,
    )
    poll_interval = 0.1

    @property
    def root(self) -> Path:
        return Path(os.environ["ACME_ROOT"])

    def submit(self, spec, job, identity=None):
        name = self.ref(job).job_name
        job_dir = self.root / name
        job_dir.mkdir(parents=True)
        (job_dir / "output").mkdir()
        accelerator = spec.parsed_accelerator
        instance = spec.instance_type_for("acme") or ("acme-t4" if accelerator else "acme-cpu")
        env = {**os.environ, **spec.env, "TRAINKIT_OUTPUT_URI": str(job_dir / "output")}
        started = datetime.now(timezone.utc).isoformat()
        process = subprocess.Popen(
            ["sh", "-c", _RUN, "acme-job", *spec.command],
            cwd=job_dir,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        _CHILDREN.append(process)
        record = {"pid": process.pid, "instance_type": instance, "started_at": started,
                  "task": identity.task_id if identity else None}
        (job_dir / "job.json").write_text(json.dumps(record))
        return self.describe(name)

    def describe(self, job):
        name = self.ref(job).job_name
        job_dir = self.root / name
        if not (job_dir / "job.json").exists():
            raise TrainingJobNotFound(self.name, name)
        record = json.loads((job_dir / "job.json").read_text())
        exit_file = job_dir / "exit_code"
        code = int(exit_file.read_text()) if exit_file.exists() else None
        if (job_dir / "stopped").exists():
            state = AcmeState.CANCELLED
        elif code is None:
            state = AcmeState.RUNNING
        else:
            state = AcmeState.DONE if code == 0 else AcmeState.FAILED
        started = datetime.fromisoformat(record["started_at"])
        ended = datetime.fromtimestamp(exit_file.stat().st_mtime, timezone.utc) if code is not None else None
        return JobStatus(
            job_id=name,
            state=state.value,
            phase=self.phase_of(state),
            message=None if code in (None, 0) else f"exit code {code}",
            started_at=record["started_at"],
            ended_at=ended.isoformat() if ended else None,
            billable_seconds=(ended - started).total_seconds() if ended else None,
            instance_type=record["instance_type"],
            output_uri=str(job_dir / "output"),
            details={"exit_code": code, "task": record["task"]},
        )

    def stop(self, job, *, reason="stopped by Airflow"):
        status = self.describe(job)
        if status.phase.terminal:
            return
        job_dir = self.root / status.job_id
        (job_dir / "stopped").write_text(reason)
        pid = json.loads((job_dir / "job.json").read_text())["pid"]
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def log_tail(self, job, lines=50):
        log = self.root / self.ref(job).job_name / "output.log"
        return log.read_text().splitlines()[-lines:] if log.exists() else []
'''

BROKEN = """
from airflow_trainkit.training.backend import TrainingBackend, register_backend
from airflow_trainkit.training.pricing import BackendPricing


@register_backend("broken")
class BrokenBackend(TrainingBackend):
    pricing = BackendPricing(catalog_key="broken", basis="wall time x price", spot_rate="sometimes")
"""

# Acme's price list, as rows of the price catalog: the T4 instance is cheaper than every cloud on
# spot, Azure ML included.
ACME_ROWS = (
    "acme,acme_gpu_cloud,eu-west,instance,acme-cpu,,0,4,16,0.12,0.05,USD,{today},https://acme.example/pricing,,published,\n"
    "acme,acme_gpu_cloud,eu-west,instance,acme-t4,T4,1,8,32,0.35,0.05,USD,{today},https://acme.example/pricing,,published,\n"
)
METRICS = 'import json, os; json.dump({"auc_roc": 0.91}, open(os.environ["TRAINKIT_OUTPUT_URI"] + "/metrics.json", "w")); print("trained on acme")'
SPEC = {
    "command": ["python3", "-c", METRICS],
    "accelerator": "T4:1",
    "spot": True,
    "allow_spot_without_checkpoint": True,
    "max_runtime": "10m",
}
LEFT_OUT = {
    "onprem": "spec.spot: the onprem backend has no spot capacity: its jobs run on hosts you own (got True)",
    "ray": "spec.spot: the ray backend runs on the cluster's own nodes and has no spot capacity to ask for (got True)",
}


def install(site: Path, module: str, entry_points: str, source: str | None) -> None:
    """What ``pip install`` leaves: the module, and a dist-info with its entry points."""
    if source is not None:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir(parents=True)
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[airflow_trainkit.backends]\n{entry_points}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A site folder on sys.path, a fresh backend registry, and a clean trainkit home."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    for name in (
        "TRAINKIT_PRICE_CATALOG",
        "TRAINKIT_ONPREM_COSTS",
        "TRAINKIT_PRICE_MAX_AGE",
        "TRAINKIT_PRICE_MAX_AGE_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)
    with isolated_backends():
        yield folder
    for module in ("acme_trainkit_backend", "broken_trainkit_backend"):
        sys.modules.pop(module, None)


@pytest.fixture
def acme(site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Acme installed, its jobs under ``tmp_path/acme-jobs``, its prices in the catalog in force."""
    install(site, "acme_trainkit_backend", "acme = acme_trainkit_backend:AcmeBackend", ACME)
    monkeypatch.setenv("ACME_ROOT", str(tmp_path / "acme-jobs"))
    catalog = tmp_path / "prices.csv"
    shipped = resources.files("airflow_trainkit.costs").joinpath("price_catalog.csv").read_text()
    catalog.write_text(shipped + ACME_ROWS.format(today=date.today().isoformat()))
    monkeypatch.setenv("TRAINKIT_PRICE_CATALOG", str(catalog))
    return site


def test_acme_is_quoted_picked_trained_on_and_costed(acme: Path, tmp_path: Path) -> None:
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator
    from airflow_trainkit.operators.training import TrainModelOperator
    from airflow_trainkit.training.backend import available_backends

    assert "acme" in available_backends()  # found through the entry point, nothing else
    quote_context = make_context(task_id="quote")
    quotes = CompareTrainingCostsOperator(
        task_id="quote", spec=SPEC, hours=1, pick="cheapest", report_uri=str(tmp_path / "report")
    ).execute(quote_context)
    by_backend = {q["backend"]: q for q in quotes["quotes"]}
    assert set(by_backend) == {"acme", "onprem", "sagemaker", "vertex_ai", "ray", "azure_ml"}
    assert by_backend["acme"]["instance_type"] == "acme-t4" and by_backend["acme"]["total"] == 0.05
    assert by_backend["acme"]["price_rows"][0]["source"] == "https://acme.example/pricing"
    assert (
        by_backend["acme"]["total"] < by_backend["azure_ml"]["total"]
    )  # Acme's spot T4 undercuts Azure ML's
    assert quotes["cheapest"]["backend"] == "acme"
    assert quotes["left_out"] == LEFT_OUT
    assert quote_context["ti"].xcoms["backend"] == "acme"
    assert "| acme | eu-west | acme-t4 |" in (tmp_path / "report" / "report.md").read_text()

    train = TrainModelOperator(
        task_id="train",
        backend=quote_context["ti"].xcoms["backend"],
        spec=SPEC,
        deferrable=False,
        poll_interval=0.1,
    )
    result = train.execute(make_context())
    assert result["backend"] == "acme" and result["state"] == "Done" and result["phase"] == "succeeded"
    assert result["metrics"] == {"auc_roc": 0.91}  # the command really ran, as a subprocess
    job_dir = tmp_path / "acme-jobs" / result["job_id"]
    assert (job_dir / "output.log").read_text() == "trained on acme\n"
    assert result["details"] == {"exit_code": 0, "task": "train"}
    cost = result["cost"]
    assert cost is not None
    assert cost["price_row"]["backend"] == "acme" and cost["price_row"]["instance_type"] == "acme-t4"
    assert cost["pricing"] == "spot" and cost["hourly_price"] == 0.05
    # A run of a few seconds is billed Acme's declared minute: 60 s at the spot price.
    assert result["billable_seconds"] < 60
    assert cost["amount"] == pytest.approx(60 / 3600 * 0.05, abs=1e-6)
    assert cost["basis"].startswith("wall time x the instance's hourly price")


def test_trainkit_costs_compare_quotes_and_picks_acme(acme: Path) -> None:
    def trainkit(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(acme), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, "-m", "airflow_trainkit.cli", "costs", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    compare = ["compare", "--accelerator", "T4:1", "--hours", "2", "--spot"]
    done = trainkit(*compare, "--json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert table["cheapest"]["backend"] == "acme" and table["cheapest"]["total"] == 0.1
    assert table["left_out"] == LEFT_OUT
    text = trainkit(*compare, "--pick-from-backends", "acme", "sagemaker", "azure_ml")
    assert text.returncode == 0, text.stderr
    acme_line = next(line for line in text.stdout.splitlines() if line.startswith("acme "))
    assert "acme-t4" in acme_line and "CHEAPEST" in acme_line and "0.10 USD" in acme_line
    assert "cheapest: acme acme-t4 in eu-west: 0.10 USD" in text.stdout
    assert "  - vertex_ai: not in pick_from_backends (acme, sagemaker, azure_ml)" in text.stdout
    rows = trainkit("catalog", "--backend", "acme")
    assert rows.returncode == 0 and "acme-cpu" in rows.stdout and "ml.g4dn" not in rows.stdout


def test_acme_capabilities_leave_it_out_of_the_cheapest(acme: Path) -> None:
    from airflow_trainkit.costs.quotes import quote_job

    table = quote_job({**SPEC, "instance_count": 2}, hours=1)
    assert table.left_out["acme"] == (
        "spec.instance_count: the acme backend runs at most 1 machine(s) per job (got 2)"
    )
    assert table.cheapest is not None and table.cheapest.backend == "azure_ml"
    with pytest.raises(
        ValueError, match=r"pick_from_backends: unknown backend 'acme_ml'.*known: acme, azure_ml"
    ):
        quote_job(SPEC, hours=1, pick_from_backends=["acme_ml"])


def test_without_its_rows_acme_is_quoted_as_not_available(acme: Path, monkeypatch) -> None:
    from airflow_trainkit.costs.quotes import quote_job

    monkeypatch.delenv("TRAINKIT_PRICE_CATALOG")
    table = quote_job(SPEC, hours=1)
    acme_quote = next(q for q in table.quotes if q.backend == "acme")
    assert not acme_quote.available
    assert acme_quote.warnings == [
        "no prices for acme in the catalog package:airflow_trainkit.costs/price_catalog.csv (rows with backend 'acme')"
    ]
    assert table.left_out["acme"].startswith("not available: no prices for acme")


def test_a_malformed_pricing_declaration_in_another_package_names_backend_field_and_value(site: Path):
    from airflow_trainkit.training.pricing import pricing_registry

    install(site, "broken_trainkit_backend", "broken = broken_trainkit_backend:BrokenBackend", BROKEN)
    with pytest.raises(
        ValueError,
        match=r"backend 'broken': pricing\.spot_rate must be 'spot' or 'on_demand', got 'sometimes'",
    ):
        pricing_registry()


def test_a_backend_that_cannot_be_imported_here_is_left_out_with_the_reason(site: Path) -> None:
    from airflow_trainkit.costs.quotes import quote_job
    from airflow_trainkit.training.pricing import pricing_registry

    install(site, "missing_trainkit_backend", "missing = missing_trainkit_backend:MissingBackend", None)
    registry = pricing_registry()
    assert registry.unpriced["missing"].startswith("not importable here: ModuleNotFoundError")
    assert registry.not_importable() == ["missing"]
    # Its rows may stay in the price file: one broken plugin must not make every price unreadable.
    from airflow_trainkit.costs.catalog import declared_keys

    assert "missing" in declared_keys()
    table = quote_job(SPEC, hours=1, pick_from_backends=["missing", "vertex_ai"])
    assert table.left_out["missing"].startswith("not importable here: ModuleNotFoundError")
    assert table.cheapest is not None and table.cheapest.backend == "vertex_ai"
