"""Where trainkit keeps its files when the user names no other place.

Everything lives under one root: ``$TRAINKIT_HOME`` if set, else ``$AIRFLOW_HOME/trainkit``, else
``~/airflow/trainkit`` (Airflow's own default home). The demo points ``AIRFLOW_HOME`` at a folder of its own.
"""

from __future__ import annotations

import os
from pathlib import Path


def trainkit_home() -> Path:
    """The root folder for jobs, artifacts, reports and the embedded MLflow store."""
    if explicit := os.environ.get("TRAINKIT_HOME"):
        return Path(explicit).expanduser()
    airflow_home = os.environ.get("AIRFLOW_HOME") or "~/airflow"
    return Path(airflow_home).expanduser() / "trainkit"


def artifacts_dir() -> Path:
    """Default place for models, metrics and reports."""
    return trainkit_home() / "artifacts"


def reports_dir() -> Path:
    """Default place for validation, drift and cost reports."""
    return trainkit_home() / "reports"
