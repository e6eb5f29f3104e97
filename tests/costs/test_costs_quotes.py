from __future__ import annotations

import csv
from datetime import date
from importlib import resources
from typing import TYPE_CHECKING

import pytest
from costs_testing import RACK_T4

from airflow_trainkit.costs.catalog import load_catalog, max_age_days, parse_catalog, write_catalog
from airflow_trainkit.costs.onprem import load_onprem_rows
from airflow_trainkit.costs.quotes import expected_hours, format_quote_table, quote_job
from airflow_trainkit.training.instances import instance_table
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

if TYPE_CHECKING:
    from pathlib import Path

FRESH = date(2026, 10, 1)  # within 90 days of the dated figures of the shipped catalog
ONPREM = [
    {**RACK_T4, "yearly_other_costs": 1000},
    {
        "name": "dgx-a100",
        "gpu_model": "A100",
        "gpu_count": 8,
        "purchase_price": 200000,
        "amortization_years": 4,
        "power_watts": 6500,
        "electricity_per_kwh": 0.12,
        "utilization": 0.7,
    },
    {
        "name": "v100-box",
        "gpu_model": "V100",
        "gpu_count": 2,
        "purchase_price": 20000,
        "amortization_years": 3,
        "power_watts": 700,
        "electricity_per_kwh": 0.15,
        "utilization": 0.6,
    },
]
# (backend, instance type) -> (on-demand, spot) per hour in each backend's default region, read by
# hand from the shipped CSV (where each comes from: tests/costs/reference/reference_prices.csv).
SHIPPED = {
    ("sagemaker", "ml.g4dn.xlarge"): (0.736, None),
    ("sagemaker", "ml.g5.xlarge"): (1.408, None),
    ("sagemaker", "ml.g6.xlarge"): (1.127, None),
    ("sagemaker", "ml.p3.2xlarge"): (3.825, None),
    ("sagemaker", "ml.p4d.24xlarge"): (25.251, None),
    ("vertex_ai", "n1-standard-8"): (0.4369977, None),
    ("vertex_ai", "NVIDIA_TESLA_T4"): (0.4025, None),
    ("vertex_ai", "NVIDIA_TESLA_V100"): (2.852, None),
    ("vertex_ai", "g2-standard-8"): (0.3545, None),
    ("vertex_ai", "NVIDIA_L4"): (0.644, None),
    ("vertex_ai", "a2-highgpu-8g"): (6.803193, None),
    ("vertex_ai", "NVIDIA_TESLA_A100"): (3.373985, None),
    ("azure_ml", "Standard_NC4as_T4_v3"): (0.526, 0.062699),
    ("azure_ml", "Standard_NC6s_v3"): (3.06, 0.3978),
    ("azure_ml", "Standard_ND96asr_v4"): (27.197, 2.99167),
}


def onprem_hourly(purchase, years, watts, kwh, util, other=0.0):
    return (purchase / years + other) / (8760 * util) + watts / 1000 * kwh


def spec(accelerator: str, **extra):
    return {"command": ["python", "train.py"], "accelerator": accelerator, **extra}


def by_backend(table):
    return {q.backend: q for q in table.quotes}


