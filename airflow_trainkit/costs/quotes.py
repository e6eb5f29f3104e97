"""Quotes before a run: what one training job costs on every priced backend, from the price catalog.

Stdlib only. Which backends are quoted and how each is priced comes from the pricing registry
(:mod:`airflow_trainkit.training.pricing`): a quote prices the instance each backend would use for
the spec (the shared instance table for the clouds; price rows that carry their own GPUs, such as
the on-prem cost settings; for a CPU-only job the cheapest machine with the vCPUs and memory asked
for) in the region asked for, for the expected hours. Each quote says how sure its figures are
(provenance and age). The cheapest is chosen only among backends that can train the job here; the
others are listed in ``left_out`` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from airflow_trainkit.costs.catalog import (
    DAY,
    Catalog,
    PriceRow,
    load_catalog,
    price_age_limit,
    row_warnings,
    weakest_provenance,
)
from airflow_trainkit.costs.regions import RegionChoice, Regions, choose_regions
from airflow_trainkit.training.instances import InstanceChoice, instance_for, instances_for
from airflow_trainkit.training.spec import Accelerator, TrainingJobSpec
from airflow_trainkit.vocabulary import deprecated, renamed_parameter

if TYPE_CHECKING:
    from airflow_trainkit.training.pricing import PricingEntry, PricingRegistry


@dataclass
class Quote:
    """What the job costs on one backend. Prices are for the whole job (all instances, all GPUs).

    ``available`` is false when the backend cannot run it (no such GPU, no price); ``warnings`` says why.
    ``provenance`` is the least sure of the figures used, ``as_of`` the oldest of their dates
    (``None`` when one has none) and ``age_days`` its age; ``notes`` say how a figure is to be read
    (not warnings). ``spot_saving`` is what spot would save, also on an on-demand quote.
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
    region_from: str | None = None
    provenance: str | None = None
    as_of: str | None = None
    age_days: int | None = None
    price_rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def provider(self) -> str:
        """Deprecated alias of :attr:`backend` (goes in the next release)."""
        deprecated("Quote.provider is deprecated; use Quote.backend")
        return self.backend

    def to_dict(self) -> dict[str, Any]:
        """JSON for XCom; ``provider`` repeats ``backend`` for one release (deprecated)."""
        return {**asdict(self), "provider": self.backend}


