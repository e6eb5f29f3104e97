"""The shipped catalog against the reference figures: every figure a source gives is in the catalog
within 1 %, with the provenance that source supports, and what no source gives says so."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_trainkit.costs.catalog import load_catalog

if TYPE_CHECKING:
    from airflow_trainkit.costs.catalog import PriceRow

HERE = Path(__file__).parent
REPO = HERE.parents[1]
REFERENCE = HERE / "reference" / "reference_prices.csv"
SHARED = REPO.parent / "shared" / "reference" / "prices"  # the project's reference folder, when present
# Rows no cited source gives a figure for (the reference folder lists them as not verified).
UNVERIFIED = {
    ("vertex_ai", "us-central1", "g2-standard-8"),
    ("vertex_ai", "us-central1", "g2-standard-48"),
    ("vertex_ai", "us-central1", "a3-highgpu-8g"),
    ("vertex_ai", "us-central1", "NVIDIA_L4"),
    ("vertex_ai", "us-central1", "NVIDIA_H100_80GB"),
}


def reference() -> list[dict[str, str]]:
    text = "".join(
        line for line in REFERENCE.read_text().splitlines(keepends=True) if not line.startswith("#")
    )
    return list(csv.DictReader(io.StringIO(text)))


def shipped() -> dict[tuple[str, str, str], PriceRow]:
    return {(r.backend, r.region, r.instance_type): r for r in load_catalog(onprem=[]).rows}


@pytest.mark.parametrize(
    "entry", reference(), ids=lambda e: f"{e['provider']}-{e['region']}-{e['instance_type']}-{e['price']}"
)
def test_each_reference_figure_is_in_the_catalog_within_one_percent(entry: dict[str, str]) -> None:
    row = shipped()[(entry["provider"], entry["region"], entry["instance_type"])]
    value = row.on_demand_per_hour if entry["price"] == "on_demand" else row.spot_per_hour
    assert value == pytest.approx(float(entry["usd_per_hour"]), rel=0.01)
    assert row.provenance == entry["provenance"]


def test_every_catalog_figure_is_in_the_reference_list_or_declared_unverified() -> None:
    listed = {(e["provider"], e["region"], e["instance_type"], e["price"]) for e in reference()}
    for key, row in shipped().items():
        if row.provenance == "unverified":
            assert key in UNVERIFIED, key
            continue
        assert key not in UNVERIFIED, key
        assert (*key, "on_demand") in listed, key
        if row.spot_per_hour is not None:
            assert (*key, "spot") in listed, key
        else:
            assert (*key, "spot") not in listed, key


def test_every_row_says_where_its_figure_comes_from() -> None:
    for row in load_catalog(onprem=[]).rows:
        assert row.source and row.currency == "USD"
        assert row.provenance in ("published", "observed", "derived", "unverified")
        if row.provenance in ("derived", "unverified") or row.as_of is None:
            assert row.note, (row.key, "a derived, unverified or undated figure says how, or which snapshot")


@pytest.mark.parametrize(
    "entry", reference(), ids=lambda e: f"{e['provider']}-{e['instance_type']}-{e['price']}"
)
def test_each_reference_figure_is_written_in_the_file_it_cites(entry: dict[str, str]) -> None:
    name = entry["source_file"]
    if name.startswith("../shared/"):
        path = SHARED / Path(name).name
        if not path.exists():
            pytest.skip(f"the reference folder is not on this machine ({path})")
    else:
        path = REPO / name
    assert entry["figure"] in path.read_text(), (entry["figure"], path)
