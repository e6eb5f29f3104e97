"""The Vertex AI backend: CustomJobs (optionally on Spot VMs) through the aiplatform v1 JobService.

Importing this package registers ``backend="vertex_ai"``; the Google SDK is imported only once a job is handled.
"""

from __future__ import annotations

from airflow_trainkit.backends.vertex_ai.backend import DEFAULT_CONN_ID, DEFAULT_REGION, VertexAIBackend
from airflow_trainkit.backends.vertex_ai.request import DEFAULT_MACHINE_TYPE, KNOWN_OPTIONS
from airflow_trainkit.backends.vertex_ai.status import JOB_ID_LABEL, VertexState, console_url, status_from_job

__all__ = [
    "DEFAULT_CONN_ID",
    "DEFAULT_MACHINE_TYPE",
    "DEFAULT_REGION",
    "JOB_ID_LABEL",
    "KNOWN_OPTIONS",
    "VertexAIBackend",
    "VertexState",
    "console_url",
    "status_from_job",
]
