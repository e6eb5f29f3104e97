"""The columns of the live fault matrix: each fault, what the test does, what a correct package gives.

Phases keep faults from touching cases they are not meant for: ``solo`` cases run side by side;
the ``triggerer`` and ``scheduler`` cases run while that component is killed and restarted; the
``api`` cases run one after another on their backend (a fault on a backend's API reaches every job on
it), beside the other backends' ones.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fault_backends import ROWS
from fault_matrix import POLL_INTERVAL, RUN_ID, Case, Expect, Outcome, Scenario, judge, run_case

# How long the matrix keeps a component down, and gives API faults.
SCHEDULER_DOWN_SECONDS = 20.0
TRIGGERER_DOWN_MAX_SECONDS = 150.0
API_FAULT_SECONDS = {"throttle": 5 * POLL_INTERVAL, "5xx": 4 * POLL_INTERVAL, "unreachable": 60.0}
RETRY = {"retries": 1, "retry_delay": 5}
# Long enough for execute() to create the job first: a cloud SDK's first import alone (aiplatform_v1,
# boto3, azure-ai-ml) took over 20-25 s on this two-core machine with the cases running side by side.
EXECUTION_TIMEOUT_SECONDS = 60


def _nothing(case: Case) -> None:
    """The run needs nothing done to it: the job's own behaviour is the fault."""


def _clear(case: Case) -> None:
    case.wait_deferred()
    case.deployment.clear(case.dag_id, RUN_ID, "train")


def _mark_failed(case: Case) -> None:
    case.wait_deferred()
    case.deployment.mark(case.dag_id, RUN_ID, "train", "failed")


def _kill_while_running(case: Case) -> None:
    case.wait_task({"running"})
    case.wait_running()
    time.sleep(POLL_INTERVAL)
    case.kill_task_process()


def _kill_after_create(case: Case) -> None:
    """Kill the task between the create call and its answer being recorded (the held create), or
    as soon as the job exists when the backend cannot hold a create's answer."""
    case.wait_jobs("the job to be created", bool, timeout=240)
    case.kill_task_process()


def _api_fault(case: Case) -> None:
    kind = case.scenario.api_fault or ""
    case.wait_deferred()
    seconds = API_FAULT_SECONDS[kind]
    with case.backend.api_fault(kind, seconds):
        time.sleep(seconds)
    case.notes.append(f"{kind} for {seconds:g} s")


class _Barrier:
    """The cases of a restart phase each say when their task is deferred, then wait to be released."""

    def __init__(self) -> None:
        self.ready: dict[str, threading.Event] = defaultdict(threading.Event)
        self.released = threading.Event()

    def drive(self, case: Case) -> None:
        case.wait_deferred()
        self.ready[case.dag_id].set()
        if not self.released.wait(timeout=600):
            raise TimeoutError("the phase never released its cases")


_BARRIER = _Barrier()


def _api_scenario(name: str, kind: str, seconds: int, summary: str) -> Scenario:
    """A deferred job that outlives a fault of its backend's API and succeeds."""
    return Scenario(
        name,
        Expect("success", ("succeeded",)),
        _api_fault,
        seconds=seconds,
        phase="api",
        api_fault=kind,
        summary=summary,
    )