@pytest.mark.parametrize(
    ("accelerator", "expected"),
    [
        (
            "T4:1",
            {
                "sagemaker": ("ml.g4dn.xlarge",),
                "vertex_ai": ("n1-standard-8", "NVIDIA_TESLA_T4"),
                "azure_ml": ("Standard_NC4as_T4_v3",),
            },
        ),
        ("A10G:1", {"sagemaker": ("ml.g5.xlarge",)}),
        ("L4:1", {"sagemaker": ("ml.g6.xlarge",), "vertex_ai": ("g2-standard-8", "NVIDIA_L4")}),
        (
            "V100:1",
            {
                "sagemaker": ("ml.p3.2xlarge",),
                "vertex_ai": ("n1-standard-8", "NVIDIA_TESLA_V100"),
                "azure_ml": ("Standard_NC6s_v3",),
            },
        ),
        (
            "A100:8",
            {
                "sagemaker": ("ml.p4d.24xlarge",),
                "vertex_ai": ("a2-highgpu-8g", "NVIDIA_TESLA_A100"),
                "azure_ml": ("Standard_ND96asr_v4",),
            },
        ),
    ],
)
@pytest.mark.parametrize("spot", [False, True])
def test_quotes_match_catalog_arithmetic(trainkit_home, accelerator, expected, spot) -> None:
    hours = 3.5
    count = int(accelerator.split(":")[1])
    table = quote_job(
        spec(accelerator, spot=spot, allow_spot_without_checkpoint=True),
        hours=hours,
        onprem=ONPREM,
        today=FRESH,
    )
    quotes = by_backend(table)
    for provider in ("sagemaker", "vertex_ai", "azure_ml"):
        quote = quotes[provider]
        if provider not in expected:
            assert not quote.available and quote.total is None
            assert any("no such GPU" in w for w in quote.warnings), quote.warnings
            continue
        names = expected[provider]
        od = SHIPPED[(provider, names[0])][0] + sum(SHIPPED[(provider, n)][0] * count for n in names[1:])
        spot_parts = [SHIPPED[(provider, names[0])][1]] + [SHIPPED[(provider, n)][1] for n in names[1:]]
        sp = None
        if all(p is not None for p in spot_parts):
            sp = spot_parts[0] + sum(p * count for p in spot_parts[1:])
        assert quote.instance_type == names[0]
        assert quote.on_demand_total == pytest.approx(od * hours, abs=1e-3)
        if spot and sp is not None:
            assert quote.pricing == "spot"
            assert quote.total == pytest.approx(sp * hours, abs=1e-3)
            assert quote.spot_saving == pytest.approx((od - sp) * hours, abs=1e-3)
        else:
            assert quote.pricing == "on_demand"
            assert quote.total == pytest.approx(od * hours, abs=1e-3)
            if spot and provider == "sagemaker":  # managed spot: fewer seconds at the on-demand price
                assert any("publishes no spot price" in n for n in quote.notes)
            elif spot:
                assert any(w.startswith("no spot price") for w in quote.warnings)
        assert [r["instance_type"] for r in quote.price_rows] == list(names)
        assert (
            quote.region
            == {"sagemaker": "us-east-1", "vertex_ai": "us-central1", "azure_ml": "eastus"}[provider]
        )
        assert not any("stale" in w for w in quote.warnings)
    onprem = quotes["onprem"]
    model = accelerator.split(":")[0]
    host = {"T4": ONPREM[0], "A100": ONPREM[1], "V100": ONPREM[2]}.get(model)
    if host is None:
        assert not onprem.available and "no such GPU" in onprem.warnings[0]
    else:
        per_gpu = (
            onprem_hourly(
                host["purchase_price"],
                host["amortization_years"],
                host["power_watts"],
                host["electricity_per_kwh"],
                host["utilization"],
                host.get("yearly_other_costs", 0),
            )
            / host["gpu_count"]
        )
        assert onprem.total == pytest.approx(per_gpu * count * hours, abs=1e-3)
        assert onprem.instance_type == host["name"]
    # The cheapest is chosen among backends that can train the job here: Azure ML is left out only
    # where it has no such GPU or the size is retired, and the on-prem backend refuses spot.
    azure_reason = table.left_out.get("azure_ml")
    if "azure_ml" not in expected:
        assert azure_reason.startswith(f"spec.accelerator: no azure_ml instance with {accelerator}")
    elif quotes["azure_ml"].retired:
        assert azure_reason == f"retired size: {expected['azure_ml'][0]}"
    else:
        assert azure_reason is None
    if spot:
        assert table.left_out["onprem"].startswith("spec.spot: the onprem backend has no spot capacity")
    candidates = [q for q in table.quotes if q.backend not in table.left_out]
    assert candidates and all(q.available and not q.retired for q in candidates)
    assert table.cheapest is not None
    assert table.cheapest.total == min(q.total for q in candidates)


def test_onprem_hourly_cost_formula() -> None:
    row = load_onprem_rows(ONPREM[:1])[0]
    assert row.on_demand_per_hour == pytest.approx(5000 / 4380 + 0.08, abs=1e-6)
    assert row.source.startswith("onprem settings argument: purchase_price=12000")


