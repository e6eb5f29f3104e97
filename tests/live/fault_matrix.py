"""The live fault matrix: every backend, every fault, in a real Airflow deployment.

A *backend* row is a :class:`LiveBackend`: it starts what its jobs run on (a wire fake served on
loopback, a real Ray cluster, real sshd hosts, or nothing for local on-prem), gives the deployment
its connection, shapes how each job behaves, lists the jobs that exist, and injects faults into its
API. A *scenario* column is a :class:`Scenario`: the task's arguments, the job's behaviour, what to do
to the deployment while it runs, and the outcome a correct package gives. A case is one
(backend, scenario) pair: one DAG (``fm_<backend>_<scenario>``, built by ``dags/fault_matrix.py``
from the ``fault_matrix.json`` written beside it) and one run of it.

Every case is judged by the same three counts, whatever the scenario, once its task is final with no
retry pending (the issue's definitions):

- **orphaned**: jobs still running 60 s after that;
- **duplicated**: more than one job under one name (one try's job made twice), or more jobs than
  the task had tries;
- **falsely successful**: the task succeeded while its last job failed or was stopped.

and by the scenario's own expectation (the task's final state, the jobs' end states, its try).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from deployment import Deployment

FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}
ORPHAN_GRACE_SECONDS = 60.0
POLL_INTERVAL = 2  # the matrix's tasks poll every 2 s: faults lasting "several intervals" stay short
RUN_ID = "fm-1"
TASK_ID = "train"


# -- what a backend row provides --------------------------------------------------------------------


@dataclass(frozen=True)
class LiveJob:
    """One job the backend holds for a case: our job name (``tk-...-a<attempt>``; for a backend
    whose ids the server picks, the display name), and its phase now."""

    name: str
    attempt: int
    phase: str  # "active" | "succeeded" | "failed" | "stopped"
    reason: str = ""  # why it ended, as the backend recorded it (who stopped it), when it says

    @property
    def active(self) -> bool:
        return self.phase == "active"


class LiveBackend:
    """One backend row of the matrix. Subclasses set the class attributes and implement the methods.

    ``api_faults``: which of ``"throttle"``, ``"5xx"``, ``"unreachable"`` its API can be given
    (empty when there is no API between Airflow and the jobs, as on local on-prem).
    ``server_chosen_ids``: the server, not we, names its jobs (the lost-create case matters most then).
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    api_faults: ClassVar[frozenset[str]] = frozenset()
    server_chosen_ids: ClassVar[bool] = False
    conn_id: str | None = None

    def start(self, workdir: Path) -> None:
        """Start what the jobs run on, before the deployment starts."""

    def stop(self) -> None:
        """Stop it all; jobs still running are stopped with it."""

    def deployment_env(self, home: Path) -> dict[str, str]:
        """Environment the deployment's processes get (connections ``AIRFLOW_CONN_*``, settings)."""
        return {}

    def spec(self) -> dict[str, Any]:
        """The job spec of every case. A backend that runs our command may template it with
        ``{{ params.seconds }}`` (how long the job runs) and ``{{ params.fail_tries }}`` (the job of a try
        up to that number exits non-zero), both set per run from the scenario."""
        raise NotImplementedError

    def prepare(self, dag_id: str, run_id: str, *, seconds: int, fail_tries: int) -> None:
        """Before the run is triggered: make its jobs behave as the scenario says, for a backend
        whose jobs do not run our command (a fake plans the jobs of attempts 1-3 by name: running for
        ``seconds``, failed when the attempt is at most ``fail_tries``)."""

    def jobs(self, dag_id: str, run_id: str) -> list[LiveJob]:
        """Every job the backend holds for this task instance, oldest first."""
        raise NotImplementedError

    @contextmanager
    def api_fault(self, kind: str, seconds: float) -> Iterator[None]:
        """Give the backend's API the fault ``kind`` for ``seconds`` (from entering), for every
        caller; the body runs meanwhile, and the fault has ended when the block exits."""
        raise NotImplementedError(f"{self.name} has no API to give {kind!r}")
        yield  # pragma: no cover

    def hold_create(self, dag_id: str, run_id: str) -> bool:
        """Make the create of this run's first job be carried out while its answer never reaches
        the caller (held until the caller is killed). False when the backend cannot hold it: the
        scenario then kills the task as soon as the job exists."""
        return False


