"""A search's money: one trial's quote before the search starts, the budget rule, each trial's actual cost.

Every trial runs the same spec shape (only hyperparameters differ), so one quote prices them all;
``"cheapest"`` is resolved once, from that same quote table, when the search begins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_trainkit.training.spec import TrainingJobSpec
    from airflow_trainkit.tuning.records import SearchRecord

CHEAPEST = "cheapest"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialPrice:
    """Where trials run and what one is quoted (``amount`` is ``None`` when it was not quoted)."""

    backend: str
    amount: float | None
    currency: str | None
    basis: str | None = None


def price_trials(
    spec: TrainingJobSpec,
    *,
    backend: str,
    pick_from: Sequence[str] | None,
    trial_hours: float | None,
    needed: bool,
    onprem: Any = None,
    quote_options: Mapping[str, Any] | None = None,
) -> TrialPrice:
    """Quote one trial on ``backend`` (or pick the cheapest of ``pick_from``).

    :param needed: a quote is required (a budget is set, or the backend is ``"cheapest"``); otherwise
        the trials are not quoted.
    :raises ValueError: naming the field: no backend can run the spec, or it has no price.
    """
    from airflow_trainkit.costs import quote_job

    if not needed:
        return TrialPrice(backend, None, None)
    if trial_hours is None:
        raise ValueError(
            f"trial_hours: required with backend={backend!r} (the cheapest backend is chosen by a "
            "quote for trial_hours), got None"
        )
    options = dict(quote_options or {})
    if backend == CHEAPEST:
        table = quote_job(spec, hours=trial_hours, pick_from_backends=pick_from, onprem=onprem, **options)
        if table.cheapest is None:
            reasons = "; ".join(f"{name}: {why}" for name, why in sorted(table.left_out.items()))
            raise ValueError(f"backend: 'cheapest' found no backend that can run the spec ({reasons})")
        quote = table.cheapest
    else:
        table = quote_job(spec, hours=trial_hours, backends=[backend], onprem=onprem, **options)
        quote = next(q for q in table.quotes if q.backend == backend)
        if not quote.available or quote.total is None:
            raise ValueError(
                f"budget: a trial on backend {backend!r} cannot be quoted, so the budget cannot be kept "
                f"({'; '.join(quote.warnings) or 'no price'})"
            )
    return TrialPrice(quote.backend, float(quote.total or 0.0), quote.currency, quote.pricing)


def check_budget(budget: float | None, price: TrialPrice, trial_hours: float | None) -> None:
    """Refuse a budget that cannot pay for one trial.

    :raises ValueError: naming ``budget``, its value and the trial's quote.
    """
    if budget is None or price.amount is None:
        return
    if budget < price.amount:
        raise ValueError(
            f"budget: {budget:g} {price.currency} is smaller than one trial's quote "
            f"({price.amount:g} {price.currency} for {trial_hours:g} h on {price.backend}), got {budget!r}"
        )


def committed(record: SearchRecord) -> float:
    """What the search has spent plus what its trials in flight are quoted.

    A finished trial counts its actual cost, or its quote when its cost could not be priced (never
    nothing: the budget must not be passed on a missing price).
    """
    total = 0.0
    for trial in record.trials:
        if trial.state.finished and trial.spent is not None:
            total += trial.spent
        else:
            total += trial.quote or 0.0
    return total


def spent(record: SearchRecord) -> float:
    """The actual cost of the trials that ended and could be priced."""
    return sum(t.spent or 0.0 for t in record.trials if t.state.finished)


def affordable(record: SearchRecord, budget: float | None) -> bool:
    """Whether one more trial fits: spent plus the quotes in flight plus its quote stay within ``budget``."""
    if budget is None or record.trial_quote is None:
        return True
    return committed(record) + record.trial_quote <= budget + 1e-9


def trial_cost(result: Mapping[str, Any], onprem: Any = None) -> dict[str, Any] | None:
    """What a trial's job cost (also a failed or pruned one: the time it ran); ``None`` if it cannot be priced."""
    from airflow_trainkit.costs import actual_cost

    try:
        cost = actual_cost(result, onprem=onprem)
    except (OSError, ValueError) as err:
        log.warning("No cost recorded for trial job %s: %s", result.get("job_id"), err)
        return None
    if not cost:
        return None
    return {key: cost.get(key) for key in ("amount", "currency", "billable_hours", "pricing", "region")}
