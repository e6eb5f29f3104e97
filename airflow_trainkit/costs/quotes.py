"""Quotes before a run: what one training job costs on every priced backend, from the price catalog.

Stdlib only. Which backends are quoted and how each is priced comes from the pricing registry
(:mod:`airflow_trainkit.training.pricing`): a quote prices the instance each backend would use for
the spec (the shared instance table for the clouds; price rows that carry their own GPUs, such as
the on-prem cost settings) for the expected hours. The cheapest is chosen only among backends that
can train the job here; the others are listed in ``left_out`` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any
from warnings import warn

from airflow_trainkit.costs.catalog import Catalog, PriceRow, load_catalog, max_age_days, row_warnings
from airflow_trainkit.training.instances import InstanceChoice, instance_for, instances_for
from airflow_trainkit.training.spec import Accelerator, TrainingJobSpec

if TYPE_CHECKING:
    from airflow_trainkit.training.pricing import PricingEntry, PricingRegistry


@dataclass
class Quote:
    """What the job costs on one backend. Prices are for the whole job (all instances, all GPUs).

    ``available`` is false when the backend cannot run it (no such GPU, no price); ``warnings`` says why.
    """

    backend: str
    available: bool
    hours: float
    instance_count: int = 1
    service: str | None = None
    region: str | None = None
    instance_type: str | None = None
    accelerator_type: str | None = None
    accelerator: str | None = None
    pricing: str | None = None
    on_demand_hourly: float | None = None
    spot_hourly: float | None = None
    hourly_price: float | None = None
    total: float | None = None
    on_demand_total: float | None = None
    spot_total: float | None = None
    spot_saving: float | None = None
    spot_saving_pct: float | None = None
    currency: str | None = None
    retired: bool = False
    price_rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def provider(self) -> str:
        """Deprecated alias of :attr:`backend` (goes in the next release)."""
        warn("Quote.provider is deprecated; use Quote.backend", DeprecationWarning, stacklevel=2)
        return self.backend

    def to_dict(self) -> dict[str, Any]:
        """JSON for XCom; ``provider`` repeats ``backend`` for one release (deprecated)."""
        return {**asdict(self), "provider": self.backend}


@dataclass
class QuoteTable:
    """Every backend's quote for one job, the cheapest one a job can train on here, and why the
    others could not be picked (``left_out``: backend -> reason)."""

    request: dict[str, Any]
    quotes: list[Quote]
    cheapest: Quote | None
    catalog: str
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return [f"{q.backend}: {w}" for q in self.quotes for w in q.warnings]

    def to_dict(self) -> dict[str, Any]:
        """JSON for XCom: ``cheapest`` carries ``backend`` so a training task can use it directly."""
        return {
            "request": dict(self.request),
            "quotes": [q.to_dict() for q in self.quotes],
            "cheapest": self.cheapest.to_dict() if self.cheapest is not None else None,
            "left_out": dict(self.left_out),
            "warnings": self.warnings,
            "catalog": self.catalog,
        }


def expected_hours(
    hours: float | str | None = None,
    *,
    epochs: float | str | None = None,
    seconds_per_epoch: float | str | None = None,
) -> float:
    """Hours the job is expected to run: ``hours``, or ``epochs`` x ``seconds_per_epoch``.

    :raises ValueError: naming the field and the value when it is missing, not a number or not positive.
    """
    if hours is not None:
        if epochs is not None or seconds_per_epoch is not None:
            raise ValueError("hours: give either hours or epochs with seconds_per_epoch, not both")
        return _positive("hours", hours)
    if epochs is None or seconds_per_epoch is None:
        raise ValueError(
            f"hours: a quote needs the expected hours, or epochs and seconds_per_epoch "
            f"(got epochs={epochs!r}, seconds_per_epoch={seconds_per_epoch!r})"
        )
    return _positive("epochs", epochs) * _positive("seconds_per_epoch", seconds_per_epoch) / 3600.0


def quote_job(
    spec: TrainingJobSpec | Mapping[str, Any],
    *,
    hours: float | str | None = None,
    epochs: float | str | None = None,
    seconds_per_epoch: float | str | None = None,
    backends: Iterable[str] | None = None,
    pick_from: Iterable[str] | None = None,
    catalog: Catalog | None = None,
    onprem: Any = None,
    today: date | None = None,
    max_age: int | None = None,
    registry: PricingRegistry | None = None,
    providers: Iterable[str] | None = None,
) -> QuoteTable:
    """Quote ``spec`` on every priced backend and pick the cheapest one it can train on here.

    :param spec: a ``TrainingJobSpec`` or its dict; its accelerator (or instance type), instance
        count and ``spot`` decide what is priced, and the backends' capabilities whether it can run.
    :param hours: expected hours; or ``epochs`` and ``seconds_per_epoch``.
    :param backends: backends to quote (default every entry of the pricing registry).
    :param pick_from: backends the cheapest may be chosen from (default: all quoted). Whatever it
        names, only backends installed here, trainable, and whose capabilities accept ``spec`` are
        picked; the others are in ``left_out`` with the reason.
    :param catalog: the catalog to use (default :func:`load_catalog` with ``onprem`` settings).
    :param today: the date staleness and retirement are judged against (default today).
    :param max_age: days after which a price is flagged stale (default 90 or ``$TRAINKIT_PRICE_MAX_AGE_DAYS``).
    :param registry: the pricing registry (default :func:`~airflow_trainkit.training.pricing.pricing_registry`).
    :param providers: deprecated alias of ``backends``.
    :raises ValueError: a ``pick_from`` or ``backends`` name no backend declares (checked first);
        bad spec or hours; or no backend can price the job.
    """
    from airflow_trainkit.training.pricing import pricing_registry

    reg = registry if registry is not None else pricing_registry()
    eligible = reg.check_names("pick_from", pick_from) if pick_from is not None else None
    if providers is not None:
        warn("quote_job(providers=...) is deprecated; use backends=...", DeprecationWarning, stacklevel=2)
        if backends is not None:
            raise ValueError("backends: give backends or the deprecated providers, not both")
        backends = providers
    names = reg.check_names("backends", backends) if backends is not None else reg.names()
    job = TrainingJobSpec.parse(spec)
    duration = expected_hours(hours, epochs=epochs, seconds_per_epoch=seconds_per_epoch)
    accelerator = job.parsed_accelerator
    if accelerator is None and not job.instance_type:
        raise ValueError("spec.accelerator: a quote needs an accelerator (e.g. 'T4:1') or spec.instance_type")
    cat = catalog if catalog is not None else load_catalog(onprem=onprem)
    day = today or date.today()
    age = max_age_days(max_age)
    # Installed backends that cannot be priced here are not quoted, but say why they were not.
    left_out = {n: r for n, r in reg.unpriced.items() if backends is None or n in names}
    entries = [entry for name in names if (entry := reg.get(name)) is not None]
    quotes = [_quote_backend(entry, job, accelerator, duration, cat, day, age) for entry in entries]
    if job.instance_type and not any(q.available for q in quotes):
        raise ValueError(
            f"spec.instance_type: no backend has a price for {job.instance_type!r} in {cat.path}: "
            + "; ".join(w for q in quotes for w in q.warnings)
        )
    if not any(q.available for q in quotes):
        raise ValueError(
            f"spec.accelerator: no backend can run {job.accelerator!r}: "
            + "; ".join(
                [*(w for q in quotes for w in q.warnings), *(f"{n}: {r}" for n, r in left_out.items())]
            )
        )
    candidates = []
    for entry, quote in zip(entries, quotes, strict=True):
        reason = _why_left_out(entry, quote, job, eligible)
        if reason is None:
            candidates.append(quote)
        else:
            left_out[entry.name] = reason
    cheapest = _cheapest(candidates, left_out)
    return QuoteTable(
        request={
            "accelerator": str(accelerator) if accelerator else None,
            "instance_type": job.instance_type,
            "instance_count": job.instance_count,
            "spot": job.spot,
            "hours": duration,
            "backends": names,
            "providers": names,  # deprecated alias of "backends", for one release
            "pick_from": eligible,
            "today": day.isoformat(),
            "max_age_days": age,
        },
        quotes=quotes,
        cheapest=cheapest,
        catalog=cat.path,
        left_out=left_out,
    )


def _why_left_out(
    entry: PricingEntry, quote: Quote, job: TrainingJobSpec, eligible: list[str] | None
) -> str | None:
    """Why the cheapest may not be ``entry``, or ``None`` when it may."""
    if eligible is not None and entry.name not in eligible:
        return f"not in pick_from ({', '.join(eligible)})"
    if entry.backend is None or not entry.pricing.trainable:
        return entry.why_not_trainable()
    refusal = entry.backend.capabilities.refusal(job, entry.name)
    if refusal is not None:
        return refusal
    if not quote.available:
        return "not available: " + ("; ".join(quote.warnings) or "no price")
    if quote.retired:
        return "retired size: " + ", ".join(r["instance_type"] for r in quote.price_rows)
    return None


def _quote_backend(
    entry: PricingEntry,
    job: TrainingJobSpec,
    accelerator: Accelerator | None,
    hours: float,
    catalog: Catalog,
    today: date,
    max_age: int,
) -> Quote:
    base = Quote(backend=entry.name, available=False, hours=hours, instance_count=job.instance_count)
    try:
        options = _priced_options(entry, job, accelerator, catalog)
    except LookupError as err:
        base.warnings.append(str(err))
        return base
    minimum_hours = entry.pricing.minimum_billed_seconds / 3600.0
    quotes = [_price(base, option, job, today, max_age, minimum_hours) for option in options]
    # Prefer sizes still on sale, then the cheapest; retired sizes are quoted but flagged.
    quotes.sort(key=lambda q: (q.retired, q.total if q.total is not None else math.inf))
    return quotes[0]


@dataclass
class _Option:
    rows: list[tuple[PriceRow, float]]  # row and how many of it one instance takes
    instance_type: str
    accelerator: str | None
    accelerator_type: str | None = None


def _priced_options(
    entry: PricingEntry, job: TrainingJobSpec, accelerator: Accelerator | None, catalog: Catalog
) -> list[_Option]:
    """Every way ``entry`` can run the job with the rows that price it; ``LookupError`` says why not."""
    name, key, table = entry.name, entry.pricing.catalog_key, entry.pricing.instance_table
    rows = catalog.for_provider(key)
    explicit = job.instance_type_for(name)
    if table is None:  # rows that carry their own GPUs (on-prem hosts), not an instance table
        return _gpu_share_options(entry, rows, accelerator, explicit, catalog)
    if not rows:
        raise LookupError(f"no prices for {name} in the catalog {catalog.path}")
    if explicit:
        choices = _explicit_choice(table, explicit, accelerator)
    elif accelerator is None:
        raise LookupError(f"no instance type given for {name} and no accelerator asked for")
    else:
        try:
            instance_for(table, accelerator)  # raises with what the backend does offer
        except ValueError as err:
            raise LookupError(f"no such GPU: {err}".replace("accelerator: ", "")) from None
        choices = instances_for(table, accelerator)
    options = []
    missing = []
    for choice in choices:
        if choice.accelerator_type:  # machine plus accelerator (Vertex AI)
            machine = catalog.find(key, choice.instance_type, kind="machine")
            gpu = catalog.find(key, choice.accelerator_type, kind="accelerator")
            if machine is None or gpu is None:
                missing.append(f"{choice.instance_type} + {choice.accelerator_type}")
                continue
            count = choice.accelerator_count or choice.gpu_count
            options.append(
                _Option(
                    [(machine, 1), (gpu, count)],
                    choice.instance_type,
                    choice.accelerator,
                    choice.accelerator_type,
                )
            )
        else:
            row = catalog.find(key, choice.instance_type)
            if row is None or row.kind != "instance":
                missing.append(choice.instance_type)
                continue
            acc = f"{row.gpu_model}:{row.gpu_count}" if row.gpu_model else None
            options.append(_Option([(row, 1)], choice.instance_type, acc))
    if not options:
        raise LookupError(f"no price for {name} {', '.join(missing)} in the catalog {catalog.path}")
    return options


def _explicit_choice(
    provider: str, instance_type: str, accelerator: Accelerator | None
) -> list[InstanceChoice]:
    if accelerator is not None:
        choices = instances_for(provider, accelerator)
        for choice in choices:
            if choice.instance_type == instance_type:
                return [choice]
        if choices and choices[0].accelerator_type:  # another machine type with the same accelerators
            return [replace(choices[0], instance_type=instance_type)]
    model = accelerator.model if accelerator and accelerator.model else ""
    return [InstanceChoice(provider, instance_type, model, accelerator.count if accelerator else 0)]


def _gpu_share_options(
    entry: PricingEntry,
    rows: list[PriceRow],
    accelerator: Accelerator | None,
    explicit: str | None,
    catalog: Catalog,
) -> list[_Option]:
    """Rows that carry their own GPUs: the job takes enough of one row's GPUs and pays for its share."""
    provider = entry.name
    settings = entry.pricing.rows == "onprem_settings"
    if not rows and settings:
        raise LookupError(
            f"no {provider} cost settings: give onprem=[{{name, gpu_model, gpu_count, purchase_price, ...}}] "
            "or write them to <trainkit home>/costs/onprem.csv"
        )
    if not rows:
        raise LookupError(
            f"no prices for {provider} in the catalog {catalog.path} "
            f"(rows with provider {entry.pricing.catalog_key!r})"
        )
    what = "host" if settings else "instance"
    if explicit and explicit not in (provider, entry.pricing.catalog_key):
        rows = [row for row in rows if row.instance_type == explicit]
        if not rows:
            where = "the cost settings" if settings else f"the catalog {catalog.path}"
            raise LookupError(f"no {provider} {what} named {explicit!r} in {where}")
    options = []
    for row in rows:
        if accelerator is None:
            if row.gpu_model is None:
                options.append(_Option([(row, 1)], row.instance_type, None))
        elif accelerator.model in (None, row.gpu_model) and row.gpu_count >= accelerator.count:
            share = accelerator.count / row.gpu_count  # the job pays for the GPUs it takes
            options.append(
                _Option([(row, share)], row.instance_type, str(Accelerator(row.gpu_model, accelerator.count)))
            )
    if not options:
        have = ", ".join(f"{r.instance_type} ({r.gpu_model or 'cpu'}:{r.gpu_count})" for r in rows)
        wanted = str(accelerator) if accelerator else "a CPU-only host"
        raise LookupError(f"no such GPU: no {provider} {what} with {wanted}; {what}s: {have}")
    return options


