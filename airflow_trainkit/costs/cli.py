"""``trainkit costs ...``: compare what a training job costs, refresh the price catalog, show it."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from airflow_trainkit.vocabulary import deprecated

if TYPE_CHECKING:
    import argparse

# Which backends exist is read from the pricing registry when a command runs, never listed here.


def register(subparsers: Any) -> None:
    """Add ``trainkit costs compare | refresh | catalog`` to the ``trainkit`` command line."""
    parser = subparsers.add_parser("costs", help="training cost quotes and the price catalog")
    commands = parser.add_subparsers(dest="costs_command", required=True)

    compare = commands.add_parser("compare", help="quote one training job on every priced backend")
    compare.add_argument(
        "--accelerator", help="GPUs per instance, e.g. T4:1, V100:1, A100:8, gpu:1; cpu (or none) for no GPU"
    )
    compare.add_argument(
        "--instance-type",
        nargs="+",
        metavar="TYPE",
        help="an explicit instance type for every backend, or BACKEND=TYPE pairs (e.g. "
        "sagemaker=ml.m5.2xlarge vertex_ai=n1-standard-8), instead of (or with) --accelerator",
    )
    compare.add_argument(
        "--vcpus", help="a CPU-only job: the vCPUs it needs (the cheapest machine with at least that many)"
    )
    compare.add_argument("--memory-gib", help="a CPU-only job: the memory it needs, in GiB")
    compare.add_argument(
        "--region",
        nargs="+",
        metavar="REGION",
        help="where to price: a geography (us, eu, asia; each backend maps it to one of its regions) "
        "and/or BACKEND=REGION pairs (default: each backend's default region)",
    )
    compare.add_argument(
        "--region-from-connections",
        action="store_true",
        help="read each backend's region from its Airflow connection (aws_default, google_cloud_default)",
    )
    compare.add_argument("--instance-count", type=int, default=1, help="instances (default 1)")
    compare.add_argument("--hours", help="expected hours of training")
    compare.add_argument("--epochs", help="expected epochs (with --seconds-per-epoch)")
    compare.add_argument("--seconds-per-epoch", help="seconds one epoch takes")
    compare.add_argument("--spot", action="store_true", help="price spot / low-priority capacity")
    compare.add_argument(
        "--backends", nargs="+", metavar="BACKEND", help="backends to quote (default: every priced one)"
    )
    compare.add_argument("--providers", nargs="+", metavar="BACKEND", help="deprecated: use --backends")
    compare.add_argument(
        "--pick-from-backends",
        nargs="+",
        metavar="BACKEND",
        help="backends the cheapest is chosen from (only trainable ones that accept the job are picked)",
    )
    compare.add_argument(
        "--pick-from", nargs="+", metavar="BACKEND", help="deprecated: use --pick-from-backends"
    )
    compare.add_argument("--catalog", help="a price catalog CSV to use instead of the one in force")
    compare.add_argument(
        "--onprem", help="an on-prem cost settings CSV (default: <trainkit home>/costs/onprem.csv)"
    )
    compare.add_argument(
        "--max-price-age",
        metavar="DURATION",
        help="flag prices older than this: 90d, 12w, ... (default $TRAINKIT_PRICE_MAX_AGE or 90d)",
    )
    compare.add_argument("--max-age-days", type=int, help="deprecated: use --max-price-age (e.g. 90d)")
    compare.add_argument("--report", metavar="URI", help="also write the report (CSV, Markdown, chart) here")
    compare.add_argument("--json", action="store_true", help="print the quotes as JSON instead of a table")
    compare.set_defaults(func=_compare)

    refresh = commands.add_parser("refresh", help="fetch current prices from the public price APIs")
    refresh.add_argument(
        "--backends",
        nargs="+",
        metavar="BACKEND",
        help="backends whose rows to refresh (default: every one that declares a price API)",
    )
    refresh.add_argument("--providers", nargs="+", metavar="BACKEND", help="deprecated: use --backends")
    refresh.add_argument(
        "--output", help="catalog file to write (default: <trainkit home>/costs/price_catalog.csv)"
    )
    refresh.set_defaults(func=_refresh)

    show = commands.add_parser("catalog", help="show which catalog is in force and its rows")
    show.add_argument("--backend", help="only this backend's rows")
    show.add_argument("--region", help="only the rows of this region")
    show.add_argument("--notes", action="store_true", help="also print each row's source and note")
    show.add_argument("--provider", help="deprecated: use --backend")
    show.set_defaults(func=_show)


def _renamed(args: argparse.Namespace, old: str, new: str) -> Any:
    """The value of ``--new``, or of the deprecated ``--old`` with a warning; both is an error."""
    old_value, new_value = getattr(args, old), getattr(args, new)
    if old_value is None:
        return new_value
    old, new = old.replace("_", "-"), new.replace("_", "-")
    if new_value is not None:
        raise ValueError(f"--{new}: give --{new} or the deprecated --{old}, not both")
    _deprecated_option(old, new)
    return old_value


def _deprecated_option(old: str, new: str) -> None:
    """Warn (and tell the person at the terminal) that ``--old`` is deprecated in favour of ``--new``."""
    message = f"--{old} is deprecated and goes in the next release; use --{new}"
    deprecated(message, stacklevel=4)
    print(f"trainkit: {message}", file=sys.stderr)


def _max_price_age(args: argparse.Namespace) -> str | None:
    """``--max-price-age``, or the deprecated ``--max-age-days`` as a duration in days."""
    if args.max_age_days is None:
        return args.max_price_age
    if args.max_price_age is not None:
        raise ValueError("--max-price-age: give --max-price-age or the deprecated --max-age-days, not both")
    _deprecated_option("max-age-days", "max-price-age")
    return f"{args.max_age_days}d"


def _compare(args: argparse.Namespace) -> int:
    from airflow_trainkit.costs.catalog import load_catalog
    from airflow_trainkit.costs.quotes import format_quote_table, quote_job
    from airflow_trainkit.costs.regions import parse_region_args
    from airflow_trainkit.training.pricing import pricing_registry

    registry = pricing_registry()
    regions = parse_region_args(args.region)
    pick_from = _renamed(args, "pick_from", "pick_from_backends")
    if pick_from is not None:  # a name that is not installed fails before anything is read
        registry.check_names("pick_from_backends", pick_from)
    backends = _renamed(args, "providers", "backends")
    if backends is not None:
        registry.check_names("backends", backends)
    spec: dict[str, Any] = {
        "command": ["quote"],
        "accelerator": args.accelerator,
        "instance_count": args.instance_count,
        "spot": args.spot,
        "allow_spot_without_checkpoint": True,  # a quote runs nothing, so needs no checkpoint
    }
    if args.instance_type:
        spec["instance_type"] = _instance_types(args.instance_type, registry)
    catalog = load_catalog(args.catalog, onprem=args.onprem)
    table = quote_job(
        spec,
        hours=args.hours,
        epochs=args.epochs,
        seconds_per_epoch=args.seconds_per_epoch,
        backends=backends,
        pick_from_backends=pick_from,
        catalog=catalog,
        max_price_age=_max_price_age(args),
        registry=registry,
        regions=regions,
        region_conn_ids=True if args.region_from_connections else None,
        vcpus=args.vcpus,
        memory_gib=args.memory_gib,
    )
    if args.json:
        print(json.dumps(table.to_dict(), indent=1))
    else:
        print(format_quote_table(table))
        if table.cheapest is not None:
            cheapest = table.cheapest
            basis = f" ({cheapest.provenance} figure, see caveat)" if table.cheapest_caveat else ""
            print(
                f"\ncheapest: {cheapest.backend} {cheapest.instance_type} in {cheapest.region}: "
                f"{cheapest.total:.2f} {cheapest.currency}{basis}"
            )
        else:
            print("\ncheapest: none of the quoted backends can train this job here (see 'left out')")
        print(f"catalog: {catalog.path}")
    if args.report:
        from airflow_trainkit.costs.report import write_report

        print(f"report: {write_report(table, args.report)}")
    return 0


def _instance_types(values: list[str], registry: Any) -> str | dict[str, str]:
    """``--instance-type`` words: one name for every backend, or ``BACKEND=TYPE`` pairs."""
    pairs = [v.partition("=") for v in values]
    if len(values) == 1 and not pairs[0][1]:
        return values[0]
    if any(not sep or not name or not value for name, sep, value in pairs):
        raise ValueError(
            f"--instance-type: give one type for every backend, or BACKEND=TYPE pairs, got {' '.join(values)!r}"
        )
    registry.check_names("--instance-type", [name for name, _, _ in pairs])
    return {name: value for name, _, value in pairs}


def _refresh(args: argparse.Namespace) -> int:
    from airflow_trainkit.costs.refresh import refresh_catalog

    backends = _renamed(args, "providers", "backends")
    summary = refresh_catalog(backends, path=args.output)
    for item in summary["backends"]:
        kept = f"; kept old price for {', '.join(item['kept'])}" if item["kept"] else ""
        print(f"{item['backend']}: {len(item['updated'])} rows updated from {item['source']}{kept}")
    print(f"catalog written: {summary['path']}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from airflow_trainkit.costs.catalog import load_catalog
    from airflow_trainkit.training.pricing import pricing_registry

    key = None
    backend = _renamed(args, "provider", "backend")
    if backend is not None:
        registry = pricing_registry()
        registry.check_names("backend", [backend])
        entry = registry.get(backend)
        key = entry.pricing.catalog_key if entry else backend
    catalog = load_catalog()
    print(f"catalog: {catalog.path}")
    for row in catalog.rows:
        if key is not None and row.backend != key:
            continue
        if args.region and row.region != args.region:
            continue
        gpus = f"{row.gpu_model}:{row.gpu_count}" if row.gpu_model else "-"
        spot = f"{row.spot_per_hour:g}" if row.spot_per_hour is not None else "-"
        when = f"as of {row.as_of}" if row.as_of else "undated"
        print(
            f"{row.backend:10} {row.region:12} {row.instance_type:28} {gpus:12} "
            f"{row.on_demand_per_hour:>10g} {spot:>10} {row.currency} {row.provenance:10} {when}"
        )
        if args.notes:
            print(f"    source: {row.source}")
            if row.note:
                print(f"    note: {row.note}")
    return 0
