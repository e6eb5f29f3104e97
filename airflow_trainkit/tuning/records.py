"""What a search keeps across the tries of its task: every trial asked, its job, its outcome, its money.

The study is rebuilt from these records at every step rather than kept in an Optuna storage: the
task state store is the one place every try of the task reaches (any worker, after a retry or a
restart), and it needs no extra server. A trial is recorded before its job is submitted, so a try
that dies in between finds the trial and looks its job up by the trial's deterministic name.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from typing_extensions import override

from airflow_trainkit.training.lifecycle import JobRecords

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_trainkit.training.backend import JobRef

SEARCH_KEY = "trainkit_tuning"


class TrialState(StrEnum):
    """Where a trial stands. Only ``RUNNING`` trials have a job that may still change."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """The trial has its outcome and never changes again."""
        return self is not TrialState.RUNNING


@dataclass
class TrialRecord:
    """One trial: its hyperparameters, its job and what came of it.

    :param number: 0, 1, ... in the order the sampler asked them (Optuna's trial number).
    :param params: the hyperparameters the sampler chose (merged into the spec's).
    :param backend: where its job runs.
    :param job: the job's :class:`~airflow_trainkit.training.backend.JobRef` as a dict; ``None``
        until the lifecycle records it (just before the submit).
    :param system_attrs: Optuna's own attributes of the trial (the grid sampler's point), so a
        rebuilt study knows which points are taken.
    :param value: the objective, for a complete trial.
    :param intermediate: round -> the pruning metric as reported to the pruner (keys are strings in
        JSON; thinned, see ``study.intermediate_values``).
    :param rounds_read: how many rounds of the pruning metric the trial had written when it was last
        read (the trigger wakes the task only for more).
    :param quote: what the trial was quoted before it started; ``None`` when it was not quoted.
    :param cost: the actual cost (``amount``, ``currency``, ...) once its job ended; ``None`` when
        it could not be priced.
    :param result: the job's training result (as ``TrainModelOperator`` returns it), once it ended.
    :param message: why a trial failed or was pruned.
    """

    number: int
    params: dict[str, Any]
    backend: str
    state: TrialState = TrialState.RUNNING
    job: dict[str, Any] | None = None
    system_attrs: dict[str, Any] = field(default_factory=dict)
    value: float | None = None
    intermediate: dict[str, float] = field(default_factory=dict)
    rounds_read: int = 0
    quote: float | None = None
    cost: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    message: str | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON."""
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        """The record back from JSON; keys a later release added are left out."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["state"] = TrialState(values.get("state", TrialState.RUNNING))
        return cls(**values)

    @property
    def spent(self) -> float | None:
        """The trial's actual cost, as a number."""
        return float(self.cost["amount"]) if self.cost and self.cost.get("amount") is not None else None


@dataclass
class SearchRecord:
    """One search of a task instance.

    :param generation: 1 for the task instance's first search; a task cleared after its search
        finished starts search 2, with new job names, as a cleared training task trains anew.
    :param backend: the backend its trials run on (``"cheapest"`` resolved when the search began).
    :param trial_quote: one trial's quote on that backend (every trial has the same spec shape).
    :param currency: the quote's currency; the budget is in it.
    :param finished: the search returned its result.
    :param last_progress_check: when the task last resumed for a pruning decision (epoch seconds).
    """

    generation: int
    backend: str
    trial_quote: float | None = None
    currency: str | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    finished: bool = False
    started_at: float = field(default_factory=time.time)
    last_progress_check: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON, for the task state store."""
        data = asdict(self)
        data["trials"] = [t.to_dict() for t in self.trials]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchRecord:
        """The record back from the task state store."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["trials"] = [TrialRecord.from_dict(t) for t in data.get("trials", [])]
        return cls(**values)

    def in_state(self, *states: TrialState) -> list[TrialRecord]:
        """The trials in any of ``states``, in trial order."""
        return [t for t in self.trials if t.state in states]

    @property
    def running(self) -> list[TrialRecord]:
        """The trials whose job may still change."""
        return self.in_state(TrialState.RUNNING)


class StateStore(Protocol):
    """Airflow's ``task_state_store`` as the search uses it (a dict-like ``get`` and ``set``)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``."""
        ...

    def set(self, key: str, value: Any) -> None:
        """Save ``value`` under ``key`` (JSON)."""
        ...


class SearchStore:
    """Loads and saves the search record of one task instance; ``None`` store: nothing kept."""

    def __init__(self, store: StateStore | None, key: str = SEARCH_KEY) -> None:
        self.store = store
        self.key = key

    def load(self) -> SearchRecord | None:
        """The record saved last, or ``None`` when the task instance has not searched yet."""
        if self.store is None:
            return None
        value = self.store.get(self.key)
        return SearchRecord.from_dict(value) if isinstance(value, dict) else None

    def save(self, record: SearchRecord) -> None:
        """Save ``record`` (it replaces the one before)."""
        if self.store is not None:
            self.store.set(self.key, record.to_dict())


class TrialJobRecords(JobRecords):
    """One trial's job record, kept inside the search record (the lifecycle's :class:`JobRecords`)."""

    def __init__(self, search: SearchRecord, trial: TrialRecord, store: SearchStore) -> None:
        self.search = search
        self.trial = trial
        self.store = store

    @override
    def load(self) -> JobRef | None:
        from airflow_trainkit.training.backend import JobRef

        return JobRef.from_dict(self.trial.job) if self.trial.job else None

    @override
    def save(self, ref: JobRef) -> None:
        self.trial.job = ref.to_dict()
        self.store.save(self.search)
