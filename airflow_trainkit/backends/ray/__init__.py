"""The Ray cluster backend (``backend="ray"``): training jobs through the Ray Jobs REST API.

Importing this package registers the backend; it imports neither ``ray`` nor anything heavy (calls go
through httpx, a dependency of Airflow itself).
"""

from __future__ import annotations

from airflow_trainkit.backends.ray.backend import RayBackend
from airflow_trainkit.backends.ray.status import PHASES, RayJobState

__all__ = ["PHASES", "RayBackend", "RayJobState"]