@dataclass
class QuoteTable:
    """Every backend's quote for one job, the cheapest one a job can train on here, and why the
    others could not be picked (``left_out``: backend -> reason). ``cheapest_caveat`` says so when
    the cheapest rests on a derived or unverified figure."""

    request: dict[str, Any]
    quotes: list[Quote]
    cheapest: Quote | None
    catalog: str
    left_out: dict[str, str] = field(default_factory=dict)
    cheapest_caveat: str | None = None

    @property
    def warnings(self) -> list[str]:
        """Every quote's warnings, each after its backend's name."""
        return [f"{q.backend}: {w}" for q in self.quotes for w in q.warnings]

    def to_dict(self) -> dict[str, Any]:
        """JSON for XCom: ``cheapest`` carries ``backend`` so a training task can use it directly."""
        return {
            "request": dict(self.request),
            "quotes": [q.to_dict() for q in self.quotes],
            "cheapest": self.cheapest.to_dict() if self.cheapest is not None else None,
            "cheapest_caveat": self.cheapest_caveat,
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
    pick_from_backends: Iterable[str] | None = None,
    catalog: Catalog | None = None,
    onprem: Any = None,
    today: date | None = None,
    max_price_age: str | float | None = None,
    registry: PricingRegistry | None = None,
    regions: Regions | None = None,
    region_conn_ids: bool | Mapping[str, str] | None = None,
    vcpus: float | str | None = None,
    memory_gib: float | str | None = None,
    providers: Iterable[str] | None = None,
    pick_from: Iterable[str] | None = None,
    max_age: int | None = None,
) -> QuoteTable:
    """Quote ``spec`` on every priced backend and pick the cheapest one it can train on here.

    :param spec: a ``TrainingJobSpec`` or its dict; its accelerator (or instance type: one name, or
        one per backend), instance count and ``spot`` decide what is priced, and the backends'
        capabilities whether it can run.
    :param hours: expected hours; or ``epochs`` and ``seconds_per_epoch``.
    :param regions: where to price: a geography (``us``, ``eu``, ``asia``) that each backend maps to
        one of its regions, or backend -> region or geography (key ``"*"``: the others). A backend
        with no price in its region is not available ("no price for <backend> in <region>").
    :param region_conn_ids: read the region of backends not in ``regions`` from their connection: ``True``
        for each backend's declared connection, or backend -> connection id. Default: each backend's
        declared default region.
    :param vcpus: for a CPU-only job (no accelerator): the vCPUs it needs; the cheapest machine with
        at least that many (and ``memory_gib`` GiB) is quoted on each backend.
    :param memory_gib: for a CPU-only job: the memory it needs, in GiB.
    :param backends: backends to quote (default every entry of the pricing registry).
    :param pick_from_backends: backends the cheapest may be chosen from (default: all quoted).
        Whatever it names, only backends installed here, trainable, and whose capabilities accept
        ``spec`` are picked; the others are in ``left_out`` with the reason.
    :param catalog: the catalog to use (default :func:`load_catalog` with ``onprem`` settings).
    :param today: the date staleness and retirement are judged against (default today).
    :param max_price_age: how old a price may be before it is flagged stale: a duration (``90d``,
        ``12w``, seconds); default ``$TRAINKIT_PRICE_MAX_AGE`` or 90 days.
    :param registry: the pricing registry (default :func:`~airflow_trainkit.training.pricing.pricing_registry`).
    :param providers: deprecated alias of ``backends``.
    :param pick_from: deprecated alias of ``pick_from_backends``.
    :param max_age: deprecated: ``max_price_age`` in whole days.
    :raises ValueError: a ``pick_from_backends``, ``backends`` or ``regions`` name no backend declares
        (checked first); bad spec, hours, vCPUs, memory or price age; a CPU-only job without vCPUs,
        memory or instance type; or no backend can price the job.
    """
    from airflow_trainkit.training.pricing import pricing_registry

    backends = renamed_parameter("quote_job", "providers", "backends", providers, backends)
    pick_from_backends = renamed_parameter(
        "quote_job", "pick_from", "pick_from_backends", pick_from, pick_from_backends
    )
    reg = registry if registry is not None else pricing_registry()
    eligible = (
        reg.check_names("pick_from_backends", pick_from_backends) if pick_from_backends is not None else None
    )
    names = reg.check_names("backends", backends) if backends is not None else reg.names()
    job = TrainingJobSpec.parse(spec)
    duration = expected_hours(hours, epochs=epochs, seconds_per_epoch=seconds_per_epoch)
    accelerator = job.parsed_accelerator
    size = _CpuSize.asked(vcpus, memory_gib)
    if accelerator is None and not job.instance_type and size.empty:
        raise ValueError(
            "vcpus: a CPU-only quote (no spec.accelerator) needs the vCPUs it runs on (and optionally "
            "memory_gib), or spec.instance_type (one name, or one per backend)"
        )
    chosen = choose_regions(reg, names, regions, region_conn_ids=region_conn_ids)
    age = price_age_limit(max_price_age, max_age, owner="quote_job")
    cat = catalog if catalog is not None else load_catalog(onprem=onprem)
    day = today or date.today()
    # Installed backends that cannot be priced here are not quoted, but say why they were not.
    left_out = {n: r for n, r in reg.unpriced.items() if backends is None or n in names}
    entries = [entry for name in names if (entry := reg.get(name)) is not None]
    quotes = [
        _quote_backend(entry, job, accelerator, size, chosen[entry.name], duration, cat, day, age)
        for entry in entries
    ]
    _check_any_available(quotes, job, accelerator, size, cat, left_out)
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
            "vcpus": size.vcpus,
            "memory_gib": size.memory_gib,
            "spot": job.spot,
            "hours": duration,
            "regions": {name: choice.region for name, choice in chosen.items()},
            "backends": names,
            "pick_from_backends": eligible,
            "today": day.isoformat(),
            "max_price_age_seconds": age,
            "max_age_days": int(age // DAY) if age % DAY == 0 else round(age / DAY, 6),
            # Deprecated repeats, for one release: "providers" of "backends", "pick_from" of "pick_from_backends".
            "providers": names,
            "pick_from": eligible,
        },
        quotes=quotes,
        cheapest=cheapest,
        catalog=cat.path,
        left_out=left_out,
        cheapest_caveat=_caveat(cheapest),
    )