SCENARIOS = [
    Scenario(
        "clear",
        Expect("success", ("succeeded",), try_number=2),
        _clear,
        summary="deferred task cleared: the next try re-attaches to the running job",
    ),
    Scenario(
        "mark_failed",
        Expect("failed", ("stopped",)),
        _mark_failed,
        seconds=300,
        summary="deferred task marked failed: its job is stopped",
    ),
    Scenario(
        "failing_job_retry",
        Expect("success", ("failed", "succeeded"), try_number=2),
        _nothing,
        seconds=5,
        fail_tries=1,
        task=RETRY,
        summary="the job fails, a retry is left: the retry starts a new job (attempt 2)",
    ),
    Scenario(
        "sigkill_last_try",
        Expect("failed", ("stopped",)),
        _kill_while_running,
        seconds=300,
        task={"deferrable": False, "retries": 0},
        summary="non-deferrable task SIGKILLed on its last try: the watchdog stops its job",
    ),
    Scenario(
        "sigkill_retry_left",
        Expect("success", ("succeeded",), try_number=2),
        _kill_while_running,
        seconds=40,
        task={"deferrable": False, **RETRY},
        summary="non-deferrable task SIGKILLed with a retry left: the retry re-attaches",
    ),
    Scenario(
        "exec_timeout_deferred",
        Expect("failed", ("stopped",)),
        _nothing,
        seconds=300,
        task={"execution_timeout": EXECUTION_TIMEOUT_SECONDS},
        summary="execution_timeout passes while deferred: the trigger stops the job, the task fails",
    ),
    Scenario(
        "exec_timeout_blocking",
        Expect("failed", ("stopped",)),
        _nothing,
        seconds=300,
        task={"execution_timeout": EXECUTION_TIMEOUT_SECONDS, "deferrable": False},
        summary="execution_timeout passes in the worker's wait: the job is stopped, the task fails",
    ),
    Scenario(
        "lost_create",
        Expect("success", ("succeeded",), try_number=2),
        _kill_after_create,
        seconds=40,
        task=RETRY,
        summary="the task dies between the create call and recording its answer: the retry finds the job",
    ),
    Scenario(
        "triggerer_restart",
        Expect("success", ("succeeded",)),
        _BARRIER.drive,
        seconds=40,
        phase="triggerer",
        summary="triggerer killed while deferred, restarted: the trigger resumes, the task succeeds",
    ),
    Scenario(
        "deferral_timeout",
        Expect("failed", ("stopped",)),
        _BARRIER.drive,
        seconds=600,
        task={"execution_timeout": EXECUTION_TIMEOUT_SECONDS},
        phase="triggerer",
        summary="the deferral times out (triggerer down past execution_timeout): the resumed task stops the job",
    ),
    Scenario(
        "scheduler_restart",
        Expect("success", ("succeeded",)),
        _BARRIER.drive,
        seconds=45,
        phase="scheduler",
        summary="scheduler and dag-processor killed while deferred, restarted: the task succeeds",
    ),
    _api_scenario(
        "throttle_storm",
        "throttle",
        60,
        f"every status call throttled for {API_FAULT_SECONDS['throttle']:g} s: backoff, then success",
    ),
    _api_scenario(
        "5xx_burst",
        "5xx",
        60,
        f"every call answered 5xx for {API_FAULT_SECONDS['5xx']:g} s: retried, then success",
    ),
    _api_scenario(
        "api_unreachable",
        "unreachable",
        110,
        "the API unreachable for a minute, then back: the wait goes on, the task succeeds",
    ),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def not_applicable(case: Case) -> str:
    """Why the case cannot run on its backend ("" when it can)."""
    kind = case.scenario.api_fault
    if kind and kind not in case.backend.api_faults:
        return f"{case.backend.name} has no API between Airflow and its jobs to give {kind}"
    return ""


# -- the phases --------------------------------------------------------------------------------------


def run_solo(cases: list[Case], concurrency: int) -> list[Outcome]:
    """The cases that need nothing else from the deployment, side by side."""
    for case in cases:
        if case.scenario.name == "lost_create" and case.backend.hold_create(case.dag_id, RUN_ID):
            case.notes.append("create answer held until the task was killed")
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(cases)))) as pool:
        return list(pool.map(run_case, cases))


