"""The cost comparison report: the quote table as CSV and Markdown, and a bar chart of cost per backend."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from airflow_trainkit.costs.catalog import DAY, age_text
from airflow_trainkit.costs.quotes import (
    QuoteTable,
    format_quote_table,
    price_basis,
    quote_backend,
    spot_column,
)

CSV_COLUMNS = (
    "backend",
    "available",
    "service",
    "region",
    "region_from",
    "instance_type",
    "accelerator_type",
    "accelerator",
    "instance_count",
    "hours",
    "pricing",
    "on_demand_hourly",
    "spot_hourly",
    "hourly_price",
    "total",
    "on_demand_total",
    "spot_total",
    "spot_saving",
    "spot_saving_pct",
    "currency",
    "retired",
    "provenance",
    "as_of",
    "age_days",
    "price_as_of",
    "price_provenance",
    "price_source",
    "warnings",
    "notes",
    "left_out",
    "provider",  # deprecated: repeats "backend", for one release
)
LIMITS = (
    "List prices only: no taxes, discounts, commitments, storage, data transfer (egress) or "
    "provisioning time. Shipped prices are a snapshot, each with its source, provenance and date "
    "(docs/costs.md); refresh with `trainkit costs refresh`."
)


def _as_dict(table: QuoteTable | Mapping[str, Any]) -> dict[str, Any]:
    return table.to_dict() if isinstance(table, QuoteTable) else dict(table)


def job_words(request: Mapping[str, Any]) -> str:
    """What was quoted, in a few words: the GPUs, the instance type, or the CPU size."""
    if request.get("accelerator"):
        return str(request["accelerator"])
    if request.get("instance_type"):
        return str(request["instance_type"])
    size = [
        f"{request['vcpus']:g} vCPUs" if request.get("vcpus") else "",
        f"{request['memory_gib']:g} GiB" if request.get("memory_gib") else "",
    ]
    return "CPU only (" + (", ".join(p for p in size if p) or "any size") + ")"


def quotes_csv(table: QuoteTable | Mapping[str, Any]) -> str:
    """One CSV row per backend, with the provenance of the prices used."""
    data = _as_dict(table)
    left_out = data.get("left_out") or {}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for quote in data["quotes"]:
        rows = quote.get("price_rows") or []
        name = quote_backend(quote)
        writer.writerow(
            {
                **{k: "" if v is None else v for k, v in quote.items()},
                "backend": name,
                "provider": name,
                "price_as_of": "; ".join(r.get("as_of") or "undated" for r in rows),
                "price_provenance": "; ".join(r.get("provenance") or "unverified" for r in rows),
                "price_source": "; ".join(r["source"] for r in rows),
                "warnings": " | ".join(quote.get("warnings") or []),
                "notes": " | ".join(quote.get("notes") or []),
                "left_out": left_out.get(name, ""),
            }
        )
    return out.getvalue()


def _stale_after(request: Mapping[str, Any]) -> str:
    """The price age limit of a request (stored by an earlier release: only ``max_age_days``)."""
    seconds = request.get("max_price_age_seconds")
    if seconds is None and request.get("max_age_days") is not None:
        seconds = float(request["max_age_days"]) * DAY
    return age_text(seconds) if seconds is not None else "-"


def quotes_markdown(table: QuoteTable | Mapping[str, Any]) -> str:
    """A Markdown report: the request, one row per backend, the cheapest, why others were left out,
    every warning, the limits."""
    data = _as_dict(table)
    request = data.get("request") or {}
    lines = ["# Training cost comparison", ""]
    what = job_words(request)
    lines.append(
        f"Job: {request.get('instance_count', 1)} x {what}, {request.get('hours', 0):g} h, "
        f"{'spot' if request.get('spot') else 'on-demand'}; prices judged on {request.get('today')} "
        f"(stale after {_stale_after(request)}); catalog: `{data.get('catalog')}`."
    )
    lines += [
        "",
        "| backend | region | instance | GPUs | pricing | per hour | total | on-demand total | spot saving "
        "| price basis |",
    ]
    lines.append("|---|---|---|---|---|---:|---:|---:|---:|---|")
    for q in data["quotes"]:
        if not q.get("available"):
            lines.append(
                f"| {quote_backend(q)} | {q.get('region') or '-'} | not available | - | - | - | - | - | - | - |"
            )
            continue
        instance = q["instance_type"] + (f" + {q['accelerator_type']}" if q.get("accelerator_type") else "")
        currency = q.get("currency") or ""
        lines.append(
            f"| {quote_backend(q)} | {q.get('region') or '-'} | {instance} | {q.get('accelerator') or '-'} | "
            f"{q['pricing']} | {q['hourly_price']:.4f} {currency} | **{q['total']:.2f} {currency}** | "
            f"{q['on_demand_total']:.2f} | {spot_column(q)} | {price_basis(q)} |"
        )
    cheapest = data.get("cheapest")
    lines.append("")
    if cheapest:
        lines.append(
            f"Cheapest: **{quote_backend(cheapest)}** ({cheapest['instance_type']}), "
            f"{cheapest['total']:.2f} {cheapest['currency']}."
        )
    else:
        lines.append(
            "No backend can be recommended: none that can train here is available with a current size."
        )
    if data.get("cheapest_caveat"):
        lines += ["", f"**Caveat:** {data['cheapest_caveat']}."]
    left_out = data.get("left_out") or {}
    if left_out:
        lines += ["", "## Left out of the cheapest", ""] + [f"- {n}: {r}" for n, r in left_out.items()]
    warnings = data.get("warnings") or []
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    notes = [f"{quote_backend(q)}: {n}" for q in data["quotes"] for n in q.get("notes") or []]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "## Where the prices come from", ""]
    for q in data["quotes"]:
        for row in q.get("price_rows") or []:
            when = f"as of {row['as_of']}" if row.get("as_of") else "undated"
            note = f" ({row['note']})" if row.get("note") else ""
            lines.append(
                f"- {row.get('backend') or row.get('provider')} {row['instance_type']} ({row['region']}): "
                f"{row.get('provenance') or 'unverified'}, {when}, {row['source']}{note}"
            )
    lines += ["", f"_{LIMITS}_", ""]
    return "\n".join(lines)


def quotes_chart_png(table: QuoteTable | Mapping[str, Any]) -> bytes:
    """A bar chart of the job's total per backend, on-demand next to spot."""
    import matplotlib  # heavy (the costs extra): only when a report is drawn

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    data = _as_dict(table)
    quotes = [q for q in data["quotes"] if q.get("available")]
    cheapest = quote_backend(data.get("cheapest") or {})
    names = [
        str(quote_backend(q))
        + ("\n(retired size)" if q.get("retired") else "")
        + ("\n(cheapest)" if cheapest is not None and quote_backend(q) == cheapest else "")
        for q in quotes
    ]
    on_demand = [q.get("on_demand_total") or 0.0 for q in quotes]
    spot = [q.get("spot_total") or 0.0 for q in quotes]
    currency = quotes[0].get("currency") if quotes else ""
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        positions = list(range(len(names)))
        width = 0.38
        axes.bar([p - width / 2 for p in positions], on_demand, width, label="on-demand", color="#4c72b0")
        axes.bar(
            [p + width / 2 for p in positions], spot, width, label="spot / low-priority", color="#55a868"
        )
        for p, q in zip(positions, quotes, strict=True):
            if q.get("spot_total") is None:
                axes.annotate("no spot", (p + width / 2, 0), ha="center", va="bottom", fontsize=8)
        axes.set_xticks(positions)
        axes.set_xticklabels(names)
        axes.set_ylabel(f"job total ({currency})")
        request = data.get("request") or {}
        what = job_words(request)
        axes.set_title(f"{what} for {request.get('hours', 0):g} h: cost per backend")
        axes.legend()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def report_files(table: QuoteTable | Mapping[str, Any]) -> dict[str, bytes | str]:
    """Every file of the report, by name."""
    data = _as_dict(table)
    chart = quotes_chart_png(data)
    return {
        "quotes.csv": quotes_csv(data),
        "report.md": quotes_markdown(data),
        "quotes.txt": format_quote_table(data) + "\n",
        "quotes.json": json.dumps(data, indent=1, default=str),
        "cost_per_backend.png": chart,
        "cost_per_provider.png": chart,  # deprecated name of the same chart, written for one release
    }


def write_report(table: QuoteTable | Mapping[str, Any], uri: str) -> str:
    """Write the report folder at ``uri`` whole or not at all; returns the URI."""
    from airflow_trainkit.storage import write_folder_atomic

    return write_folder_atomic(uri, report_files(table))
