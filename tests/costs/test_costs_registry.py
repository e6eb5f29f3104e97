"""The costs read only the pricing registry: which rows a price file may hold, which backends are
quoted, which one the cheapest may be, and the deprecated ``provider(s)`` and ``pick_from`` spellings."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from costs_testing import RACK_T4
from trainkit_testing import isolated_backends, make_context

from airflow_trainkit import cli
from airflow_trainkit.costs import actual_cost
from airflow_trainkit.costs.catalog import load_catalog, write_catalog
from airflow_trainkit.costs.quotes import quote_job
from airflow_trainkit.training.backend import TrainingBackend, register_backend
from airflow_trainkit.training.capabilities import Capabilities
from airflow_trainkit.training.pricing import BackendPricing
from airflow_trainkit.vocabulary import TrainkitDeprecationWarning

FRESH = date(2025, 6, 15)
T4_HOST = RACK_T4
HEADER = (
    "backend,service,region,kind,instance_type,gpu_model,gpu_count,vcpus,memory_gib,"
    "on_demand_per_hour,spot_per_hour,currency,as_of,source,retired_after,provenance,note\n"
)


def shipped() -> str:
    return resources.files("airflow_trainkit.costs").joinpath("price_catalog.csv").read_text()


def spec(accelerator: str = "T4:1", **extra: Any) -> dict[str, Any]:
    return {"command": ["python", "train.py"], "accelerator": accelerator, **extra}


@pytest.fixture
def quote_only_azure(monkeypatch: pytest.MonkeyPatch) -> str:
    """A quote-only price source (Azure ML's rows, with no backend): quoted, never picked."""
    from airflow_trainkit.training import pricing

    name = "azure_ml_quote"
    monkeypatch.setitem(
        pricing.QUOTE_ONLY,  # type: ignore[arg-type]
        name,
        dataclasses.replace(
            pricing.pricing_registry().get("azure_ml").pricing,
            trainable=False,
            region_conn_id=None,
            region_extra_keys=(),
        ),
    )
    return name


@pytest.fixture
def registry_copy():
    """Backends registered by a test stay in this test."""
    with isolated_backends() as registry:
        yield registry


def register(name: str, pricing: BackendPricing, capabilities: Capabilities | None = None) -> None:
    namespace = {"pricing": pricing, "capabilities": capabilities or Capabilities()}
    register_backend(name)(type(f"{name.title()}Backend", (TrainingBackend,), namespace))


# --- the price file ------------------------------------------------------------------------------


def test_a_price_row_no_backend_declares_names_file_row_column_and_value(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(shipped() + "acme,acme_training,eu,instance,acme-t4,T4,1,,,0.35,,USD,2025-06-01,x,\n")
    line = len(shipped().splitlines()) + 1
    with pytest.raises(
        ValueError,
        match=rf"price catalog {path} row {line}: backend: no installed backend or quote-only price source "
        r"declares this key \(BackendPricing\.catalog_key\); known: azure_ml, onprem, sagemaker, vertex_ai, "
        r"got 'acme'",
    ):
        load_catalog(path, onprem=[])


def test_a_price_file_with_the_old_provider_column_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(shipped().replace("backend,", "provider,", 1))
    with pytest.warns(
        TrainkitDeprecationWarning, match=r"the column 'provider' is deprecated; call it 'backend'"
    ):
        catalog = load_catalog(path, onprem=[])
    assert catalog.rows == load_catalog(onprem=[]).rows
    row = catalog.rows[0]
    with pytest.warns(
        TrainkitDeprecationWarning, match=r"PriceRow\.provider is deprecated; use PriceRow\.backend"
    ):
        assert row.provider == row.backend == "sagemaker"
    with pytest.warns(TrainkitDeprecationWarning, match=r"Catalog\.for_provider\(\) is deprecated"):
        assert catalog.for_provider("azure_ml") == catalog.for_backend("azure_ml")
    with pytest.warns(TrainkitDeprecationWarning, match=r"Catalog\.providers\(\) is deprecated"):
        assert catalog.providers() == catalog.backends() == ["sagemaker", "vertex_ai", "azure_ml"]
    # A refresh (any write) gives the file the new header.
    written = write_catalog(list(catalog.rows), tmp_path / "new.csv")
    assert Path(written).read_text().startswith("backend,service,")


def test_a_declared_key_makes_its_rows_welcome(registry_copy, tmp_path: Path) -> None:
    register("acme", BackendPricing(catalog_key="acme_cloud", basis="wall time x price"))
    path = tmp_path / "prices.csv"
    path.write_text(
        HEADER + "acme_cloud,acme,eu,instance,acme-t4,T4,1,,,0.35,,USD,2025-06-01,x,,published,\n"
    )
    (row,) = load_catalog(path, onprem=[]).rows
    assert (row.backend, row.instance_type, row.on_demand_per_hour) == ("acme_cloud", "acme-t4", 0.35)


def test_rows_made_from_cost_settings_are_never_written(trainkit_home: Path) -> None:
    catalog = load_catalog(onprem=[T4_HOST])
    assert "onprem" in catalog.backends()
    written = write_catalog(list(catalog.rows))
    assert "onprem" not in load_catalog(written, onprem=[]).backends()


# --- who may be the cheapest ---------------------------------------------------------------------


def test_cheapest_leaves_out_quote_only_and_refusing_backends_and_says_why(
    trainkit_home: Path, quote_only_azure: str
) -> None:
    # Spot T4 for 2 h: a busy on-prem host's GPU share and Azure ML's spot price both beat SageMaker
    # (managed spot, quoted at on-demand), but the on-prem backend has no spot capacity and nothing
    # trains on the quote-only copy of Azure ML's prices; the Azure ML backend itself is the pick.
    busy_host = {**T4_HOST, "utilization": 0.9}
    table = quote_job(
        spec(spot=True, allow_spot_without_checkpoint=True), hours=2, onprem=[busy_host], today=FRESH
    )
    totals = {q.backend: q.total for q in table.quotes}
    assert totals[quote_only_azure] == totals["azure_ml"]
    assert max(totals["onprem"], totals["azure_ml"]) < totals["sagemaker"] < totals["vertex_ai"]
    assert table.cheapest is not None and table.cheapest.backend == "azure_ml"
    assert table.left_out == {
        "onprem": "spec.spot: the onprem backend has no spot capacity: its jobs run on hosts you own (got True)",
        "ray": "spec.spot: the ray backend runs on the cluster's own nodes and has no spot capacity to ask for (got True)",
        quote_only_azure: f"quote only: no {quote_only_azure} training backend is installed",
    }
    data = table.to_dict()
    assert data["left_out"] == table.left_out and data["cheapest"]["backend"] == "azure_ml"
    # Every quote is still there, priced: leaving out is about picking, not about quoting.
    assert all(q.available for q in table.quotes)


def test_instance_count_beyond_a_backends_limit_is_left_out(trainkit_home: Path) -> None:
    table = quote_job(spec(instance_count=2), hours=1, onprem=[T4_HOST], today=FRESH)
    assert table.left_out["onprem"] == (
        "spec.instance_count: the onprem backend runs at most 1 machine(s) per job (got 2)"
    )
    assert table.cheapest is not None and table.cheapest.backend != "onprem"


def test_a_retired_size_is_never_the_cheapest(trainkit_home: Path, tmp_path: Path) -> None:
    rows = [
        r.model_copy(update={"on_demand_per_hour": 0.01, "retired_after": date(2026, 9, 30)})
        if r.instance_type == "ml.g4dn.xlarge"
        else r
        for r in load_catalog(onprem=[]).rows
    ]
    path = write_catalog(rows, tmp_path / "prices.csv")
    table = quote_job(
        spec(), hours=1, onprem=[], today=date(2026, 10, 1), catalog=load_catalog(path, onprem=[])
    )
    assert table.left_out["sagemaker"] == "retired size: ml.g4dn.xlarge"
    assert table.cheapest is not None and table.cheapest.backend == "azure_ml"


def test_nothing_trainable_means_no_cheapest(trainkit_home: Path, quote_only_azure: str) -> None:
    table = quote_job(spec(), hours=1, onprem=[], today=FRESH, backends=[quote_only_azure, "onprem"])
    assert table.cheapest is None
    assert table.left_out[quote_only_azure].startswith("quote only")
    assert table.left_out["onprem"].startswith("not available: no onprem cost settings")


# --- pick_from_backends: checked first -----------------------------------------------------------


def test_pick_from_naming_a_backend_not_installed_fails_before_anything_else(trainkit_home: Path) -> None:
    message = r"pick_from_backends: unknown backend 'acme': no installed backend or quote-only price source"
    with pytest.raises(ValueError, match=message):
        quote_job({"command": "not a list"}, hours=-1, pick_from_backends=["onprem", "acme"])
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    op = CompareTrainingCostsOperator(
        task_id="quote",
        spec={"command": "not a list"},
        hours=-1,
        pick="fastest",
        pick_from_backends=["acme"],
        catalog_path="/no/such/catalog.csv",
    )
    with pytest.raises(ValueError, match=message):
        op.execute(make_context(task_id="quote"))


def test_cli_pick_from_naming_a_backend_not_installed(trainkit_home: Path, capsys) -> None:
    argv = ["costs", "compare", "--accelerator", "T4:1", "--hours", "1", "--catalog", "/no/such.csv"]
    assert cli.main([*argv, "--pick-from-backends", "acme"]) == 2
    assert "trainkit: pick_from_backends: unknown backend 'acme'" in capsys.readouterr().err
    assert cli.main([*argv[:-2], "--backends", "aws"]) == 2
    assert "trainkit: backends: unknown backend 'aws'" in capsys.readouterr().err


# --- the minimum billed time ---------------------------------------------------------------------


def test_minimum_billed_seconds_in_quote_and_actual_cost(registry_copy, tmp_path: Path) -> None:
    register(
        "minute", BackendPricing(catalog_key="minute", basis="per started minute", minimum_billed_seconds=60)
    )
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + "minute,m,eu,instance,m-t4,T4,1,,,3.6,,USD,2025-06-01,x,,published,\n")
    catalog = load_catalog(path, onprem=[])
    table = quote_job(spec(), hours=0.005, catalog=catalog, today=FRESH, backends=["minute"])
    (quote,) = table.quotes
    assert quote.total == pytest.approx(3.6 / 60)  # 18 s quoted, one minute billed
    assert quote.warnings == [
        "minimum billed time: minute bills at least 60 s per run; quoted for 0.0166667 h"
    ]
    result = {
        "backend": "minute",
        "job_id": "j",
        "billable_seconds": 18,
        "instance_type": "m-t4",
        "accelerator": "T4:1",
    }
    cost = actual_cost(result, catalog=catalog, today=FRESH)
    assert cost is not None
    assert cost["amount"] == pytest.approx(0.06) and cost["billable_seconds"] == 18
    assert cost["minimum_billed_seconds"] == 60 and cost["basis"].endswith("at least 60 s billed per run")


# --- the deprecated spellings --------------------------------------------------------------------


def test_providers_is_a_deprecated_alias_everywhere(trainkit_home: Path, capsys) -> None:
    with pytest.warns(TrainkitDeprecationWarning, match=r"quote_job\(providers=\.\.\.\) is deprecated"):
        table = quote_job(spec(), hours=1, onprem=[], today=FRESH, providers=["sagemaker"])
    assert [q.backend for q in table.quotes] == ["sagemaker"]
    with pytest.warns(TrainkitDeprecationWarning, match="Quote.provider is deprecated"):
        assert table.quotes[0].provider == "sagemaker"
    data = table.to_dict()
    assert data["quotes"][0]["provider"] == data["quotes"][0]["backend"] == "sagemaker"
    assert data["request"]["providers"] == data["request"]["backends"] == ["sagemaker"]

    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    with pytest.warns(
        TrainkitDeprecationWarning,
        match=r"CompareTrainingCostsOperator\(providers=\.\.\.\) is deprecated; use backends=",
    ):
        op = CompareTrainingCostsOperator(task_id="quote", spec=spec(), hours=1, providers=["sagemaker"])
    op.report_uri = str(trainkit_home / "report")
    assert [q["backend"] for q in op.execute(make_context(task_id="quote"))["quotes"]] == ["sagemaker"]
    capsys.readouterr()

    with pytest.warns(TrainkitDeprecationWarning, match="--providers is deprecated"):
        code = cli.main(
            [
                "costs",
                "compare",
                "--accelerator",
                "T4:1",
                "--hours",
                "1",
                "--providers",
                "vertex_ai",
                "--json",
            ]
        )
    assert code == 0
    out, err = capsys.readouterr()
    assert [q["backend"] for q in json.loads(out)["quotes"]] == ["vertex_ai"]
    assert "trainkit: --providers is deprecated and goes in the next release; use --backends" in err
    with pytest.warns(TrainkitDeprecationWarning, match="--provider is deprecated"):
        assert cli.main(["costs", "catalog", "--provider", "azure_ml"]) == 0
    assert "Standard_NC4as_T4_v3" in capsys.readouterr().out
    assert cli.main(["costs", "catalog", "--backend", "vertex_ai"]) == 0
    out = capsys.readouterr().out
    assert "n1-standard-8" in out and "ml.g4dn" not in out


def test_the_old_pick_from_and_price_age_spellings_still_work(trainkit_home: Path, capsys) -> None:
    from airflow_trainkit.operators.costs import CompareTrainingCostsOperator

    with pytest.warns(
        TrainkitDeprecationWarning, match=r"CompareTrainingCostsOperator\(pick_from=\.\.\.\) is deprecated"
    ):
        op = CompareTrainingCostsOperator(
            task_id="quote", spec=spec(), hours=1, onprem=[T4_HOST], pick_from=["sagemaker"]
        )
    assert op.pick_from_backends == ["sagemaker"]
    with pytest.warns(
        TrainkitDeprecationWarning, match=r"CompareTrainingCostsOperator\(max_age_days=\.\.\.\) is deprecated"
    ):
        op = CompareTrainingCostsOperator(task_id="quote", spec=spec(), hours=1, max_age_days=30)
    assert op.max_price_age == "30d"  # a template such as "{{ params.days }}" becomes "{{ params.days }}d"
    with pytest.raises(ValueError, match="pass max_price_age only"):
        CompareTrainingCostsOperator(task_id="q", spec=spec(), hours=1, max_age_days=30, max_price_age="30d")

    argv = ["costs", "compare", "--accelerator", "T4:1", "--hours", "1", "--json"]
    with pytest.warns(TrainkitDeprecationWarning, match="--pick-from is deprecated"):
        assert cli.main([*argv, "--pick-from", "sagemaker", "--onprem", _onprem_csv(trainkit_home)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["cheapest"]["backend"] == "sagemaker"
    assert "use --pick-from-backends" in err
    with pytest.warns(TrainkitDeprecationWarning, match="--max-age-days is deprecated"):
        assert cli.main([*argv, "--max-age-days", "30"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["request"]["max_age_days"] == 30 and "use --max-price-age" in err
    assert cli.main([*argv, "--max-price-age", "1w3d"]) == 0
    assert json.loads(capsys.readouterr().out)["request"]["max_price_age_seconds"] == 10 * 86400
    assert cli.main([*argv, "--max-price-age", "1w", "--max-age-days", "3"]) == 2
    assert "give --max-price-age or the deprecated --max-age-days, not both" in capsys.readouterr().err


def _onprem_csv(home: Path) -> str:
    path = home / "onprem.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(T4_HOST) + "\n" + ",".join(str(v) for v in T4_HOST.values()) + "\n")
    return str(path)


# --- layering inside costs -------------------------------------------------------------------------


def test_the_cost_modules_import_one_way() -> None:
    """rows <- onprem <- catalog <- quotes, actual, refresh <- report, cli: no module imports one
    after it, not even inside a function (the catalog once imported onprem lazily while onprem
    imported the catalog)."""
    import ast

    import airflow_trainkit.costs as package

    order = ["rows", "onprem", "catalog", "regions", "quotes", "actual", "refresh", "report", "cli"]
    folder = Path(package.__file__).parent
    for position, name in enumerate(order):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {
            node.module.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_trainkit.costs.")
        }
        later = imported & set(order[position + 1 :])
        assert not later, f"costs/{name}.py imports {sorted(later)}, which come after it"