def _check_any_available(
    quotes: Sequence[Quote],
    job: TrainingJobSpec,
    accelerator: Accelerator | None,
    size: _CpuSize,
    catalog: Catalog,
    left_out: Mapping[str, str],
) -> None:
    """:raises ValueError: no backend can price the job, with every reason."""
    if any(q.available for q in quotes):
        return
    if job.instance_type:
        raise ValueError(
            f"spec.instance_type: no backend has a price for {job.instance_type!r} in {catalog.path}: "
            + "; ".join(w for q in quotes for w in q.warnings)
        )
    what = repr(job.accelerator) if accelerator is not None else f"a CPU-only job ({size})"
    raise ValueError(
        f"spec.accelerator: no backend can run {what}: "
        + "; ".join([*(w for q in quotes for w in q.warnings), *(f"{n}: {r}" for n, r in left_out.items())])
    )


def _caveat(cheapest: Quote | None) -> str | None:
    """Why the cheapest pick is less sure than a published or observed price, or ``None``."""
    if cheapest is None or cheapest.provenance not in ("derived", "unverified"):
        return None
    weak = [r for r in cheapest.price_rows if r.get("provenance") in ("derived", "unverified")]
    names = ", ".join(f"{r['instance_type']} ({r['provenance']})" for r in weak)
    article = "an" if cheapest.provenance == "unverified" else "a"
    return (
        f"the cheapest, {cheapest.backend}, rests on {article} {cheapest.provenance} figure: {names}; "
        f"how each was come by is in its note (`trainkit costs catalog --backend {cheapest.backend}`)"
    )


@dataclass(frozen=True)
class _CpuSize:
    """What a CPU-only job needs: vCPUs and memory (either may be unset)."""

    vcpus: float | None = None
    memory_gib: float | None = None

    @classmethod
    def asked(cls, vcpus: Any, memory_gib: Any) -> _CpuSize:
        """The size asked for (each positive, or unset).

        :raises ValueError: naming ``vcpus`` or ``memory_gib`` and the value when it is not positive.
        """
        return cls(
            vcpus=_positive("vcpus", vcpus) if vcpus not in (None, "") else None,
            memory_gib=_positive("memory_gib", memory_gib) if memory_gib not in (None, "") else None,
        )

    @property
    def empty(self) -> bool:
        """Whether no size was asked for."""
        return self.vcpus is None and self.memory_gib is None

    def fits(self, row: PriceRow) -> bool:
        """Whether ``row`` has at least the vCPUs and memory asked for (a size it does not state fits)."""
        return (self.vcpus is None or row.vcpus is None or row.vcpus >= self.vcpus) and (
            self.memory_gib is None or row.memory_gib is None or row.memory_gib >= self.memory_gib
        )

    def __str__(self) -> str:
        parts = [
            f"{self.vcpus:g} vCPUs" if self.vcpus is not None else "",
            f"{self.memory_gib:g} GiB" if self.memory_gib is not None else "",
        ]
        return ", ".join(p for p in parts if p) or "any size"