def test_a_rented_machine_is_costed_at_its_hourly_price(trainkit_home, tmp_path: Path) -> None:
    # A Ray cluster on cloud VMs: each node type declares the VM's hourly price, not a purchase.
    def nodes(price: str) -> str:
        path = tmp_path / "nodes.csv"
        path.write_text(f"name,gpu_model,gpu_count,hourly_price,currency\ng4dn-xlarge,T4,1,{price},USD\n")
        return str(path)

    (row,) = load_onprem_rows(nodes("0.526"))
    assert row.on_demand_per_hour == 0.526 and row.source.endswith("hourly_price=0.526")
    onprem = by_backend(quote_job(spec("T4:1"), hours=3, onprem=nodes("0.526"), today=FRESH))["onprem"]
    assert onprem.total == pytest.approx(3 * 0.526)
    with pytest.raises(
        ValueError, match=r"row 2: hourly_price: must be a finite number of at least 0, got '-1'"
    ):
        load_onprem_rows(nodes("-1"))


def test_stale_and_undated_prices_flagged_in_every_quote_that_uses_them(trainkit_home) -> None:
    table = quote_job(spec("T4:1"), hours=1, onprem=ONPREM, today=date(2027, 3, 1), max_price_age="90d")
    sagemaker = by_backend(table)["sagemaker"]
    assert any(
        w.startswith("stale price:") and "2026-09-24 (158 days old, more than 90 days)" in w
        for w in sagemaker.warnings
    )
    assert (sagemaker.as_of, sagemaker.age_days, sagemaker.provenance) == ("2026-09-24", 158, "observed")
    azure = by_backend(table)["azure_ml"]  # a snapshot whose date cannot be recovered
    assert azure.warnings == [
        "undated price: the observed figure for azure_ml Standard_NC4as_T4_v3 (eastus) has no recoverable "
        "date; run `trainkit costs refresh` where the price APIs are reachable"
    ]
    assert (azure.as_of, azure.age_days) == (None, None)
    vertex = by_backend(table)["vertex_ai"]  # machine dated 2026-09-06 (derived), GPU undated
    assert [w.split(":")[0] for w in vertex.warnings] == ["stale price", "undated price"]
    assert (vertex.provenance, vertex.as_of) == ("derived", None)
    fresh = quote_job(spec("T4:1"), hours=1, onprem=ONPREM, today=date(2027, 3, 1), max_price_age="52w")
    assert not any("stale" in w for w in fresh.warnings)
    # Your own cost settings are never flagged for their age.
    assert by_backend(table)["onprem"].warnings == [] and by_backend(table)["onprem"].provenance == "settings"


def test_stale_age_from_environment(trainkit_home, monkeypatch) -> None:
    monkeypatch.setenv("TRAINKIT_PRICE_MAX_AGE", "1w3d")
    table = quote_job(spec("T4:1"), hours=1, onprem=[], today=date(2026, 10, 20))
    assert any("more than 10 days" in w for w in table.warnings)
    assert table.request["max_price_age_seconds"] == 10 * 86400 and table.request["max_age_days"] == 10
    monkeypatch.setenv("TRAINKIT_PRICE_MAX_AGE", "soon")
    with pytest.raises(
        ValueError, match=r"\$TRAINKIT_PRICE_MAX_AGE must be seconds or a duration .*got 'soon'"
    ):
        quote_job(spec("T4:1"), hours=1, onprem=[], today=date(2026, 10, 20))


def test_the_old_price_age_spellings_still_work(trainkit_home, monkeypatch) -> None:
    monkeypatch.setenv("TRAINKIT_PRICE_MAX_AGE_DAYS", "10")
    with pytest.warns(TrainkitDeprecationWarning, match=r"\$TRAINKIT_PRICE_MAX_AGE_DAYS is deprecated"):
        table = quote_job(spec("T4:1"), hours=1, onprem=[], today=date(2026, 10, 20))
    assert any("more than 10 days" in w for w in table.warnings)
    monkeypatch.delenv("TRAINKIT_PRICE_MAX_AGE_DAYS")
    with pytest.warns(TrainkitDeprecationWarning, match=r"quote_job\(max_age=\.\.\.\) is deprecated"):
        table = quote_job(spec("T4:1"), hours=1, onprem=[], today=date(2026, 10, 20), max_age=10)
    assert any("more than 10 days" in w for w in table.warnings)
    with pytest.raises(ValueError, match="pass max_price_age only"):
        quote_job(spec("T4:1"), hours=1, onprem=[], max_age=10, max_price_age="10d")
    with pytest.warns(TrainkitDeprecationWarning, match=r"max_age_days\(\) is deprecated"):
        assert max_age_days() == 90


