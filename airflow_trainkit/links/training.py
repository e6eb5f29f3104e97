"""Extra link from a training task to its job's page in the provider's console."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from airflow_trainkit._compat import BaseOperatorLink, xcom_value

CONSOLE_URL_XCOM_KEY = "console_url"


class TrainingJobConsoleLink(BaseOperatorLink):
    """Opens the console page of the job the task ran (SageMaker, Vertex AI, Azure ML Studio)."""

    name = "Training job console"

    @override
    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        url = xcom_value(ti_key, CONSOLE_URL_XCOM_KEY)
        return str(url) if url else ""