def _price(
    base: Quote, option: _Option, job: TrainingJobSpec, today: date, max_age: int, minimum_hours: float = 0.0
) -> Quote:
    count = job.instance_count
    on_demand = sum(row.on_demand_per_hour * n for row, n in option.rows) * count
    spot_parts = [row.spot_per_hour for row, _ in option.rows]
    spot = (
        sum((row.spot_per_hour or 0.0) * n for row, n in option.rows) * count
        if all(p is not None for p in spot_parts)
        else None
    )
    first = option.rows[0][0]
    warnings: list[str] = []
    for row, _ in option.rows:
        warnings.extend(row_warnings(row, today=today, max_age=max_age))
    currencies = {row.currency for row, _ in option.rows}
    if len(currencies) > 1:
        warnings.append(f"rows priced in different currencies: {', '.join(sorted(currencies))}")
    use_spot = job.spot and spot is not None
    if job.spot and spot is None:
        names = ", ".join(row.instance_type for row, _ in option.rows if row.spot_per_hour is None)
        warnings.append(
            f"no spot price: the catalog has no spot price for {names}; quoted at the on-demand price"
        )
    hourly = spot if use_spot and spot is not None else on_demand
    billed = max(base.hours, minimum_hours)
    if billed > base.hours:
        warnings.append(
            f"minimum billed time: {base.backend} bills at least {minimum_hours * 3600:g} s per run; "
            f"quoted for {billed:g} h"
        )
    quote = Quote(
        backend=base.backend,
        available=True,
        hours=base.hours,
        instance_count=count,
        service=first.service,
        region=first.region,
        instance_type=option.instance_type,
        accelerator_type=option.accelerator_type,
        accelerator=option.accelerator,
        pricing="spot" if use_spot else "on_demand",
        on_demand_hourly=_money(on_demand),
        spot_hourly=_money(spot) if spot is not None else None,
        hourly_price=_money(hourly),
        total=_money(hourly * billed),
        on_demand_total=_money(on_demand * billed),
        spot_total=_money(spot * billed) if spot is not None else None,
        currency=first.currency,
        retired=any(row.retired_on(today) for row, _ in option.rows),
        price_rows=[row.provenance() for row, _ in option.rows],
        warnings=warnings,
    )
    if spot is not None and on_demand > 0:
        quote.spot_saving = _money((on_demand - spot) * billed)
        quote.spot_saving_pct = round(100.0 * (on_demand - spot) / on_demand, 1)
    return quote