def test_retired_size_flagged_and_never_cheapest(trainkit_home) -> None:
    table = quote_job(
        spec("V100:1", spot=True, allow_spot_without_checkpoint=True),
        hours=2,
        onprem=[],
        today=date(2025, 9, 1),
        max_price_age="9999d",
    )
    azure = by_backend(table)["azure_ml"]
    assert not azure.retired
    assert any(w.startswith("retiring size:") for w in azure.warnings)
    later = quote_job(
        spec("V100:1", spot=True, allow_spot_without_checkpoint=True),
        hours=2,
        onprem=[],
        today=FRESH,
        max_price_age="9999d",
    )
    azure = by_backend(later)["azure_ml"]
    assert azure.retired and any("retired after 2025-09-30" in w for w in azure.warnings)
    assert azure.total < by_backend(later)["vertex_ai"].total  # cheaper, but retired: not picked
    assert later.cheapest is not None and later.cheapest.backend == "vertex_ai"


def test_cheapest_and_pick_from(trainkit_home) -> None:
    table = quote_job(spec("T4:1"), hours=3, onprem=ONPREM, today=FRESH)
    assert table.cheapest is not None and table.cheapest.backend == "onprem"
    data = table.to_dict()
    assert data["cheapest"]["backend"] == "onprem"
    assert data["cheapest"]["provider"] == "onprem"  # the deprecated key, kept for one release
    clouds = quote_job(
        spec("T4:1"), hours=3, onprem=ONPREM, today=FRESH, pick_from_backends=["sagemaker", "azure_ml"]
    )
    # Azure ML is cheaper than SageMaker for a T4, and its backend trains there: it is the pick.
    assert by_backend(clouds)["azure_ml"].total < by_backend(clouds)["sagemaker"].total
    assert clouds.cheapest is not None and clouds.cheapest.backend == "azure_ml"
    assert clouds.left_out == {
        "onprem": "not in pick_from_backends (sagemaker, azure_ml)",
        "vertex_ai": "not in pick_from_backends (sagemaker, azure_ml)",
        "ray": "not in pick_from_backends (sagemaker, azure_ml)",
    }
    assert clouds.request["pick_from_backends"] == clouds.request["pick_from"] == ["sagemaker", "azure_ml"]
    # The old name still works for one release, with a warning.
    with pytest.warns(TrainkitDeprecationWarning, match=r"quote_job\(pick_from=\.\.\.\) is deprecated"):
        old = quote_job(
            spec("T4:1"), hours=3, onprem=ONPREM, today=FRESH, pick_from=["sagemaker", "azure_ml"]
        )
    assert old.left_out == clouds.left_out


def test_instance_count_and_epochs(trainkit_home) -> None:
    table = quote_job(
        spec("T4:1", instance_count=3),
        epochs=10,
        seconds_per_epoch=540,
        onprem=[],
        today=FRESH,
        backends=["sagemaker"],
    )
    quote = table.quotes[0]
    assert quote.hours == pytest.approx(1.5)
    assert quote.total == pytest.approx(0.736 * 3 * 1.5, abs=1e-3)
    assert [q.backend for q in table.quotes] == ["sagemaker"]