def run_restart(cases: list[Case], component: str) -> list[Outcome]:
    """Run ``cases`` until all are deferred, kill ``component`` (the scheduler with the
    dag-processor), bring it back, and judge every case."""
    if not cases:
        return []
    deployment = cases[0].deployment
    _BARRIER.ready.clear()
    _BARRIER.released.clear()
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = [pool.submit(run_case, case) for case in cases]
        end = time.monotonic() + 300
        while time.monotonic() < end and not all(_BARRIER.ready[c.dag_id].is_set() for c in cases):
            if any(f.done() for f in futures):  # a case failed before deferring
                break
            time.sleep(0.5)
        names = ["triggerer"] if component == "triggerer" else ["scheduler", "dag-processor"]
        killed = time.monotonic()
        for name in names:
            deployment.kill(name)
        if component == "triggerer":
            # Down until the deferral timeout has ended its task (the scheduler's doing, no triggerer).
            waiting = [c for c in cases if c.scenario.name == "deferral_timeout"]
            end = time.monotonic() + TRIGGERER_DOWN_MAX_SECONDS
            while (
                waiting
                and time.monotonic() < end
                and waiting[0].task().get("state") not in ("failed", "success")
            ):
                time.sleep(1)
        else:
            time.sleep(SCHEDULER_DOWN_SECONDS)
        for name in names:
            deployment.restart(name)
        for case in cases:
            case.notes.append(f"{'+'.join(names)} down {time.monotonic() - killed:.0f} s")
        _BARRIER.released.set()
        return [f.result() for f in futures]


def run_api(cases: list[Case]) -> list[Outcome]:
    """API faults: one case at a time on each backend, the backends side by side."""
    by_backend: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        by_backend[case.backend.name].append(case)
    if not by_backend:
        return []
    with ThreadPoolExecutor(max_workers=len(by_backend)) as pool:
        groups = list(pool.map(lambda group: [run_case(c) for c in group], by_backend.values()))
    return [outcome for group in groups for outcome in group]


def run_all(cases: list[Case], concurrency: int = 16) -> list[Outcome]:
    """Every case through its phase; n/a cases are reported, not run."""
    outcomes: list[Outcome] = []
    runnable = []
    for case in cases:
        reason = not_applicable(case)
        if reason:
            outcomes.append(Outcome(case.backend.name, case.scenario.name, skipped=reason))
        else:
            runnable.append(case)
    by_phase: dict[str, list[Case]] = defaultdict(list)
    for case in runnable:
        by_phase[case.scenario.phase].append(case)
    outcomes += run_solo(by_phase["solo"], concurrency)
    outcomes += run_restart(by_phase["triggerer"], "triggerer")
    outcomes += run_restart(by_phase["scheduler"], "scheduler")
    outcomes += run_api(by_phase["api"])
    return outcomes


MATRIX_TEST = "test_fault_case"


def selected_cases(session: Any) -> list[tuple[str, str]]:
    """The (backend, scenario) pairs of the fault matrix this session runs, in table order."""
    return sorted(
        {
            (item.callspec.params["backend"], item.callspec.params["scenario"])
            for item in session.items
            if getattr(item, "originalname", "") == MATRIX_TEST
        },
        key=lambda pair: (list(ROWS).index(pair[0]), [s.name for s in SCENARIOS].index(pair[1])),
    )


# Cases one sqlite-backed deployment keeps up with on this two-core machine, 8 side by side (84 in one
# made the api-server answer 500 and the scheduler die of "database is locked").
CASES_PER_DEPLOYMENT = 28


def deployment_groups(
    pairs: list[tuple[str, str]], limit: int = CASES_PER_DEPLOYMENT
) -> list[list[tuple[str, str]]]:
    """``pairs`` in groups of whole backend rows, each of at most ``limit`` cases where a row allows."""
    rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pair in pairs:
        rows[pair[0]].append(pair)
    groups: list[list[tuple[str, str]]] = []
    for cases in rows.values():
        if groups and len(groups[-1]) + len(cases) <= limit:
            groups[-1].extend(cases)
        else:
            groups.append(list(cases))
    return groups


__all__ = ["BY_NAME", "SCENARIOS", "deployment_groups", "judge", "run_all", "selected_cases"]