# -- the scenarios -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a correct package gives: the task's final state, the end phase of each attempt's job
    (attempt 1 first), and the try the task ends on."""

    task: str
    jobs: tuple[str, ...]
    try_number: int = 1


@dataclass(frozen=True)
class Scenario:
    """One column: ``task`` holds TrainModelOperator arguments (durations in seconds), ``seconds``
    and ``fail_tries`` the job's behaviour, ``phase`` who else runs beside it (``solo``: any case;
    ``triggerer``/``scheduler``: the cases of that component's restart; ``api``: alone on its
    backend's API), ``drive`` what the test does to it once the run is triggered."""

    name: str
    expect: Expect
    drive: Callable[[Case], None]
    seconds: int = 40
    fail_tries: int = 0
    task: dict[str, Any] = field(default_factory=dict)
    phase: str = "solo"
    api_fault: str | None = None
    summary: str = ""


@dataclass
class Case:
    """One backend x scenario, with its deployment; ``notes`` collects what the run measured."""

    backend: LiveBackend
    scenario: Scenario
    deployment: Deployment
    notes: list[str] = field(default_factory=list)

    @property
    def dag_id(self) -> str:
        return case_dag_id(self.backend, self.scenario)

    # -- the task, through the deployment's REST API --

    def task(self) -> dict[str, Any]:
        return self.deployment.task(self.dag_id, RUN_ID, TASK_ID)

    def wait_task(self, states: set[str], timeout: float = 300) -> list[str]:
        return self.deployment.wait_task(self.dag_id, RUN_ID, TASK_ID, states, timeout=timeout)

    def jobs(self) -> list[LiveJob]:
        return self.backend.jobs(self.dag_id, RUN_ID)

    def wait_jobs(self, what: str, predicate: Callable[[list[LiveJob]], bool], timeout: float = 240) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self.jobs()):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.dag_id}: {what} not within {timeout:g} s; jobs {self.jobs()}")

    def wait_running(self, timeout: float = 240) -> None:
        self.wait_jobs("a running job", lambda jobs: any(j.active for j in jobs), timeout)

    def wait_deferred(self) -> None:
        """Until the task is deferred with its job running, and a few polls have passed."""
        self.wait_task({"deferred"})
        self.wait_running()
        time.sleep(2 * POLL_INTERVAL)

    def kill_task_process(self) -> None:
        """SIGKILL the task's own process (as the out-of-memory killer would)."""
        title = f"airflow worker -- {self.task()['id']}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(title):
                os.kill(int(pid), signal.SIGKILL)
                self.notes.append("task process SIGKILLed")
                return
        raise AssertionError(f"{self.dag_id}: no process titled {title!r}")


def case_dag_id(backend: LiveBackend, scenario: Scenario) -> str:
    """The DAG of one case: ``fm_<backend>_<scenario>``."""
    return f"fm_{backend.name}_{scenario.name}"


# -- the verdict -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One case's result: the three counts, the expectation's verdict, and what was seen."""

    backend: str
    scenario: str
    task_state: str = ""
    try_number: int = 0
    jobs: list[str] = field(default_factory=list)
    orphaned: int = 0
    duplicated: int = 0
    falsely_successful: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.problems

    def row(self) -> str:
        verdict = (
            f"n/a: {self.skipped}"
            if self.skipped
            else ("ok" if self.ok else "FAIL: " + "; ".join(self.problems))
        )
        if self.notes and not self.skipped:
            verdict += f" ({'; '.join(self.notes)})"
        return (
            f"| {self.backend} | {self.scenario} | {self.task_state or '-'} (try {self.try_number}) "
            f"| {', '.join(self.jobs) or '-'} | {self.orphaned} | {self.duplicated} | "
            f"{self.falsely_successful} | {self.seconds:.0f} s | {verdict} |"
        )


