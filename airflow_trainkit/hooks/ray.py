"""Connection for the Ray cluster backend: the cluster's Jobs API address, its token, TLS options.

A ``trainkit_ray`` connection names the head node's dashboard (the Ray Jobs REST API), e.g.
``http://ray-head:8265`` in ``host`` (or ``host`` + ``port``, with ``schema`` ``https`` for TLS).
Its ``password`` is the cluster's token (Ray token authentication), sent as an
``Authorization: Bearer`` header and never logged. Extras: ``verify`` (``true``/``false`` or the path
of a CA bundle), ``timeout`` (seconds per call), ``max_package_mb`` (largest working directory
uploaded), ``console_url`` (the dashboard link shown in the task, when it differs from the address).
Stdlib only at import: a DAG that names the connection pays nothing for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from typing_extensions import override

from airflow_trainkit._compat import BaseHook

DEFAULT_CONN_ID = "trainkit_ray_default"
DEFAULT_PORT = 8265
DEFAULT_TIMEOUT = 30.0
# Ray refuses packages at its gRPC message limit (512 MiB by default); we stop far earlier.
DEFAULT_MAX_PACKAGE_MB = 100.0


@dataclass(frozen=True)
class RaySettings:
    """Resolved settings of one ``trainkit_ray`` connection.

    :param conn_id: the connection these came from (named in every error).
    :param address: ``scheme://host:port`` of the Jobs API, without a trailing slash.
    :param token: the cluster's token, or ``None``; kept out of ``repr``.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param timeout: seconds each call may take.
    :param max_package_mb: the largest package (zipped working directory) uploaded.
    :param console_url: the dashboard URL shown as the task's console link.
    """

    conn_id: str
    address: str
    token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT
    max_package_mb: float = DEFAULT_MAX_PACKAGE_MB
    console_url: str | None = None

    def headers(self) -> dict[str, str]:
        """The headers every call carries; the token one is a secret."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class RayClusterHook(BaseHook):
    """Reads a Ray cluster connection (type ``trainkit_ray``) into :class:`RaySettings`.

    :param conn_id: the connection; ``None`` for ``trainkit_ray_default``. Without such a connection,
        ``TRAINKIT_RAY_ADDRESS`` (or Ray's own ``RAY_ADDRESS`` when it is an ``http(s)`` URL) is used.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "trainkit_ray"
    hook_name = "Trainkit Ray cluster"

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id

    @classmethod
    @override
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"host": "Jobs API address", "password": "Token", "schema": "Scheme"},
            "placeholders": {
                "host": "http://ray-head:8265",
                "schema": "http or https",
                "password": "the cluster's Ray token (optional)",
                "extra": '{"verify": true, "timeout": 30, "max_package_mb": 100}',
            },
        }

    def settings(self) -> RaySettings:
        """The connection's settings, checked.

        :raises ValueError: naming the connection, the field and the bad value (never the token).
        """
        from airflow_trainkit._compat import mask_secret

        conn_id = self.conn_id or DEFAULT_CONN_ID
        conn = self._connection(conn_id)
        if conn is None:
            raw = os.environ.get("TRAINKIT_RAY_ADDRESS") or os.environ.get("RAY_ADDRESS") or ""
            if not raw.startswith(("http://", "https://")):
                raise ValueError(
                    f"connection {conn_id!r}: no such connection, and neither TRAINKIT_RAY_ADDRESS nor "
                    f"RAY_ADDRESS is an http(s) address of a Ray cluster's Jobs API (got {raw!r})"
                )
            return RaySettings(conn_id=conn_id, address=_address(conn_id, raw, None, None))
        extra = conn.extra_dejson or {}
        token = conn.password or None
        if token:
            mask_secret(token)
        return RaySettings(
            conn_id=conn_id,
            address=_address(conn_id, conn.host or "", conn.schema or None, conn.port),
            token=token,
            verify=_verify(conn_id, extra.get("verify", True)),
            timeout=_positive(conn_id, "timeout", extra.get("timeout", DEFAULT_TIMEOUT)),
            max_package_mb=_positive(
                conn_id, "max_package_mb", extra.get("max_package_mb", DEFAULT_MAX_PACKAGE_MB)
            ),
            console_url=str(extra["console_url"]).rstrip("/") if extra.get("console_url") else None,
        )

    def _connection(self, conn_id: str) -> Any:
        """The connection, or ``None`` when the default one is not defined."""
        try:
            return self.get_connection(conn_id)
        except Exception as err:  # AirflowNotFoundException, whatever its module in this release
            if type(err).__name__ == "AirflowNotFoundException" and self.conn_id is None:
                return None
            raise


def _address(conn_id: str, host: str, schema: str | None, port: int | None) -> str:
    """``scheme://host:port`` from the connection's fields; refuses what is not an address."""
    text = host.strip()
    if not text:
        raise ValueError(f"connection {conn_id!r} host: the Ray Jobs API address is empty")
    if "://" not in text:
        scheme = (schema or "http").lower()
        text = f"{scheme}://{text}"
    try:
        parts = urlsplit(text)
        parsed_port = parts.port
    except ValueError:
        raise ValueError(f"connection {conn_id!r} host: not a URL: {host!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"connection {conn_id!r} host: the Ray Jobs API address must be http(s)://host[:port], got {host!r}"
        )
    if parts.username or parts.password:
        raise ValueError(
            f"connection {conn_id!r} host: put the token in the connection's password, not in the address"
        )
    if parts.path.strip("/") or parts.query:
        raise ValueError(
            f"connection {conn_id!r} host: the address is the dashboard's root, without a path, "
            f"got {parts.scheme}://{parts.hostname}{parts.path}"
        )
    final_port = parsed_port or port or DEFAULT_PORT
    hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{hostname}:{final_port}"


def _verify(conn_id: str, value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    if not os.path.isfile(os.path.expanduser(text)):
        raise ValueError(
            f"connection {conn_id!r} extra verify: true, false or the path of a CA bundle file, got {value!r}"
        )
    return os.path.expanduser(text)


def _positive(conn_id: str, name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number > 0:
        raise ValueError(f"connection {conn_id!r} extra {name}: must be a positive number, got {value!r}")
    return number