def _why_left_out(
    entry: PricingEntry, quote: Quote, job: TrainingJobSpec, eligible: list[str] | None
) -> str | None:
    """Why the cheapest may not be ``entry``, or ``None`` when it may."""
    if eligible is not None and entry.name not in eligible:
        return f"not in pick_from_backends ({', '.join(eligible)})"
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
    size: _CpuSize,
    region: RegionChoice,
    hours: float,
    catalog: Catalog,
    today: date,
    max_price_age: float,
) -> Quote:
    base = Quote(
        backend=entry.name,
        available=False,
        hours=hours,
        instance_count=job.instance_count,
        region=region.region,
        region_from=region.source,
    )
    try:
        options = _priced_options(entry, job, accelerator, size, region, catalog)
    except LookupError as err:
        base.warnings.append(str(err))
        return base
    minimum_hours = entry.pricing.minimum_billed_seconds / 3600.0
    quotes = [_price(base, entry, option, job, today, max_price_age, minimum_hours) for option in options]
    # Prefer sizes still on sale, then the cheapest; retired sizes are quoted but flagged.
    quotes.sort(key=lambda q: (q.retired, q.total if q.total is not None else math.inf))
    return quotes[0]


@dataclass
class _Option:
    rows: list[tuple[PriceRow, float]]  # row and how many of it one instance takes
    instance_type: str
    accelerator: str | None
    accelerator_type: str | None = None


def _regional_rows(entry: PricingEntry, region: RegionChoice, catalog: Catalog) -> list[PriceRow]:
    """The backend's rows in the region it is quoted in.

    :raises LookupError: "no price for <backend> in <region>" when the catalog has none there.
    """
    name, key = entry.name, entry.pricing.catalog_key
    rows = catalog.for_backend(key)
    if region.missing:
        raise LookupError(f"no price for {name} in {region.source}: {region.missing}")
    if region.region is None:
        if entry.pricing.rows == "catalog" and len(regions := catalog.regions(key)) > 1:
            return [row for row in rows if row.region == regions[0]]  # the first region in the file
        return rows
    regional = [row for row in rows if row.region == region.region]
    if rows and not regional:
        priced = ", ".join(catalog.regions(key))
        raise LookupError(
            f"no price for {name} in {region.region} ({region.source}): the catalog {catalog.path} "
            f"prices {name} in {priced} only"
        )
    return regional


def _priced_options(
    entry: PricingEntry,
    job: TrainingJobSpec,
    accelerator: Accelerator | None,
    size: _CpuSize,
    region: RegionChoice,
    catalog: Catalog,
) -> list[_Option]:
    """Every way ``entry`` can run the job with the rows that price it; ``LookupError`` says why not."""
    name, table = entry.name, entry.pricing.instance_table
    explicit = job.instance_type_for(name)
    rows = _regional_rows(entry, region, catalog)
    if table is None:  # rows that carry their own GPUs (on-prem hosts), not an instance table
        return _gpu_share_options(entry, rows, accelerator, size, explicit, catalog)
    if not rows:
        raise LookupError(f"no prices for {name} in the catalog {catalog.path}")
    where = f" in {region.region}" if region.region else ""
    if explicit:
        if accelerator is None:
            accelerator = _gpus_of_machine(rows, explicit)
        choices = _explicit_choice(table, explicit, accelerator)
    elif accelerator is None and size.empty:
        raise LookupError(
            f"no instance type given for {name} (spec.instance_type names "
            f"{', '.join(job.instance_type) if isinstance(job.instance_type, Mapping) else 'none'}) "
            "and no accelerator, vcpus or memory_gib asked for"
        )
    elif accelerator is None:
        return _cpu_options(name, rows, size, where)
    else:
        choices = _table_choices(table, accelerator)
    by_type: dict[tuple[str, str], PriceRow] = {}
    for row in rows:
        by_type.setdefault((row.kind, row.instance_type), row)
    options = [option for choice in choices if (option := _option_for(choice, by_type)) is not None]
    if not options:
        missing = ", ".join(_choice_words(choice) for choice in choices)
        raise LookupError(f"no price for {name} {missing}{where} in the catalog {catalog.path}")
    return options


