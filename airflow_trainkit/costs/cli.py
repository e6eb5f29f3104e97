"""``trainkit costs ...``: compare what a training job costs, refresh the price catalog, show it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_trainkit.costs.catalog import PROVIDERS

if TYPE_CHECKING:
    import argparse


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("costs", help="training cost quotes and the price catalog")
    commands = parser.add_subparsers(dest="costs_command", required=True)

    compare = commands.add_parser("compare", help="quote one training job on every provider")
    compare.add_argument("--accelerator", help="GPUs per instance, e.g. T4:1, V100:1, A100:8, gpu:1")
    compare.add_argument(
        "--instance-type", help="an explicit instance type instead of (or with) --accelerator"
    )
    compare.add_argument("--instance-count", type=int, default=1, help="instances (default 1)")
    compare.add_argument("--hours", help="expected hours of training")
    compare.add_argument("--epochs", help="expected epochs (with --seconds-per-epoch)")
    compare.add_argument("--seconds-per-epoch", help="seconds one epoch takes")
    compare.add_argument("--spot", action="store_true", help="price spot / low-priority capacity")
    compare.add_argument("--providers", nargs="+", choices=PROVIDERS, help="providers to quote (default all)")
    compare.add_argument(
        "--pick-from", nargs="+", choices=PROVIDERS, help="providers the cheapest is chosen from"
    )
    compare.add_argument("--catalog", help="a price catalog CSV to use instead of the one in force")
    compare.add_argument(
        "--onprem", help="an on-prem cost settings CSV (default: <trainkit home>/costs/onprem.csv)"
    )
    compare.add_argument("--max-age-days", type=int, help="flag prices older than this (default 90)")
    compare.add_argument("--report", metavar="URI", help="also write the report (CSV, Markdown, chart) here")
    compare.add_argument("--json", action="store_true", help="print the quotes as JSON instead of a table")
    compare.set_defaults(func=_compare)

    refresh = commands.add_parser("refresh", help="fetch current prices from the public price APIs")
    refresh.add_argument(
        "--providers", nargs="+", default=["sagemaker", "azure_ml", "vertex_ai"], choices=PROVIDERS[:3]
    )
    refresh.add_argument(
        "--output", help="catalog file to write (default: <trainkit home>/costs/price_catalog.csv)"
    )
    refresh.set_defaults(func=_refresh)

    show = commands.add_parser("catalog", help="show which catalog is in force and its rows")
    show.add_argument("--provider", choices=PROVIDERS)
    show.set_defaults(func=_show)


def _compare(args: argparse.Namespace) -> int:
    from airflow_trainkit.costs.catalog import load_catalog
    from airflow_trainkit.costs.quotes import format_quote_table, quote_job

    spec: dict[str, Any] = {
        "command": ["quote"],
        "accelerator": args.accelerator,
        "instance_count": args.instance_count,
        "spot": args.spot,
        "allow_spot_without_checkpoint": True,  # a quote runs nothing, so needs no checkpoint
    }
    if args.instance_type:
        spec["instance_type"] = args.instance_type
    catalog = load_catalog(args.catalog, onprem=args.onprem)
    table = quote_job(
        spec,
        hours=args.hours,
        epochs=args.epochs,
        seconds_per_epoch=args.seconds_per_epoch,
        providers=args.providers,
        pick_from=args.pick_from,
        catalog=catalog,
        max_age=args.max_age_days,
    )
    if args.json:
        print(json.dumps(table.to_dict(), indent=1))
    else:
        print(format_quote_table(table))
        if table.cheapest is not None:
            cheapest = table.cheapest
            print(
                f"\ncheapest: {cheapest.provider} {cheapest.instance_type}: {cheapest.total:.2f} {cheapest.currency}"
            )
        print(f"catalog: {catalog.path}")
    if args.report:
        from airflow_trainkit.costs.report import write_report

        print(f"report: {write_report(table, args.report)}")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from airflow_trainkit.costs.refresh import refresh_catalog

    summary = refresh_catalog(args.providers, path=args.output)
    for provider in summary["providers"]:
        kept = f"; kept old price for {', '.join(provider['kept'])}" if provider["kept"] else ""
        print(
            f"{provider['provider']}: {len(provider['updated'])} rows updated from {provider['source']}{kept}"
        )
    print(f"catalog written: {summary['path']}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from airflow_trainkit.costs.catalog import load_catalog

    catalog = load_catalog()
    print(f"catalog: {catalog.path}")
    for row in catalog.rows:
        if args.provider and row.provider != args.provider:
            continue
        gpus = f"{row.gpu_model}:{row.gpu_count}" if row.gpu_model else "-"
        spot = f"{row.spot_per_hour:g}" if row.spot_per_hour is not None else "-"
        print(
            f"{row.provider:10} {row.region:12} {row.instance_type:28} {gpus:12} "
            f"{row.on_demand_per_hour:>10g} {spot:>10} {row.currency} as of {row.as_of}"
        )
    return 0
