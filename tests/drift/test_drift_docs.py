"""docs/drift.md lists DriftConfig's keys with their defaults, the summary's keys and the operator's
parameters as the code has them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from airflow_trainkit.config_model import build
from airflow_trainkit.drift.config import DriftConfig
from airflow_trainkit.drift.results import ColumnResult, DriftResult
from airflow_trainkit.operators.drift import DriftCheckOperator

PAGE = Path(__file__).resolve().parents[2] / "docs" / "drift.md"


def _table(heading: str) -> dict[str, list[str]]:
    """The first table under ``heading``: first cell (backticks stripped) -> the other cells."""
    text = PAGE.read_text()
    body = text[text.index(heading + "\n") :]
    rows = {}
    for line in body.splitlines():
        if rows and not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and not set(cells[0]) <= {"-"} and cells[0] not in ("key", "parameter"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = cells[1:]
    return rows


def test_the_settings_table_is_drift_config():
    table = _table("## Settings: `DriftConfig`")
    assert list(table) == list(DriftConfig.model_fields)
    for name, field in DriftConfig.model_fields.items():
        assert table[name][0] == f"`{field.default!r}`".replace("'", '"'), name


def test_the_error_the_page_shows_is_the_one_raised():
    shown = re.search(r"e\.g\.\s+`(config\.[^`]+)`", PAGE.read_text()).group(1)
    with pytest.raises(ValueError) as err:
        build(DriftConfig, {"drift_share": 0, "corection": "bh"}, prefix="config")
    assert str(err.value) == shown


def test_the_result_table_lists_every_summary_key():
    column = ColumnResult("a", "feature", "numeric", "ks", 0.5, 0.0, 0.05, 0.5, True)
    summary = DriftResult(
        [column] * 101, reference_rows=10, current_rows=10, drift_share=0.5, correction="bh"
    ).summary()
    assert set(_table("## Result, report and on_failure")) == set(summary)


def test_the_parameter_table_is_the_operator_signature():
    own = set(inspect.signature(DriftCheckOperator.__init__).parameters) - {"self", "kwargs"}
    table = _table("## Inputs")
    assert set(table) == own
    for name in own:
        assert table[name][0].startswith("yes" if name in DriftCheckOperator.template_fields else "no"), name