TABLE_HEADER = (
    "| backend | scenario | task | jobs | orphaned | duplicated | falsely successful | took | verdict |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def judge(case: Case, started: float) -> Outcome:
    """Wait for the case's task to be final with no retry pending, give its jobs the grace, count."""
    outcome = Outcome(case.backend.name, case.scenario.name, notes=case.notes)
    seen = case.wait_task(FINISHED, timeout=600)
    outcome.task_state, outcome.try_number = seen[-1], int(case.task()["try_number"])
    end = time.monotonic() + ORPHAN_GRACE_SECONDS
    jobs = case.jobs()
    while any(j.active for j in jobs) and time.monotonic() < end:
        time.sleep(1)
        jobs = case.jobs()
    outcome.seconds = time.monotonic() - started
    count(outcome, jobs, case.scenario.expect)
    if outcome.task_state != case.scenario.expect.task:
        outcome.problems.append(f"(states seen: {seen})")
    return outcome


def count(outcome: Outcome, jobs: list[LiveJob], expect: Expect) -> None:
    """Fill in the three counts and the expectation's problems, from the jobs as they are now and
    the task's final state and try (already in ``outcome``)."""
    outcome.jobs = [f"a{j.attempt} {j.phase}" + (f" ({j.reason})" if j.reason else "") for j in jobs]
    outcome.orphaned = sum(j.active for j in jobs)
    names = [j.name for j in jobs]
    outcome.duplicated = len(names) - len(set(names)) + max(0, len(set(names)) - outcome.try_number)
    last = max(jobs, key=lambda j: j.attempt) if jobs else None
    if outcome.task_state == "success" and (last is None or last.phase != "succeeded"):
        outcome.falsely_successful = 1
    for label, value in (("orphaned", outcome.orphaned), ("duplicated", outcome.duplicated)):
        if value:
            outcome.problems.append(f"{value} {label} job(s)")
    if outcome.falsely_successful:
        outcome.problems.append("the task succeeded while its job did not")
    if outcome.task_state != expect.task:
        outcome.problems.append(f"task ended {outcome.task_state}, expected {expect.task}")
    phases = tuple(j.phase for j in sorted(jobs, key=lambda j: j.attempt))
    if phases != expect.jobs:
        outcome.problems.append(f"jobs ended {phases}, expected {expect.jobs}")
    if outcome.try_number != expect.try_number:
        outcome.problems.append(f"ended on try {outcome.try_number}, expected {expect.try_number}")


def run_case(case: Case) -> Outcome:
    """Trigger the case's run, drive it, judge it; a failure to drive is the case's problem."""
    started = time.monotonic()
    scenario = case.scenario
    try:
        case.backend.prepare(case.dag_id, RUN_ID, seconds=scenario.seconds, fail_tries=scenario.fail_tries)
        case.deployment.trigger(
            case.dag_id, RUN_ID, {"seconds": scenario.seconds, "fail_tries": scenario.fail_tries}
        )
        scenario.drive(case)
        return judge(case, started)
    except Exception as err:
        outcome = Outcome(case.backend.name, scenario.name, notes=case.notes)
        outcome.problems.append(f"{type(err).__name__}: {err}")
        outcome.seconds = time.monotonic() - started
        try:
            count(outcome, case.jobs(), scenario.expect)
        except Exception as listing:
            outcome.notes.append(f"jobs could not be listed: {listing!r}")
        return outcome


def run_together(cases: list[Case]) -> list[Outcome]:
    """Run cases side by side (each in its own thread: most of their time is waiting)."""
    if not cases:
        return []
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        return list(pool.map(run_case, cases))


# -- the DAGs ----------------------------------------------------------------------------------------


def write_dags(folder: Path, cases: list[tuple[LiveBackend, Scenario]]) -> None:
    """``fault_matrix.json`` for ``dags/fault_matrix.py``: one DAG per (backend, scenario) case."""
    entries = [
        {
            "dag_id": case_dag_id(backend, scenario),
            "backend": backend.backend,
            "conn_id": backend.conn_id,
            "spec": backend.spec(),
            "task": scenario.task,
            "poll_interval": POLL_INTERVAL,
        }
        for backend, scenario in cases
    ]
    (folder / "fault_matrix.json").write_text(json.dumps(entries, indent=1))


def report(outcomes: list[Outcome]) -> str:
    """The matrix as a markdown table, with the totals the issue asks for."""
    lines = [TABLE_HEADER, *(o.row() for o in outcomes)]
    ran = [o for o in outcomes if not o.skipped]
    lines.append(
        f"\n{len(ran)} cases run ({len(outcomes) - len(ran)} n/a): "
        f"{sum(o.orphaned for o in ran)} orphaned, {sum(o.duplicated for o in ran)} duplicated, "
        f"{sum(o.falsely_successful for o in ran)} falsely successful; "
        f"{sum(not o.ok for o in ran)} failed their expectation."
    )
    return "\n".join(lines)


def grid(outcomes: list[Outcome]) -> str:
    """The matrix at a glance, a row per scenario and a column per backend (for docs/failures.md)."""
    backends = list(dict.fromkeys(o.backend for o in outcomes))
    scenarios = list(dict.fromkeys(o.scenario for o in outcomes))
    cells = {(o.backend, o.scenario): o for o in outcomes}

    def cell(outcome: Outcome | None) -> str:
        if outcome is None:
            return ""
        if outcome.skipped:
            return "n/a"
        jobs = ", ".join(j.split(" (")[0] for j in outcome.jobs)
        return f"{'ok' if outcome.ok else '**FAIL**'}: {outcome.task_state}, {jobs}"

    lines = [f"| scenario | {' | '.join(backends)} |", "|---" * (len(backends) + 1) + "|"]
    lines += [f"| {s} | {' | '.join(cell(cells.get((b, s))) for b in backends)} |" for s in scenarios]
    return "\n".join(lines)


def save(outcomes: list[Outcome], path: Path) -> None:
    """The outcomes as JSON (``$TRAINKIT_FAULT_REPORT``, for the note and the docs page)."""
    path.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