def _gpus_of_machine(rows: Sequence[PriceRow], machine_type: str) -> Accelerator | None:
    """The GPUs a machine type comes with (Vertex AI A2, A3, G2), priced with it; ``None`` for others."""
    machine = next((r for r in rows if r.kind == "machine" and r.instance_type == machine_type), None)
    if machine is not None and machine.gpu_model:
        return Accelerator(machine.gpu_model, machine.gpu_count)
    return None


def _table_choices(table: str, accelerator: Accelerator) -> list[InstanceChoice]:
    """The instance table's choices for ``accelerator``; ``LookupError`` with what the backend does offer."""
    try:
        instance_for(table, accelerator)
    except ValueError as err:
        raise LookupError(f"no such GPU: {err}".replace("accelerator: ", "")) from None
    return instances_for(table, accelerator)


def _choice_words(choice: InstanceChoice) -> str:
    if choice.accelerator_type:
        return f"{choice.instance_type} + {choice.accelerator_type}"
    return choice.instance_type


def _option_for(choice: InstanceChoice, by_type: Mapping[tuple[str, str], PriceRow]) -> _Option | None:
    """The rows that price ``choice``, or ``None`` when the catalog lacks one of them."""
    if choice.accelerator_type:  # machine plus accelerator (Vertex AI)
        machine = by_type.get(("machine", choice.instance_type))
        gpu = by_type.get(("accelerator", choice.accelerator_type))
        if machine is None or gpu is None:
            return None
        count = choice.accelerator_count or choice.gpu_count
        return _Option(
            [(machine, 1), (gpu, count)], choice.instance_type, choice.accelerator, choice.accelerator_type
        )
    # A whole instance, or (a CPU job on Vertex AI) a machine type alone.
    whole = by_type.get(("instance", choice.instance_type)) or by_type.get(("machine", choice.instance_type))
    if whole is None:
        return None
    acc = f"{whole.gpu_model}:{whole.gpu_count}" if whole.gpu_model else None
    return _Option([(whole, 1)], choice.instance_type, acc)


def _cpu_options(name: str, rows: Sequence[PriceRow], size: _CpuSize, where: str) -> list[_Option]:
    """A CPU-only job: every machine without GPUs that has the vCPUs and memory asked for."""
    options = [
        _Option([(row, 1)], row.instance_type, None)
        for row in rows
        if row.kind in ("instance", "machine") and row.gpu_model is None and size.fits(row)
    ]
    if not options:
        raise LookupError(f"no {name} machine without GPUs with at least {size}{where} in the catalog")
    return options


def _explicit_choice(table: str, instance_type: str, accelerator: Accelerator | None) -> list[InstanceChoice]:
    if accelerator is not None:
        choices = instances_for(table, accelerator)
        for choice in choices:
            if choice.instance_type == instance_type:
                return [choice]
        if choices and choices[0].accelerator_type:  # another machine type with the same accelerators
            return [replace(choices[0], instance_type=instance_type)]
    model = accelerator.model if accelerator and accelerator.model else ""
    return [InstanceChoice(table, instance_type, model, accelerator.count if accelerator else 0)]