def _cheapest(candidates: Sequence[Quote], left_out: dict[str, str]) -> Quote | None:
    """The lowest total among ``candidates`` in one currency; others go to ``left_out``."""
    usable = [q for q in candidates if q.total is not None]
    if not usable:
        return None
    currency = usable[0].currency
    for quote in usable:
        if quote.currency != currency:
            quote.warnings.append(f"not compared for cheapest: priced in {quote.currency}, not {currency}")
            left_out[quote.backend] = f"priced in {quote.currency}, not {currency}"
    same = [q for q in usable if q.currency == currency]
    return min(same, key=lambda q: q.total or 0.0)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def _money(value: float) -> float:
    return round(value, 4)


def format_quote_table(quotes: QuoteTable | Mapping[str, Any] | Sequence[Quote | Mapping[str, Any]]) -> str:
    """A plain-text table of the quotes (a ``QuoteTable``, its XCom dict, or a list of quotes)."""
    if isinstance(quotes, QuoteTable):
        data = quotes.to_dict()
    elif isinstance(quotes, Mapping):
        data = dict(quotes)
    else:
        data = {
            "quotes": [q.to_dict() if isinstance(q, Quote) else dict(q) for q in quotes],
            "cheapest": None,
        }
    rows = data.get("quotes") or []
    cheapest = quote_backend(data.get("cheapest") or {})
    left_out = data.get("left_out") or {}
    header = ["backend", "instance", "GPUs", "pricing", "per hour", "hours", "total", "spot saving", "notes"]
    table = [header]
    for q in rows:
        instance = q.get("instance_type") or "-"
        if q.get("accelerator_type"):
            instance = f"{instance} + {q['accelerator_type']}"
        if q.get("instance_count", 1) > 1:
            instance = f"{q['instance_count']} x {instance}"
        currency = q.get("currency") or ""
        saving = "-"
        if q.get("spot_saving") is not None:
            saving = f"{q['spot_saving']:.2f} ({q['spot_saving_pct']:.0f}%)"
        notes = []
        if cheapest is not None and quote_backend(q) == cheapest:
            notes.append("CHEAPEST")
        if q.get("retired"):
            notes.append("retired")
        if quote_backend(q) in left_out and q.get("available"):
            notes.append("left out")
        if q.get("warnings"):
            notes.append(f"{len(q['warnings'])} warning(s)")
        table.append(
            [
                str(quote_backend(q)),
                instance if q.get("available") else "not available",
                q.get("accelerator") or "-",
                q.get("pricing") or "-",
                f"{q['hourly_price']:.4f} {currency}" if q.get("hourly_price") is not None else "-",
                f"{q.get('hours', 0):g}",
                f"{q['total']:.2f} {currency}" if q.get("total") is not None else "-",
                saving,
                ", ".join(notes),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    warnings = [f"{quote_backend(q)}: {w}" for q in rows for w in q.get("warnings") or []]
    if warnings:
        lines.append("")
        lines.append("warnings:")
        lines.extend(f"  - {w}" for w in warnings)
    if left_out:
        lines.append("")
        lines.append("left out of the cheapest:")
        lines.extend(f"  - {name}: {reason}" for name, reason in left_out.items())
    return "\n".join(lines)


def quote_backend(quote: Mapping[str, Any]) -> str | None:
    """A quote's backend; quotes stored by earlier releases name it ``provider``."""
    return quote.get("backend") or quote.get("provider")
