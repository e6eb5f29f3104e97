"""Training cost comparison: a price catalog with provenance, quotes before a run, actual cost after it.

Light at import (pydantic and the stdlib), so the CLI and DAGs can use it from the core install.
"""

from __future__ import annotations

from airflow_trainkit.costs.actual import actual_cost
from airflow_trainkit.costs.catalog import Catalog, PriceRow, load_catalog
from airflow_trainkit.costs.quotes import Quote, QuoteTable, format_quote_table, quote_job

__all__ = [
    "Catalog",
    "PriceRow",
    "Quote",
    "QuoteTable",
    "actual_cost",
    "format_quote_table",
    "load_catalog",
    "quote_job",
]