def test_explicit_instance_type(trainkit_home) -> None:
    table = quote_job(
        {"command": ["x"], "instance_type": {"sagemaker": "ml.m5.4xlarge", "azure_ml": "Standard_D4s_v3"}},
        hours=2,
        onprem=[],
        today=FRESH,
    )
    quotes = by_backend(table)
    assert quotes["sagemaker"].total == pytest.approx(0.922 * 2)
    assert quotes["azure_ml"].total == pytest.approx(0.192 * 2)
    assert not quotes["vertex_ai"].available
    vertex = quote_job(
        {"command": ["x"], "accelerator": "T4:1", "instance_type": {"vertex_ai": "n1-standard-4"}},
        hours=1,
        onprem=[],
        today=FRESH,
        backends=["vertex_ai"],
    )
    assert vertex.quotes[0].total == pytest.approx(0.2185 + 0.4025, abs=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spec": spec("X9:1"), "hours": 1}, r"spec\.accelerator: unknown accelerator 'X9:1'"),
        ({"spec": spec("T4:1"), "hours": 0}, r"hours must be a positive number, got 0"),
        ({"spec": spec("T4:1"), "hours": -2}, r"hours must be a positive number, got -2"),
        ({"spec": spec("T4:1"), "hours": "soon"}, r"hours must be a positive number, got 'soon'"),
        ({"spec": spec("T4:1")}, r"hours: a quote needs the expected hours"),
        (
            {"spec": spec("T4:1"), "epochs": 3, "seconds_per_epoch": 0},
            r"seconds_per_epoch must be a positive",
        ),
        ({"spec": spec("T4:1"), "hours": 1, "backends": ["aws"]}, r"backends: unknown backend 'aws'"),
        ({"spec": spec("T4:1"), "hours": 1, "backends": []}, r"backends: name at least one backend"),
        (
            {"spec": spec("T4:1"), "hours": 1, "backends": ["onprem"], "providers": ["onprem"]},
            r"quote_job: pass backends only \(providers is its deprecated name\), got both",
        ),
        ({"spec": {"command": ["x"]}, "hours": 1}, r"vcpus: a CPU-only quote \(no spec\.accelerator\) needs"),
        ({"spec": {"command": ["x"]}, "hours": 1, "vcpus": 0}, r"vcpus must be a positive number, got 0"),
        ({"spec": spec("T4:1"), "hours": 1, "regions": "mars"}, r"regions: 'mars' is not a geography"),
        ({"spec": spec("T4:1"), "hours": 1, "regions": {"aws": "eu"}}, r"regions: unknown backend 'aws'"),
        (
            {"spec": {"command": ["x"], "instance_type": "ml.nope"}, "hours": 1},
            r"spec\.instance_type: no backend has a price for 'ml\.nope'",
        ),
        ({"spec": spec("P4:1"), "hours": 1}, r"spec\.accelerator: no backend can run 'P4:1'.*no such GPU"),
    ],
)
def test_bad_input(trainkit_home, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        quote_job(onprem=[], today=FRESH, **kwargs)


def test_gpu_a_provider_lacks_is_a_warning_not_an_error(trainkit_home) -> None:
    table = quote_job(spec("A10G:1"), hours=1, onprem=ONPREM, today=FRESH)
    azure = by_backend(table)["azure_ml"]
    assert not azure.available
    assert azure.warnings == ["no such GPU: no azure_ml instance with A10G:1; azure_ml offers no A10G"]
    assert "no onprem host with A10G:1" in by_backend(table)["onprem"].warnings[0]


def test_no_onprem_settings_warns(trainkit_home) -> None:
    onprem = by_backend(quote_job(spec("T4:1"), hours=1, today=FRESH))["onprem"]
    assert not onprem.available and onprem.warnings[0].startswith("no onprem cost settings")


def test_onprem_settings_file(trainkit_home, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "onprem.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ONPREM[0]))
        writer.writeheader()
        writer.writerow(ONPREM[0])
    monkeypatch.setenv("TRAINKIT_ONPREM_COSTS", str(path))
    onprem = by_backend(quote_job(spec("T4:2"), hours=1, today=FRESH))["onprem"]
    assert onprem.total == pytest.approx((5000 / 4380 + 0.08) / 2, abs=1e-4)
    path.write_text("name,gpu_model,gpu_count,purchase_price\nbox,T4,2,lots\n")
    with pytest.raises(
        ValueError, match=rf"onprem cost settings {path} row 2: purchase_price: not a number, got 'lots'"
    ):
        quote_job(spec("T4:1"), hours=1)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("utilization", 0, r"onprem\[0\]\.utilization: must be a share in \(0, 1\], got 0"),
        ("utilization", 1.5, r"onprem\[0\]\.utilization: must be a share in \(0, 1\], got 1\.5"),
        ("amortization_years", "0", r"onprem\[0\]\.amortization_years: must be greater than 0, got '0'"),
        ("gpu_model", "Z80", r"onprem\[0\]\.gpu_model: unknown GPU; known: K80, .*, got 'Z80'"),
        ("gpu_count", 0, r"onprem\[0\]\.gpu_count: must be at least 1 when gpu_model is set, got 0"),
        ("gpu_count", True, r"onprem\[0\]\.gpu_count: must be a number, got True"),
        ("purchase_price", -1, r"onprem\[0\]\.purchase_price: must be a finite number of at least 0, got -1"),
        ("purchase_price", None, r"onprem\[0\]\.purchase_price: required for a machine you own .*, got None"),
        ("name", 7, r"onprem\[0\]\.name: Input should be a valid string, got 7"),
        ("colour", "red", r"onprem\[0\]\.colour: unknown key"),
        (
            "hourly_price",
            0.5,
            r"onprem\[0\]\.purchase_price: not with hourly_price: a machine is rented \(hourly_price\) or "
            r"owned, not both, got 12000",
        ),
    ],
)
def test_bad_onprem_settings(setting, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        load_onprem_rows([{**ONPREM[0], setting: value}])


def test_format_quote_table(trainkit_home) -> None:
    table = quote_job(
        spec("T4:1", spot=True, allow_spot_without_checkpoint=True), hours=3, onprem=ONPREM, today=FRESH
    )
    text = format_quote_table(table)
    assert text == format_quote_table(table.to_dict())
    lines = text.splitlines()
    assert lines[0].split() == [
        "backend",
        "region",
        "instance",
        "GPUs",
        "pricing",
        "per",
        "hour",
        "hours",
        "total",
        "spot",
        "saving",
        "price",
        "basis",
        "notes",
    ]
    sagemaker = next(line for line in lines if line.startswith("sagemaker"))
    # Managed spot bills fewer seconds at the on-demand price: no spot saving to show, a note instead.
    assert "us-east-1" in sagemaker and "on_demand" in sagemaker and "2.21 USD" in sagemaker
    assert "observed, 7 d" in sagemaker and "CHEAPEST" not in sagemaker
    azure = next(line for line in lines if line.startswith("azure_ml"))
    # Spot: 0.062699 x 3 h, saving (0.526 - 0.062699) x 3 h; the cheapest backend that trains here.
    assert (
        " spot " in azure and "0.19 USD" in azure and "1.39 (88%)" in azure and "observed, undated" in azure
    )
    assert "CHEAPEST" in azure and "left out" not in azure
    vertex = next(line for line in lines if line.startswith("vertex_ai"))
    assert "n1-standard-8 + NVIDIA_TESLA_T4" in vertex and "derived, undated" in vertex
    assert "notes:" in lines and "warnings:" in lines
    assert "vertex_ai: no spot price" in text
    assert not any(line.startswith("  - azure_ml: quote only") for line in lines)
    # On an on-demand quote the spot column says what spot would save, as "if spot".
    on_demand = format_quote_table(quote_job(spec("T4:1"), hours=3, onprem=[], today=FRESH)).splitlines()
    azure = next(line for line in on_demand if line.startswith("azure_ml"))
    assert " on_demand " in azure and "if spot: 1.39 (88%)" in azure
    sagemaker = next(line for line in on_demand if line.startswith("sagemaker"))
    assert sagemaker.split("  ")[0] == "sagemaker" and " -  " in sagemaker  # no spot price: "-"


# --- the catalog file ---------------------------------------------------------------------------------


def _shipped_text() -> str:
    return resources.files("airflow_trainkit.costs").joinpath("price_catalog.csv").read_text()


def test_every_instance_table_row_has_a_catalog_row() -> None:
    catalog = load_catalog(onprem=[])
    for choice in instance_table():
        if choice.accelerator_type:
            assert catalog.find(choice.provider, choice.instance_type, kind="machine"), choice
            gpu = catalog.find(choice.provider, choice.accelerator_type, kind="accelerator")
            assert gpu is not None and gpu.gpu_model == choice.gpu_model, choice
        else:
            row = catalog.find(choice.provider, choice.instance_type, kind="instance")
            assert row is not None, choice
            assert (row.gpu_model, row.gpu_count) == (choice.gpu_model, choice.gpu_count), choice


def test_no_shipped_row_is_dated_the_day_the_file_was_written() -> None:
    # as_of is when a figure was published or observed; the 2025 catalog dated every row 2025-06-01.
    rows = load_catalog(onprem=[]).rows
    assert all(row.as_of != date(2025, 6, 1) for row in rows)
    assert {row.provenance for row in rows} == {"observed", "derived", "unverified"}
    assert any(row.as_of is None for row in rows) and any(row.as_of is not None for row in rows)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace(",spot_per_hour", "", 1), r"missing column\(s\) spot_per_hour"),
        (lambda t: t.replace(",note\n", ",note,colour\n", 1), r"unknown column\(s\) 'colour'"),
        (
            lambda t: t.replace(",0.736,", ",cheap,", 1),
            r"row 2: on_demand_per_hour: not a number, got 'cheap'",
        ),
        (
            lambda t: t.replace(",0.736,", ",-1,", 1),
            r"row 2: on_demand_per_hour: must be a finite number .*'-1'",
        ),
        (
            lambda t: t.replace("ml.g4dn.12xlarge,T4,4", "ml.g4dn.12xlarge,T4,four", 1),
            r"row 3: gpu_count: not a number, got 'four'",
        ),
        (
            lambda t: t.replace("ml.g4dn.12xlarge,T4,4", "ml.g4dn.12xlarge,T4,0", 1),
            r"row 3: gpu_count: must be at least 1 when gpu_model is set, got '0'",
        ),
        (
            lambda t: t.replace(",2026-09-24,", ",June,", 1),
            r"row 2: as_of: not a date \(YYYY-MM-DD\), got 'June'",
        ),
        (
            lambda t: t.replace(",observed,\n", ",sure,\n", 1),
            r"row 2: provenance: unknown provenance; known: published, .*, got 'sure'",
        ),
        (
            lambda t: t.replace(",2026-09-24,", ",,", 1),
            r"row 2: as_of: empty; give the day the figure was published or observed, or say in "
            r"column note which snapshot",
        ),
        (lambda t: t.replace(",USD,", ",,", 1), r"row 2: currency: required, missing"),
        (lambda t: t.replace(",USD,", ",USD,,", 1), r"row 2: 1 more cell\(s\) than the header has columns"),
        (
            lambda t: t.replace("sagemaker,", "aws,", 1),
            r"row 2: backend: no installed backend or quote-only price source declares this key "
            r"\(BackendPricing\.catalog_key\); known: .*, got 'aws'",
        ),
        (lambda t: t + t.splitlines()[1] + "\n", r"row \d+ repeats row 2"),
    ],
)
def test_malformed_catalog_names_file_row_and_column(tmp_path, edit, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(edit(_shipped_text()))
    with pytest.raises(ValueError, match=rf"price catalog {path}:? {message}"):
        load_catalog(path, onprem=[])


def test_catalog_precedence_and_round_trip(trainkit_home, tmp_path, monkeypatch) -> None:
    shipped = load_catalog(onprem=[])
    assert shipped.path.startswith("package:")
    rows = list(shipped.rows)
    written = write_catalog(rows)
    refreshed = load_catalog(onprem=[])
    assert refreshed.path == written and refreshed.rows == shipped.rows
    explicit = tmp_path / "mine.csv"
    explicit.write_text(_shipped_text())
    monkeypatch.setenv("TRAINKIT_PRICE_CATALOG", str(explicit))
    assert load_catalog(onprem=[]).path == str(explicit)
    assert parse_catalog(_shipped_text(), source="x") == shipped.rows


def test_expected_hours() -> None:
    assert expected_hours(2) == 2
    assert expected_hours(epochs=4, seconds_per_epoch=900) == 1
    with pytest.raises(ValueError, match="not both"):
        expected_hours(1, epochs=1, seconds_per_epoch=1)