def _gpu_share_options(
    entry: PricingEntry,
    rows: list[PriceRow],
    accelerator: Accelerator | None,
    size: _CpuSize,
    explicit: str | None,
    catalog: Catalog,
) -> list[_Option]:
    """Rows that carry their own GPUs: the job takes enough of one row's GPUs and pays for its share."""
    name = entry.name
    settings = entry.pricing.rows == "onprem_settings"
    if not rows and settings:
        raise LookupError(
            f"no {name} cost settings: give onprem=[{{name, gpu_model, gpu_count, purchase_price, ...}}] "
            "or write them to <trainkit home>/costs/onprem.csv"
        )
    if not rows:
        raise LookupError(
            f"no prices for {name} in the catalog {catalog.path} "
            f"(rows with backend {entry.pricing.catalog_key!r})"
        )
    what = "host" if settings else "instance"
    if explicit and explicit not in (name, entry.pricing.catalog_key):
        rows = [row for row in rows if row.instance_type == explicit]
        if not rows:
            where = "the cost settings" if settings else f"the catalog {catalog.path}"
            raise LookupError(f"no {name} {what} named {explicit!r} in {where}")
    options = []
    for row in rows:
        if accelerator is None:
            if row.gpu_model is None and size.fits(row):
                options.append(_Option([(row, 1)], row.instance_type, None))
        elif accelerator.model in (None, row.gpu_model) and row.gpu_count >= accelerator.count:
            share = accelerator.count / row.gpu_count  # the job pays for the GPUs it takes
            options.append(
                _Option([(row, share)], row.instance_type, str(Accelerator(row.gpu_model, accelerator.count)))
            )
    if not options:
        have = ", ".join(f"{r.instance_type} ({r.gpu_model or 'cpu'}:{r.gpu_count})" for r in rows)
        wanted = str(accelerator) if accelerator else f"a CPU-only {what} with at least {size}"
        raise LookupError(f"no such GPU: no {name} {what} with {wanted}; {what}s: {have}")
    return options


