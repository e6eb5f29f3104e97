"""Find a model version by alias or tag that is newer than a given one (used by sensor and trigger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from airflow_trainkit.config_model import StrictModel, build

if TYPE_CHECKING:
    from mlflow import MlflowClient


class FoundVersion(StrictModel):
    """The version a wait found: what the sensor returns (see :func:`find_newer_version`)."""

    model_name: str
    version: str
    alias: str | None = None
    tag: dict[str, str] | None = None
    run_id: str | None = None
    source: str | None = None
    model_uri: str


class VersionEvent(StrictModel):
    """The one event of ``ModelVersionTrigger``: ``found`` with the version, else a ``message``."""

    status: Literal["found", "timeout", "error"]
    version: FoundVersion | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _fits_status(self) -> VersionEvent:
        if self.status == "found" and self.version is None:
            raise ValueError("a 'found' event must carry the version")
        if self.status != "found" and self.message is None:
            raise ValueError(f"a {self.status!r} event must carry a message")
        return self


def read_event(event: Any) -> VersionEvent:
    """The trigger's event, checked in shape when the sensor resumes.

    :raises ValueError: naming each field that is missing, unknown or of the wrong type.
    """
    try:
        return build(VersionEvent, event, prefix="event")
    except ValueError as err:
        raise ValueError(f"malformed event from ModelVersionTrigger: {err}") from None


def check_target(alias: str | None, tag: dict[str, str] | None, newer_than: Any) -> int | None:
    """Validate what to wait for; returns ``newer_than`` as an int (or ``None``)."""
    if bool(alias) == bool(tag):
        raise ValueError(f"give exactly one of alias or tag, got alias={alias!r} tag={tag!r}")
    if tag is not None and (not isinstance(tag, dict) or len(tag) != 1):
        raise ValueError(f"tag must be a dict with one key -> value, got {tag!r}")
    if newer_than in (None, ""):
        return None
    try:
        return int(newer_than)
    except (TypeError, ValueError):
        raise ValueError(f"newer_than must be a version number, got {newer_than!r}") from None


def find_newer_version(
    client: MlflowClient,
    model_name: str,
    *,
    alias: str | None = None,
    tag: dict[str, str] | None = None,
    newer_than: int | None = None,
) -> dict[str, Any] | None:
    """The matching version as a JSON dict, or ``None`` when there is none yet."""
    from airflow_trainkit.registry.gate import get_alias

    if alias:
        candidates = [v for v in [get_alias(client, model_name, alias)] if v is not None]
    else:
        ((key, value),) = (tag or {}).items()
        safe_name = model_name.replace("'", "\\'")
        safe_value = str(value).replace("'", "\\'")
        candidates = list(
            client.search_model_versions(f"name = '{safe_name}' and tags.`{key}` = '{safe_value}'")
        )
    candidates = [v for v in candidates if newer_than is None or int(v.version) > newer_than]
    if not candidates:
        return None
    best = max(candidates, key=lambda v: int(v.version))
    return {
        "model_name": model_name,
        "version": str(best.version),
        "alias": alias,
        "tag": tag,
        "run_id": best.run_id,
        "source": best.source,
        "model_uri": f"models:/{model_name}/{best.version}",
    }


# MLflow's error codes for answers worth asking again (throttling, a server that is busy or down).
TRANSIENT_MLFLOW_CODES = frozenset(
    {"RESOURCE_EXHAUSTED", "REQUEST_LIMIT_EXCEEDED", "TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR"}
)


def is_transient(error: BaseException) -> bool:
    """Whether a registry call that failed with ``error`` is worth another try."""
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    code = getattr(error, "error_code", None)
    if code in TRANSIENT_MLFLOW_CODES:
        return True
    # requests' connection and timeout errors, without importing requests here.
    return any(cls.__module__.startswith("requests") for cls in type(error).__mro__[:-1]) and isinstance(
        error, OSError
    )
