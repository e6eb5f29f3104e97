"""One search, step by step: settle the trials that ended, prune, ask for new trials, start them.

The loop is the caller's (the operator defers between steps, or waits in the worker); a step never
sleeps. Trials are training jobs started through the training core's lifecycle, so they re-attach,
name themselves and stop exactly as a ``TrainModelOperator`` job does.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_trainkit.training.backend import JobPhase
from airflow_trainkit.tuning import money
from airflow_trainkit.tuning.records import (
    SearchRecord,
    SearchStore,
    TrialJobRecords,
    TrialRecord,
    TrialState,
)

if TYPE_CHECKING:
    from airflow_trainkit.training.backend import JobRef, JobStatus, TrainingBackend
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.lifecycle import JobLifecycle
    from airflow_trainkit.training.spec import TrainingJobSpec
    from airflow_trainkit.tuning.settings import TuneSettings
    from airflow_trainkit.tuning.space import SearchSpace

# Keys of a trial's training result kept in its record (the whole result goes to the task's XCom
# only for the best trial).
_RESULT_KEYS = (
    "backend",
    "job_id",
    "attempt",
    "state",
    "phase",
    "started_at",
    "ended_at",
    "billable_seconds",
    "instance_type",
    "instance_count",
    "spot",
    "accelerator",
    "output_uri",
    "metrics",
    "console_url",
    "region",
)


# How long after its submit a trial's job may be "not found" before it is taken as never started.
NOT_FOUND_GRACE_SECONDS = 120.0


class ObjectiveMissing(ValueError):
    """The trainer's ``metrics.json`` has no value under the search's objective."""


class SearchFailed(RuntimeError):
    """The search ended without a single complete trial."""


@dataclass(frozen=True)
class Waiting:
    """Trials are in flight; ``watch_progress_after`` is when a pruning check is worth a resume (or ``None``)."""

    trials: list[TrialRecord]
    watch_progress_after: float | None


@dataclass(frozen=True)
class Finished:
    """No trial is in flight and none will be asked: the search's result."""

    result: dict[str, Any]


def trial_spec(spec: TrainingJobSpec, params: Mapping[str, Any], *, folder: str) -> TrainingJobSpec:
    """The spec of one trial: its hyperparameters over the template's, and its own output and
    checkpoint folders (``<template's>/<folder>``) so that trials in flight never share one."""
    from airflow_trainkit.storage import join_uri

    update: dict[str, Any] = {"hyperparameters": {**spec.hyperparameters, **params}}
    if spec.output_uri:
        update["output_uri"] = join_uri(spec.output_uri, folder)
    if spec.checkpoint_uri:
        update["checkpoint_uri"] = join_uri(spec.checkpoint_uri, folder)
    return spec.model_copy(update=update)


