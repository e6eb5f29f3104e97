"""The Optuna side of a search: a study rebuilt from the records, asked for trials, told of pruning.

Optuna is imported here only, and only when a search runs. Each step builds a fresh in-memory study
from the trial records (see ``records``), so no storage outlives the step and any worker can take
the next one.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import TYPE_CHECKING, Any

from airflow_trainkit.tuning.records import SearchRecord, TrialRecord, TrialState

if TYPE_CHECKING:
    import optuna

    from airflow_trainkit.tuning.settings import TuneSettings
    from airflow_trainkit.tuning.space import SearchSpace


# Which rounds of a trial's per-round metric are kept for the pruner (see intermediate_values).
ROUND_STRIDE = 5
MAX_ROUNDS_KEPT = 1000


def _quiet_optuna() -> None:
    import optuna  # heavy: only when a search runs

    # Optuna logs every study it creates; rebuilt at each step, that is noise in the task log.
    optuna.logging.set_verbosity(logging.WARNING)


def trial_seed(seed: int | None, generation: int, number: int) -> int | None:
    """The sampler's seed for asking trial ``number``.

    A study is rebuilt at every step, so a sampler seeded with ``seed`` itself would draw the same
    first random point each time; mixing in the trial number keeps a seeded search reproducible
    without repeating itself.
    """
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}:{generation}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def build_sampler(
    settings: TuneSettings, space: SearchSpace, seed: int | None, *, generation: int = 1
) -> optuna.samplers.BaseSampler:
    """The sampler ``settings.sampler`` names (TPE, random or grid), seeded with ``seed``."""
    import optuna  # heavy: only when a search runs

    grid_seed = trial_seed(settings.seed or 0, generation, 0)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        # The grid sampler shuffles its points once, by its seed, and gives trial n the n-th: the
        # order must be the same in every rebuilt study, so its seed never varies within a search.
        return optuna.samplers.GridSampler(space.grid(), seed=grid_seed)
    # Optuna samples its first 10 trials at random; a search of 8 would never use TPE at all. Half
    # the trials (at least 2, at most Optuna's 10) explore at random, the rest follow the model.
    # constant_liar: trials in flight count as if they had a bad value, so parallel trials spread out.
    startup = max(2, min(10, settings.n_trials // 2))
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=startup)


def build_pruner(settings: TuneSettings) -> optuna.pruners.BasePruner:
    """A median pruner on the pruning metric, or none."""
    import optuna  # heavy: only when a search runs

    if settings.pruning is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=settings.pruning.startup_trials,
        n_warmup_steps=settings.pruning.warmup_rounds,
    )


_OPTUNA_STATE = {
    TrialState.RUNNING: "RUNNING",
    TrialState.COMPLETE: "COMPLETE",
    TrialState.PRUNED: "PRUNED",
    TrialState.FAILED: "FAIL",
}


def rebuild(
    record: SearchRecord, settings: TuneSettings, space: SearchSpace, *, seed: int | None = None
) -> optuna.Study:
    """An in-memory study holding every recorded trial, in trial order (its numbers match ours).

    The pruning metric's values (as the trainer wrote them) are the trials' intermediate values.
    """
    import optuna  # heavy: only when a search runs
    from optuna.trial import TrialState as OptunaState
    from optuna.trial import create_trial

    _quiet_optuna()
    # The pruner reads intermediate values in the study's direction: a metric that runs the other
    # way (log-loss while the objective is AUC) is turned around.
    sign = -1.0 if settings.pruning_direction not in (None, settings.direction) else 1.0
    distributions = space.distributions()
    study = optuna.create_study(
        direction=settings.direction,
        sampler=build_sampler(settings, space, seed, generation=record.generation),
        pruner=build_pruner(settings),
    )
    for trial in record.trials:
        study.add_trial(
            create_trial(
                state=OptunaState[_OPTUNA_STATE[trial.state]],
                value=trial.value if trial.state == TrialState.COMPLETE else None,
                params=trial.params,
                distributions={name: distributions[name] for name in trial.params if name in distributions},
                system_attrs=trial.system_attrs,
                intermediate_values={int(step): sign * value for step, value in trial.intermediate.items()},
            )
        )
    return study


def ask(study: optuna.Study, space: SearchSpace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's hyperparameters and Optuna's attributes of it (kept in its record)."""
    trial = study.ask(space.distributions())
    frozen = study.get_trials(deepcopy=False)[trial.number]
    return dict(trial.params), dict(frozen.system_attrs)


def should_prune(study: optuna.Study, trial: TrialRecord) -> bool:
    """Whether the pruner judges ``trial`` (running, its intermediate values recorded) hopeless.

    Optuna's pruners judge a trial at its last reported round against the other trials' values at
    that round. Here rounds arrive in batches, between two resumes, and a trial may already be past
    the last round every finished trial reached (they stopped early): it is judged at the last round
    they reached, not left unjudged for want of company.
    """
    import copy

    frozen = study.get_trials(deepcopy=False)[trial.number]
    finished = [
        max(t.intermediate_values)
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.intermediate_values
    ]
    reached = max(finished, default=None)
    values = {
        step: value
        for step, value in frozen.intermediate_values.items()
        if reached is None or step <= reached
    }
    if not values:
        return False
    judged = copy.copy(frozen)
    judged.intermediate_values = values
    return bool(study.pruner.prune(study, judged))


def intermediate_values(history: list[float]) -> dict[str, float]:
    """``progress.json`` history as round -> value (JSON keys), rounds counted from 1.

    Kept in the task state store, so thinned: every ``ROUND_STRIDE``-th round (the same rounds for
    every trial, so the pruner compares like with like), at most ``MAX_ROUNDS_KEPT`` of them, and
    no value that is not a finite number.
    """
    kept: dict[str, float] = {}
    for index, value in enumerate(history):
        round_ = index + 1
        if round_ % ROUND_STRIDE or value is None or not math.isfinite(value):
            continue
        kept[str(round_)] = float(value)
        if len(kept) >= MAX_ROUNDS_KEPT:
            break
    return kept
