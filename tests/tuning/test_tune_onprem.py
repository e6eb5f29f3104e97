"""TuneModelOperator against the real on-prem backend: trials are real jobs of a short program."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

import pytest
from trainkit_testing import TaskStateStore, first_trigger_event, make_context, settled

from airflow_trainkit._compat import AirflowException, TaskDeferralTimeout, TaskDeferred
from airflow_trainkit.backends.onprem import OnPremBackend
from airflow_trainkit.operators.tuning import TuneModelOperator
from airflow_trainkit.registry.registration import check_training_result
from airflow_trainkit.tuning.records import SEARCH_KEY
from airflow_trainkit.tuning.search import ObjectiveMissing

pytestmark = pytest.mark.integration

TOY = str(Path(__file__).with_name("toy_trainer.py"))
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}
# A CPU host at a synthetic price: 3600 an hour is 1 a second, so a trial's cost is its seconds.
HOST = [{"name": "cpu-host", "vcpus": 2, "memory_gib": 8, "hourly_price": 3600}]


def tuner(task_id: str = "tune", *, spec_hp: dict | None = None, **kwargs) -> TuneModelOperator:
    values = {
        "search_space": SPACE,
        "objective": "score",
        "n_trials": 4,
        "parallel": 2,
        "seed": 11,
        "poll_interval": 0.1,
        "track_in_mlflow": False,
        **kwargs,
    }
    spec = {"command": [sys.executable, TOY], "hyperparameters": spec_hp or {}}
    return TuneModelOperator(task_id=task_id, spec=spec, **values)


def run_to_the_end(op: TuneModelOperator, context: dict, *, first=None) -> dict:
    """execute(), then every resume the triggers ask for, as the triggerer and scheduler would."""
    try:
        return op.execute(context) if first is None else _resume(op, context, first)
    except TaskDeferred as deferred:
        pending = deferred
    while True:
        try:
            return _resume(op, context, pending)
        except TaskDeferred as again:
            pending = again


def _resume(op: TuneModelOperator, context: dict, deferred: TaskDeferred) -> dict:
    return op.execute_complete(context, event=first_trigger_event(deferred.trigger))


def job_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def trial_of(job_name: str) -> int:
    return int(job_name.split("-trial")[1].split("-")[0])


def test_the_search_runs_every_trial_and_returns_the_best_as_a_training_result(onprem_root):
    context = make_context(task_id="tune")
    result = run_to_the_end(tuner(), context)

    record = context["task_state_store"].get(SEARCH_KEY)
    values = {t["number"]: t["value"] for t in record["trials"]}
    assert sorted(values) == [0, 1, 2, 3] and all(t["state"] == "complete" for t in record["trials"])
    assert result["best_trial"] == max(values, key=values.get)
    assert result["objective"] == {"name": "score", "direction": "maximize", "value": max(values.values())}
    assert result["metrics"]["x_seen"] == result["params"]["x"] == result["hyperparameters"]["x"]
    assert result["trials"] == {"complete": 4, "pruned": 0, "failed": 0, "total": 4}
    # One job per trial, named from the task, the search and the trial number.
    assert sorted(trial_of(name) for name in job_dirs(onprem_root)) == [0, 1, 2, 3]
    assert result["job_id"] in job_dirs(onprem_root) and "-s1-trial" in result["job_id"]
    # What RegisterModelOperator takes, and small JSON.
    assert check_training_result(result) is result
    assert json.loads(json.dumps(result)) == result
    report = Path(result["report_uri"])
    assert {"result.json", "trials.json", "optimization_history.png", "param_importances.png"} <= {
        p.name for p in report.iterdir()
    }
    assert (report / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"
    assert [t["number"] for t in json.loads((report / "trials.json").read_text())] == [0, 1, 2, 3]


def test_a_retry_in_the_middle_reattaches_and_runs_each_trial_once(onprem_root):
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as first:
        tuner(spec_hp={"sleep": 2}).execute(make_context(task_id="tune", store=store, try_number=1))
    in_flight = sorted(t["job"]["job_name"] for t in first.value.trigger.trials)
    assert len(in_flight) == 2 and job_dirs(onprem_root) == in_flight
    # The worker died; the retry (a new process) finds the same two trials still running.
    retry = tuner(spec_hp={"sleep": 2})
    retry_context = make_context(task_id="tune", store=store, try_number=2)
    with pytest.raises(TaskDeferred) as second:
        retry.execute(retry_context)
    assert sorted(t["job"]["job_name"] for t in second.value.trigger.trials) == in_flight
    assert job_dirs(onprem_root) == in_flight
    result = run_to_the_end(retry, retry_context, first=second.value)
    assert result["trials"]["complete"] == 4
    assert sorted(trial_of(name) for name in job_dirs(onprem_root)) == [0, 1, 2, 3]


def test_a_task_cleared_after_its_search_searches_anew(onprem_root):
    store = TaskStateStore()
    first = run_to_the_end(tuner(n_trials=2), make_context(task_id="tune", store=store))
    again = run_to_the_end(tuner(n_trials=2), make_context(task_id="tune", store=store, try_number=2))
    assert first["search"]["generation"] == 1 and again["search"]["generation"] == 2
    assert "-s2-trial" in again["job_id"] and len(job_dirs(onprem_root)) == 4


def test_a_kill_while_deferred_stops_every_trial_in_flight(onprem_root):
    with pytest.raises(TaskDeferred) as deferred:
        tuner(spec_hp={"sleep": 60}).execute(make_context(task_id="tune"))
    trigger = deferred.value.trigger

    async def kill() -> None:  # outside a triggerer the task's state cannot be read: stop to be safe
        await trigger.on_kill()
        await trigger.decision

    asyncio.run(kill())
    jobs = [t["job"]["job_name"] for t in trigger.trials]
    assert [settled(OnPremBackend(), job, timeout=20).state for job in jobs] == ["STOPPED", "STOPPED"]


def test_a_deferral_timeout_stops_every_trial_in_flight(onprem_root):
    store = TaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        tuner(spec_hp={"sleep": 60}).execute(make_context(task_id="tune", store=store))
    fresh = tuner(spec_hp={"sleep": 60})  # the scheduler resumes the task in a new process
    with pytest.raises(TaskDeferralTimeout):
        fresh.resume_execution(
            "__fail__", {"error": "Trigger timeout"}, make_context(task_id="tune", store=store)
        )
    jobs = [t["job"]["job_name"] for t in deferred.value.trigger.trials]
    assert [settled(OnPremBackend(), job, timeout=20).state for job in jobs] == ["STOPPED", "STOPPED"]


def test_the_execution_timeout_stops_every_trial_in_flight(onprem_root):
    from datetime import timedelta

    from airflow_trainkit._compat import AirflowTaskTimeout

    op = tuner(spec_hp={"sleep": 60}, execution_timeout=timedelta(seconds=1.5))
    context = make_context(task_id="tune")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.trigger.deadline is not None  # the trigger carries the try's own limit
    event = first_trigger_event(deferred.value.trigger)
    assert event["status"] == "timeout" and event["reason"] == "execution_timeout"
    with pytest.raises(AirflowTaskTimeout, match="execution_timeout"):
        op.execute_complete(context, event=event)
    jobs = [t["job"]["job_name"] for t in deferred.value.trigger.trials]
    assert [settled(OnPremBackend(), job, timeout=20).state for job in jobs] == ["STOPPED", "STOPPED"]


def test_not_deferrable_the_search_waits_in_the_worker_and_a_kill_stops_its_trials(onprem_root):
    op = tuner(spec_hp={"sleep": 60}, deferrable=False)
    threading.Timer(2.0, op.on_kill).start()  # SIGTERM's handler runs on_kill while execute() waits
    context = make_context(task_id="tune")
    with pytest.raises(AirflowException, match="killed"):
        op.execute(context)
    jobs = [t["job"]["job_name"] for t in context["task_state_store"].get(SEARCH_KEY)["trials"]]
    assert [settled(OnPremBackend(), job, timeout=20).state for job in jobs] == ["STOPPED", "STOPPED"]


def test_not_deferrable_the_search_runs_to_its_result(onprem_root):
    result = tuner(deferrable=False, n_trials=3).execute(make_context(task_id="tune"))
    assert result["trials"]["complete"] == 3


def test_the_budget_stops_asking_once_one_more_quote_would_pass_it(onprem_root):
    budget = 6.0
    context = make_context(task_id="tune")
    result = run_to_the_end(
        tuner(
            spec_hp={"sleep": 1},
            n_trials=20,
            parallel=1,
            budget=budget,
            trial_hours="2s",  # each trial quoted 2 (seconds) at the synthetic price
            onprem_costs=HOST,
            quote_options={"vcpus": 2},
        ),
        context,
    )
    trials = context["task_state_store"].get(SEARCH_KEY)["trials"]
    costs = [t["cost"]["amount"] for t in trials]
    assert all(t["quote"] == pytest.approx(2.0) for t in trials)
    assert all(c > 1.0 for c in costs)  # each ran at least its one-second sleep
    # Each trial was asked while spent + its quote fitted, and the next would not have.
    for n in range(len(trials)):
        assert sum(costs[:n]) + 2.0 <= budget + 1e-6
    assert sum(costs) + 2.0 > budget
    assert 2 <= len(trials) < 20
    assert result["money"] == {
        "spent": pytest.approx(sum(costs), abs=1e-5),
        "budget": budget,
        "trial_quote": pytest.approx(2.0),
        "currency": "USD",
    }
    assert result["cost"]["amount"] == pytest.approx(costs[result["best_trial"]])


def test_a_budget_below_one_trials_quote_is_refused_before_any_trial(onprem_root):
    op = tuner(budget=1.5, trial_hours="2s", onprem_costs=HOST, quote_options={"vcpus": 2})
    with pytest.raises(ValueError, match=r"budget: 1\.5 USD is smaller than one trial's quote \(2 USD for"):
        op.execute(make_context(task_id="tune"))
    assert not onprem_root.exists() or job_dirs(onprem_root) == []


def test_a_failed_trial_is_recorded_and_the_search_goes_on(onprem_root):
    context = make_context(task_id="tune")
    result = run_to_the_end(
        tuner(
            search_space={"fail": [False, True], "x": [0.1, 0.3]},
            sampler="grid",
            n_trials=4,
        ),
        context,
    )
    trials = context["task_state_store"].get(SEARCH_KEY)["trials"]
    failed = [t for t in trials if t["state"] == "failed"]
    assert len(failed) == 2 and all(t["params"]["fail"] for t in failed)
    assert all("ended FAILED" in t["message"] and "failing as asked" in t["message"] for t in failed)
    assert result["trials"] == {"complete": 2, "pruned": 0, "failed": 2, "total": 4}
    assert result["params"] == {"fail": False, "x": 0.3}


def test_an_objective_the_trainer_never_writes_fails_the_search_after_the_first_trial(onprem_root):
    context = make_context(task_id="tune")
    with pytest.raises(
        ObjectiveMissing,
        match=r"objective: 'auc_roc' is not in the metrics\.json of trial \d.*it wrote: score, x_seen",
    ):
        run_to_the_end(tuner(objective="auc_roc", n_trials=6, parallel=2), context)
    trials = context["task_state_store"].get(SEARCH_KEY)["trials"]
    assert len(trials) <= 3  # the first to end, and at most the ones in flight with it
    for trial in trials:  # the trials still in flight were asked to stop: none runs on
        assert settled(OnPremBackend(), trial["job"]["job_name"], timeout=20).state in (
            "STOPPED",
            "SUCCEEDED",
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"search_space": {}}, r"search_space: empty"),
        (
            {"search_space": {"x": {"type": "float", "low": 0, "high": 1}}, "sampler": "grid"},
            r"search_space\.x: the grid sampler needs a step",
        ),
        ({"n_trials": 2, "parallel": 3}, r"parallel: must not be above n_trials \(2\), got 3"),
        ({"budget": -1, "trial_hours": 1}, r"budget: must be greater than 0, got -1"),
        ({"budget": 5}, r"trial_hours: required when budget is set"),
        ({"backend": "nowhere"}, r"backend 'nowhere' is not known"),
        ({"spec_hp": {"x": 1}, "n_trials": "many"}, r"n_trials: .*got 'many'"),
    ],
)
def test_bad_input_fails_before_any_trial_starts(onprem_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tuner(**kwargs).execute(make_context(task_id="tune"))
    assert not onprem_root.exists() or job_dirs(onprem_root) == []


def test_the_constructor_only_assigns():
    op = tuner(search_space="{{ var.json.space }}", n_trials="{{ params.n }}", budget="{{ params.b }}")
    assert op.search_space == "{{ var.json.space }}" and op.n_trials == "{{ params.n }}"


def test_a_hopeless_trial_is_pruned_early_and_its_partial_cost_counted(onprem_root, tmp_path):
    from airflow_trainkit.demo.data import write_churn_dataset

    data = str(tmp_path / "churn.parquet")
    write_churn_dataset(data, rows=1000, seed=3)
    spec = {
        "command": [sys.executable, "-m", "airflow_trainkit.trainers.xgboost"],
        "inputs": {"train": data},
        "hyperparameters": {
            "target": "churned",
            "drop_columns": "customer_id",
            "num_boost_round": 4000,
            "early_stopping_rounds": 20,
            "progress_interval": 0.2,
        },
    }
    context = make_context(task_id="tune")
    op = TuneModelOperator(
        task_id="tune",
        spec=spec,
        # Seed 1 runs the good rate first; the hopeless one (its log-loss barely moves) second.
        search_space={"learning_rate": [0.3, 0.0005]},
        sampler="grid",
        seed=1,
        objective="auc_roc",
        n_trials=2,
        pruning={
            "metric": "validation-logloss",
            "direction": "minimize",
            "warmup_rounds": 3,
            "startup_trials": 1,
            "check_every": 0,
        },
        onprem_costs=HOST,
        poll_interval=0.2,
        track_in_mlflow=False,
    )
    result = run_to_the_end(op, context)
    good, hopeless = context["task_state_store"].get(SEARCH_KEY)["trials"]
    assert good["params"] == {"learning_rate": 0.3} and good["state"] == "complete"
    assert hopeless["params"] == {"learning_rate": 0.0005} and hopeless["state"] == "pruned"
    assert hopeless["message"].startswith("pruned at round")
    job = OnPremBackend().describe(hopeless["job"]["job_name"])
    assert job.state == "STOPPED"
    rounds = json.loads((Path(job.output_uri) / "progress.json").read_text())["round"]
    assert rounds < 4000  # stopped long before its last round
    # What the trigger is told the task has seen: rounds written, not the thinned values kept.
    good_output = Path(OnPremBackend().describe(good["job"]["job_name"]).output_uri)
    written = json.loads((good_output / "progress.json").read_text())["history"]["validation-logloss"]
    assert good["rounds_read"] == len(written) and len(good["intermediate"]) == len(written) // 5
    assert 0 < hopeless["rounds_read"] <= rounds
    assert hopeless["cost"]["amount"] > 0 and good["cost"]["amount"] > 0
    assert result["trials"] == {"complete": 1, "pruned": 1, "failed": 0, "total": 2}
    assert result["money"]["spent"] == pytest.approx(
        good["cost"]["amount"] + hopeless["cost"]["amount"], abs=1e-5
    )
    assert "intermediate_values.png" in {p.name for p in Path(result["report_uri"]).iterdir()}


def test_trials_write_to_folders_of_their_own_under_the_templates_output_and_checkpoints(
    onprem_root, tmp_path
):
    out, checkpoints = tmp_path / "out", tmp_path / "ckpt"
    op = tuner(n_trials=2, deferrable=False)
    op.spec = {**op.spec, "output_uri": str(out), "checkpoint_uri": str(checkpoints)}
    result = op.execute(make_context(task_id="tune"))
    assert sorted(p.name for p in out.iterdir()) == ["search-1-trial-0", "search-1-trial-1"]
    assert result["output_uri"] == str(out / f"search-1-trial-{result['best_trial']}")
    assert sorted(p.name for p in checkpoints.iterdir()) == ["search-1-trial-0", "search-1-trial-1"]


def test_cheapest_sends_the_trials_to_the_backend_with_the_lowest_quote(onprem_root):
    context = make_context(task_id="tune")
    result = run_to_the_end(
        tuner(
            backend="cheapest",
            pick_from=["onprem", "sagemaker", "vertex_ai"],
            n_trials=2,
            trial_hours=0.5,
            onprem_costs=[{"name": "cpu-host", "vcpus": 2, "memory_gib": 8, "hourly_price": 0.01}],
            quote_options={"vcpus": 2},
        ),
        context,
    )
    record = context["task_state_store"].get(SEARCH_KEY)
    assert record["backend"] == "onprem" and record["trial_quote"] == pytest.approx(0.005)
    assert {t["backend"] for t in record["trials"]} == {"onprem"} and result["search"]["backend"] == "onprem"


def test_cheapest_with_one_connection_id_is_refused(onprem_root):
    op = tuner(backend="cheapest", trial_hours=1, backend_conn_id="aws_training")
    with pytest.raises(
        ValueError, match=r"backend_conn_id: with backend='cheapest' give one connection per backend"
    ):
        op.execute(make_context(task_id="tune"))


def test_a_malformed_event_stops_the_trials_and_names_what_is_wrong(onprem_root):
    op = tuner(spec_hp={"sleep": 60})
    context = make_context(task_id="tune")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    with pytest.raises(ValueError, match=r"event\.status"):
        op.execute_complete(context, event={"status": "finished"})
    jobs = [t["job"]["job_name"] for t in deferred.value.trigger.trials]
    assert [settled(OnPremBackend(), job, timeout=20).state for job in jobs] == ["STOPPED", "STOPPED"]