class Search:
    """One task instance's search.

    :param spec: the trial template; each trial's hyperparameters are merged into its ``hyperparameters``.
    :param identity: the task instance; each trial's job is named from it, the search and the trial number.
    :param backend: a backend name or ``"cheapest"`` (with ``pick_from``).
    :param conn_ids: backend name -> its connection id (missing: the backend's default).
    :param onprem: on-prem cost settings for quotes and actual costs.
    :param quote_options: more arguments of :func:`~airflow_trainkit.costs.quote_job` (``regions``, ``vcpus``, ...).
    """

    def __init__(
        self,
        *,
        spec: TrainingJobSpec,
        space: SearchSpace,
        settings: TuneSettings,
        identity: JobIdentity,
        store: SearchStore,
        backend: str,
        pick_from: Sequence[str] | None = None,
        conn_ids: Mapping[str, str | None] | None = None,
        onprem: Any = None,
        quote_options: Mapping[str, Any] | None = None,
        poll_interval: float | None = None,
        log: Any = None,
    ) -> None:
        self.spec = spec
        self.space = space
        self.settings = settings
        self.identity = identity
        self.store = store
        self.backend_name = backend
        self.pick_from = pick_from
        self.conn_ids = dict(conn_ids or {})
        self.onprem = onprem
        self.quote_options = quote_options
        self.poll_interval = poll_interval
        self.log = log or logging.getLogger(__name__)
        self._backends: dict[str, TrainingBackend] = {}
        self.record: SearchRecord | None = None
        self.n_trials = settings.n_trials

    # -- beginning ------------------------------------------------------------------------------

    def begin(self) -> SearchRecord:
        """Re-attach to this task instance's search, or start a new one (quoting its trials).

        A search that already returned its result starts anew (a cleared task searches again).

        :raises ValueError: bad input found only now (a grid without steps, a budget below one
            trial's quote, a backend that refuses the spec), before any trial starts.
        """
        self.n_trials = self.settings.check_space(self.space)
        record = self.store.load()
        if record is not None and not record.finished:
            self.log.info(
                "Re-attaching to search %d: %d trial(s) recorded, %d in flight",
                record.generation,
                len(record.trials),
                len(record.running),
            )
            self.record = record
            return record
        generation = record.generation + 1 if record is not None else 1
        if record is not None:
            self.log.info(
                "Search %d already returned its result; starting search %d", record.generation, generation
            )
        price = money.price_trials(
            self.spec,
            backend=self.backend_name,
            pick_from=self.pick_from,
            trial_hours=self.settings.trial_hours,
            needed=self.settings.budget is not None or self.backend_name == money.CHEAPEST,
            onprem=self.onprem,
            quote_options=self.quote_options,
        )
        money.check_budget(self.settings.budget, price, self.settings.trial_hours)
        for note in self.backend(price.backend).check(self.spec):
            self.log.warning("%s", note)
        if price.amount is not None:
            self.log.info(
                "Each trial on %s is quoted %.4f %s (%g h)%s",
                price.backend,
                price.amount,
                price.currency,
                self.settings.trial_hours,
                f"; budget {self.settings.budget:g} {price.currency}" if self.settings.budget else "",
            )
        self.record = SearchRecord(
            generation=generation, backend=price.backend, trial_quote=price.amount, currency=price.currency
        )
        self.store.save(self.record)
        return self.record

    # -- one step -------------------------------------------------------------------------------

    def step(self, *, check_progress: bool = False) -> Waiting | Finished:
        """Settle the trials that ended, prune, start new trials while there is room and money.

        :param check_progress: read the running trials' intermediate metrics for a pruning decision.
        :raises ObjectiveMissing: the first trial to succeed wrote no objective (in-flight trials stopped).
        :raises SearchFailed: no trial completed.
        """
        record = self._record()
        for trial in record.running:
            self._refresh(trial, check_progress=check_progress)
        if check_progress:
            record.last_progress_check = time.time()
        self.store.save(record)
        self._check_objective_written()
        if self.settings.pruning is not None:
            self._prune()
        self._ask_while_room()
        if record.running:
            return Waiting(record.running, self._progress_watch_after())
        return Finished(self._result())

    def stop_running(self, reason: str) -> None:
        """Ask every trial in flight to stop (a kill, a timeout, a failed search); failures are logged."""
        record = self._record()
        for trial in record.running:
            if trial.job:
                self._lifecycle(trial).stop(self._ref(trial), reason=reason)

    def mark_finished(self) -> None:
        """The search returned its result: a task cleared after this starts a new search."""
        record = self._record()
        record.finished = True
        self.store.save(record)

    # -- trials ---------------------------------------------------------------------------------

    def backend(self, name: str) -> TrainingBackend:
        """The backend object for ``name`` on its connection (one per search step)."""
        if name not in self._backends:
            from airflow_trainkit.training.backend import get_backend

            self._backends[name] = get_backend(name)(self.conn_ids.get(name))
        return self._backends[name]

    def trial_identity(self, number: int) -> JobIdentity:
        """The identity a trial's job is named from: the task's, with the search and trial number."""
        from dataclasses import replace

        generation = self._record().generation
        return replace(self.identity, task_id=f"{self.identity.task_id}.s{generation}.trial{number}")

    def trial_folder(self, number: int) -> str:
        """The sub-folder of the template's output and checkpoint URIs that a trial writes to."""
        return f"search-{self._record().generation}-trial-{number}"

    def _lifecycle(self, trial: TrialRecord) -> JobLifecycle:
        from airflow_trainkit.training.lifecycle import JobLifecycle

        return JobLifecycle(
            self.backend(trial.backend),
            trial_spec(self.spec, trial.params, folder=self.trial_folder(trial.number)),
            self.trial_identity(trial.number),
            TrialJobRecords(self._record(), trial, self.store),
            log=self.log,
            poll_interval=self.poll_interval,
        )

    @staticmethod
    def _ref(trial: TrialRecord) -> JobRef:
        from airflow_trainkit.training.backend import JobRef

        return JobRef.from_dict(trial.job or {})

    def _start(self, trial: TrialRecord) -> None:
        """Start (or, after a crash, find) the trial's job; a refused submit fails only this trial."""
        lifecycle = self._lifecycle(trial)
        try:
            ref, status = lifecycle.find_or_submit(new_attempt_after_end=False)
        except Exception as err:
            self.log.warning("Trial %d could not start: %s", trial.number, err)
            self._end(trial, TrialState.FAILED, message=f"could not start: {type(err).__name__}: {err}")
            return
        self.log.info(
            "Trial %d on %s: job %s (%s) with %s",
            trial.number,
            trial.backend,
            ref.job_name,
            status.state,
            trial.params,
        )
        if status.phase.terminal:
            self._settle(trial, lifecycle, ref, status)

    def _refresh(self, trial: TrialRecord, *, check_progress: bool) -> None:
        """Look at one trial in flight: settle it if its job ended, read its progress if asked."""
        if not trial.job:  # recorded, but the try died before its job was: start it now
            self._start(trial)
            return
        lifecycle = self._lifecycle(trial)
        ref = self._ref(trial)
        try:
            status = lifecycle.backend.find(ref if ref.handle else ref.job_name)
        except Exception as err:  # a status call that fails is asked again at the next step
            self.log.warning("Status of trial %d (job %s) failed: %s", trial.number, ref.job_name, err)
            return
        if status is None:
            if ref.submitted_at and time.time() - ref.submitted_at < NOT_FOUND_GRACE_SECONDS:
                return  # clouds answer "not found" just after a create: look again next step
            self._start(trial)  # the record was written before a submit that never happened
            return
        if status.phase.terminal:
            self._settle(trial, lifecycle, ref, status)
            return
        if ref.deadline and time.time() >= ref.deadline:
            lifecycle.stop(ref, reason="the trial passed its deadline")
            trial.message = "passed its deadline"
            return
        if check_progress and self.settings.pruning is not None:
            self._read_progress(trial, lifecycle.backend, status)

    def _read_progress(self, trial: TrialRecord, backend: TrainingBackend, status: JobStatus) -> None:
        from airflow_trainkit.tuning.study import intermediate_values

        pruning = self.settings.pruning
        if pruning is None or not backend.reports_progress:
            return
        try:
            history = backend.progress(status) or {}
        except Exception as err:
            self.log.warning("Progress of trial %d could not be read: %s", trial.number, err)
            return
        values = history.get(pruning.metric)
        if values:
            trial.intermediate = intermediate_values(values)
            trial.rounds_read = len(values)

    def _settle(self, trial: TrialRecord, lifecycle: JobLifecycle, ref: JobRef, status: JobStatus) -> None:
        """Record the outcome of a trial whose job ended: objective, state, cost, result."""
        backend = lifecycle.backend
        result = backend.result(status, lifecycle.spec, attempt=ref.attempt)
        trial.result = {key: result.get(key) for key in _RESULT_KEYS}
        trial.cost = money.trial_cost(result, self.onprem)
        if status.phase != JobPhase.SUCCEEDED and (trial.message or "").startswith("pruned"):
            self._end(trial, TrialState.PRUNED)  # a pruned job that finished before the stop counts whole
            return
        if status.phase != JobPhase.SUCCEEDED:
            tail = lifecycle.log_tail(ref, 20)
            why = status.message or trial.message or status.state
            self._end(trial, TrialState.FAILED, message=f"job {ref.job_name} ended {status.state}: {why}")
            if tail:
                trial.message = f"{trial.message}; last log line: {tail[-1]}"
            return
        if self.settings.pruning is not None:  # its whole history: the median later trials are judged by
            self._read_progress(trial, backend, status)
        metrics = result.get("metrics") or {}
        value = metrics.get(self.settings.objective)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self._end(
                trial,
                TrialState.FAILED,
                message=f"metrics.json has no number under {self.settings.objective!r} "
                f"(it wrote: {', '.join(sorted(metrics)) or 'nothing'})",
            )
            trial.result["objective_missing"] = True
            return
        trial.value = float(value)
        self._end(trial, TrialState.COMPLETE)

    def _end(self, trial: TrialRecord, state: TrialState, *, message: str | None = None) -> None:
        trial.state = state
        trial.ended_at = time.time()
        if message is not None:
            trial.message = message
        shown = f"{self.settings.objective}={trial.value:.6g}" if trial.value is not None else trial.message
        cost = (
            f"; cost {trial.spent:.4f} {trial.cost['currency']}"
            if trial.cost and trial.spent is not None
            else ""
        )
        self.log.info("Trial %d %s: %s%s", trial.number, state.value, shown, cost)
        self.store.save(self._record())

    def _check_objective_written(self) -> None:
        """Fail the search when the first trial to succeed wrote no objective: every other would be the same."""
        record = self._record()
        succeeded = [
            t for t in record.trials if t.result and t.result.get("phase") == JobPhase.SUCCEEDED.value
        ]
        if not succeeded or succeeded[0].state == TrialState.COMPLETE:
            return
        first = succeeded[0]
        self.stop_running(reason="the search failed: the trainer writes no objective")
        metrics = (first.result or {}).get("metrics") or {}
        raise ObjectiveMissing(
            f"objective: {self.settings.objective!r} is not in the metrics.json of trial {first.number} "
            f"(job {(first.result or {}).get('job_id')}); it wrote: {', '.join(sorted(metrics)) or 'nothing'}"
        )

    def _prune(self) -> None:
        from airflow_trainkit.tuning.study import rebuild, should_prune

        record = self._record()
        candidates = [
            t for t in record.running if t.intermediate and not (t.message or "").startswith("pruned")
        ]
        if not candidates:
            return
        study = rebuild(record, self.settings, self.space)
        for trial in candidates:
            if should_prune(study, trial):
                last = max(trial.intermediate, key=int)
                pruning = self.settings.pruning
                metric = pruning.metric if pruning else "?"
                trial.message = f"pruned at round {last}: {metric} below the median of earlier trials"
                self._lifecycle(trial).stop(self._ref(trial), reason=f"trial {trial.number} pruned")
                self.log.info("Trial %d pruned at round %s", trial.number, last)
        self.store.save(record)

    def _ask_while_room(self) -> None:
        from airflow_trainkit.tuning.study import ask, rebuild, trial_seed

        record = self._record()
        budget = self.settings.budget
        while len(record.running) < self.settings.parallel and len(record.trials) < self.n_trials:
            if not money.affordable(record, budget):
                self.log.info(
                    "Not asking for trial %d: spent plus the quotes in flight (%.4f %s) and one more quote "
                    "(%.4f) would pass the budget (%g)",
                    len(record.trials),
                    money.committed(record),
                    record.currency,
                    record.trial_quote or 0.0,
                    budget,
                )
                return
            number = len(record.trials)
            seed = trial_seed(self.settings.seed, record.generation, number)
            params, system_attrs = ask(rebuild(record, self.settings, self.space, seed=seed), self.space)
            trial = TrialRecord(
                number=number,
                params=params,
                backend=record.backend,
                system_attrs=system_attrs,
                quote=record.trial_quote,
            )
            # Recorded before its job starts: a try that dies in between finds it and its job's name.
            record.trials.append(trial)
            self.store.save(record)
            self._start(trial)

    def _progress_watch_after(self) -> float | None:
        """When the trigger should look for new intermediate metrics; ``None``: not worth a resume."""
        pruning = self.settings.pruning
        record = self._record()
        if pruning is None:
            return None
        finished = len(record.in_state(TrialState.COMPLETE, TrialState.PRUNED))
        if finished < max(pruning.startup_trials, 1):
            return None  # the median rule judges nobody before then
        if not any(self.backend(t.backend).reports_progress for t in record.running):
            return None
        interval = self.poll_interval or self.backend(record.backend).poll_interval
        every = pruning.check_every if pruning.check_every is not None else 3 * interval
        return max(record.last_progress_check + every, time.time() + interval)

    # -- the result -----------------------------------------------------------------------------

    def _result(self) -> dict[str, Any]:
        record = self._record()
        complete = record.in_state(TrialState.COMPLETE)
        if not complete:
            reasons = "; ".join(f"trial {t.number}: {t.message}" for t in record.trials[:5])
            raise SearchFailed(
                f"no trial of search {record.generation} completed ({len(record.trials)} started)"
                + (f": {reasons}" if reasons else "")
            )
        best = (max if self.settings.direction == "maximize" else min)(complete, key=lambda t: t.value or 0.0)
        counts = {
            state.value: len(record.in_state(state)) for state in TrialState if state != TrialState.RUNNING
        }
        return {
            **(best.result or {}),
            "cost": best.cost,
            "best_trial": best.number,
            "params": best.params,
            "hyperparameters": {**self.spec.hyperparameters, **best.params},
            "objective": {
                "name": self.settings.objective,
                "direction": self.settings.direction,
                "value": best.value,
            },
            "trials": {**counts, "total": len(record.trials)},
            "money": {
                "spent": round(money.spent(record), 6),
                "budget": self.settings.budget,
                "trial_quote": record.trial_quote,
                "currency": record.currency,
            },
            "search": {
                "generation": record.generation,
                "backend": record.backend,
                "sampler": self.settings.sampler,
            },
        }

    def _record(self) -> SearchRecord:
        if self.record is None:
            raise RuntimeError("Search.begin() must run before its steps")
        return self.record