def _price(
    base: Quote,
    entry: PricingEntry,
    option: _Option,
    job: TrainingJobSpec,
    today: date,
    max_price_age: float,
    minimum_hours: float = 0.0,
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
    notes: list[str] = []
    for row, _ in option.rows:
        warnings.extend(row_warnings(row, today=today, max_price_age=max_price_age))
    currencies = {row.currency for row, _ in option.rows}
    if len(currencies) > 1:
        warnings.append(f"rows priced in different currencies: {', '.join(sorted(currencies))}")
    use_spot = job.spot and spot is not None
    if job.spot and spot is None and entry.pricing.spot_rate == "on_demand":
        # SageMaker managed spot: no spot price exists; the saving shows up as fewer billed seconds.
        notes.append(
            f"spot on {base.backend}: it publishes no spot price and bills a spot run's billable seconds "
            "(fewer than its training seconds) at the on-demand price; quoted at on-demand, an upper bound"
        )
    elif job.spot and spot is None:
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
    rows = [row for row, _ in option.rows]
    dates = [row.as_of for row in rows]
    oldest = None if any(d is None for d in dates) else min(d for d in dates if d is not None)
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
        retired=any(row.retired_on(today) for row in rows),
        region_from=base.region_from,
        provenance=weakest_provenance(rows),
        as_of=oldest.isoformat() if oldest else None,
        age_days=(today - oldest).days if oldest else None,
        price_rows=[row.cited() for row in rows],
        warnings=warnings,
        notes=notes,
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


TABLE_HEADER = (
    "backend",
    "region",
    "instance",
    "GPUs",
    "pricing",
    "per hour",
    "hours",
    "total",
    "spot saving",
    "price basis",
    "notes",
)


def format_quote_table(quotes: QuoteTable | Mapping[str, Any] | Sequence[Quote | Mapping[str, Any]]) -> str:
    """A plain-text table of the quotes (a ``QuoteTable``, its XCom dict, or a list of quotes).

    ``spot saving`` is what spot saved on a spot quote, and ``if spot: ...`` on an on-demand quote
    whose backend has a spot price; ``price basis`` is the least sure provenance of the figures used
    and the age of the oldest (``undated`` when one has no date)."""
    data = _table_data(quotes)
    rows = data.get("quotes") or []
    cheapest = quote_backend(data.get("cheapest") or {})
    left_out = data.get("left_out") or {}
    table = [list(TABLE_HEADER), *(_table_row(q, cheapest, left_out) for q in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(TABLE_HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for title in ("warnings", "notes"):
        items = [f"{quote_backend(q)}: {w}" for q in rows for w in q.get(title) or []]
        if items:
            lines += ["", f"{title}:", *(f"  - {w}" for w in items)]
    if data.get("cheapest_caveat"):
        lines += ["", f"caveat: {data['cheapest_caveat']}"]
    if left_out:
        lines += ["", "left out of the cheapest:", *(f"  - {name}: {why}" for name, why in left_out.items())]
    return "\n".join(lines)


def _table_data(
    quotes: QuoteTable | Mapping[str, Any] | Sequence[Quote | Mapping[str, Any]],
) -> dict[str, Any]:
    if isinstance(quotes, QuoteTable):
        return quotes.to_dict()
    if isinstance(quotes, Mapping):
        return dict(quotes)
    return {"quotes": [q.to_dict() if isinstance(q, Quote) else dict(q) for q in quotes], "cheapest": None}


def _table_row(q: Mapping[str, Any], cheapest: str | None, left_out: Mapping[str, str]) -> list[str]:
    """One quote's cells of the plain-text table."""
    instance = q.get("instance_type") or "-"
    if q.get("accelerator_type"):
        instance = f"{instance} + {q['accelerator_type']}"
    if q.get("instance_count", 1) > 1:
        instance = f"{q['instance_count']} x {instance}"
    currency = q.get("currency") or ""
    return [
        str(quote_backend(q)),
        q.get("region") or "-",
        instance if q.get("available") else "not available",
        q.get("accelerator") or "-",
        q.get("pricing") or "-",
        f"{q['hourly_price']:.4f} {currency}" if q.get("hourly_price") is not None else "-",
        f"{q.get('hours', 0):g}",
        f"{q['total']:.2f} {currency}" if q.get("total") is not None else "-",
        spot_column(q),
        price_basis(q) if q.get("available") else "-",
        ", ".join(_table_notes(q, cheapest, left_out)),
    ]


def _table_notes(q: Mapping[str, Any], cheapest: str | None, left_out: Mapping[str, str]) -> list[str]:
    notes = []
    if cheapest is not None and quote_backend(q) == cheapest:
        weak = q.get("provenance") in ("derived", "unverified")
        notes.append(f"CHEAPEST ({q['provenance']} figure)" if weak else "CHEAPEST")
    if q.get("retired"):
        notes.append("retired")
    if quote_backend(q) in left_out and q.get("available"):
        notes.append("left out")
    if q.get("warnings"):
        notes.append(f"{len(q['warnings'])} warning(s)")
    if q.get("notes"):
        notes.append(f"{len(q['notes'])} note(s)")
    return notes


def spot_column(quote: Mapping[str, Any]) -> str:
    """What spot saves: on a spot quote, the saving; on an on-demand one, ``if spot: ...``; else ``-``."""
    if quote.get("spot_saving") is None:
        return "-"
    saving = f"{quote['spot_saving']:.2f} ({quote['spot_saving_pct']:.0f}%)"
    return saving if quote.get("pricing") == "spot" else f"if spot: {saving}"


def price_basis(quote: Mapping[str, Any]) -> str:
    """``observed, 68 d`` / ``derived, undated`` / ``your settings``: how sure and how old a quote's figures are."""
    provenance = quote.get("provenance") or "unverified"
    if provenance == "settings":
        return "your settings"
    age = quote.get("age_days")
    return f"{provenance}, {age} d" if age is not None else f"{provenance}, undated"


def quote_backend(quote: Mapping[str, Any]) -> str | None:
    """A quote's backend; quotes stored by earlier releases name it ``provider``."""
    return quote.get("backend") or quote.get("provider")
