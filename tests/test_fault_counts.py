"""The live fault matrix's verdict counts what it claims to: each kind of wrong outcome is caught."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "live"))

from fault_matrix import Expect, LiveJob, Outcome, count  # noqa: E402

RETRIED = Expect("success", ("failed", "succeeded"), try_number=2)


def judged(jobs: list[LiveJob], task: str, try_number: int, expect: Expect) -> Outcome:
    outcome = Outcome("b", "s", task_state=task, try_number=try_number)
    count(outcome, jobs, expect)
    return outcome


def test_a_correct_outcome_has_no_problem():
    jobs = [LiveJob("tk-x-a1", 1, "failed"), LiveJob("tk-x-a2", 2, "succeeded")]
    outcome = judged(jobs, "success", 2, RETRIED)
    assert outcome.ok, outcome.problems
    assert (outcome.orphaned, outcome.duplicated, outcome.falsely_successful) == (0, 0, 0)


def test_a_job_still_running_after_its_task_ended_is_orphaned():
    outcome = judged([LiveJob("tk-x-a1", 1, "active")], "failed", 1, Expect("failed", ("stopped",)))
    assert outcome.orphaned == 1 and not outcome.ok


@pytest.mark.parametrize(
    "jobs",
    [
        # one name made twice (a server that picks ids: two jobs for one try)
        [LiveJob("tk-x-a1", 1, "succeeded"), LiveJob("tk-x-a1", 1, "succeeded")],
        # a second attempt the task never had a try for
        [LiveJob("tk-x-a1", 1, "stopped"), LiveJob("tk-x-a2", 2, "succeeded")],
    ],
)
def test_more_jobs_than_tries_are_duplicated(jobs):
    outcome = judged(jobs, "success", 1, Expect("success", ("succeeded",)))
    assert outcome.duplicated == 1 and not outcome.ok


@pytest.mark.parametrize("phase", ["failed", "stopped", "active"])
def test_success_while_the_last_job_did_not_succeed_is_false(phase):
    outcome = judged([LiveJob("tk-x-a1", 1, phase)], "success", 1, Expect("success", (phase,)))
    assert outcome.falsely_successful == 1 and not outcome.ok


def test_the_scenarios_expectation_is_held_too():
    outcome = judged([LiveJob("tk-x-a1", 1, "succeeded")], "success", 1, RETRIED)
    assert not outcome.ok
    assert any("expected ('failed', 'succeeded')" in p for p in outcome.problems)
    assert any("expected 2" in p for p in outcome.problems)
