"""Connection for the on-prem GPU backend: where job directories live and which GPUs to use.

The connection is optional: without one, jobs live under ``$AIRFLOW_HOME/trainkit/onprem-jobs``
and the host's GPUs are found with ``nvidia-smi``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_trainkit._compat import BaseHook

DEFAULT_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class OnPremSettings:
    """Resolved settings of one on-prem connection.

    :param root: folder holding one directory per job; the triggerer must see it too.
    :param gpus: ``"0,1"`` to restrict the GPUs jobs may take, ``"none"`` for a CPU-only host,
        ``None`` to ask ``nvidia-smi``.
    :param grace_seconds: time between SIGTERM and SIGKILL when a job is stopped.
    :param transport: where jobs run; ``"local"`` (this host) for now.
    """

    root: Path
    gpus: str | None = None
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    transport: str = "local"


class OnPremGpuHook(BaseHook):
    """Reads an on-prem connection (type ``trainkit_onprem``) into :class:`OnPremSettings`.

    Extras: ``root``, ``gpus``, ``grace_seconds``, ``transport``. ``TRAINKIT_ONPREM_ROOT`` and
    ``TRAINKIT_ONPREM_GPUS`` set the defaults for hosts without a connection.

    :param conn_id: the connection, or ``None`` for the embedded defaults.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "trainkit_onprem_default"
    conn_type = "trainkit_onprem"
    hook_name = "Trainkit on-prem GPUs"

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login", "password", "port", "host"],
            "relabeling": {},
            "placeholders": {
                "extra": '{"root": "/shared/trainkit-jobs", "gpus": "0,1", "grace_seconds": 30}',
            },
        }

    def settings(self) -> OnPremSettings:
        extra: dict[str, Any] = {}
        if self.conn_id:
            extra = self.get_connection(self.conn_id).extra_dejson
        root = extra.get("root") or os.environ.get("TRAINKIT_ONPREM_ROOT")
        if not root:
            from airflow_trainkit.home import trainkit_home

            root = trainkit_home() / "onprem-jobs"
        grace = extra.get("grace_seconds", DEFAULT_GRACE_SECONDS)
        try:
            grace = float(grace)
        except (TypeError, ValueError):
            raise ValueError(
                f"connection {self.conn_id!r}: extra grace_seconds must be a number, got {grace!r}"
            ) from None
        transport = extra.get("transport", "local")
        if transport != "local":
            raise ValueError(
                f"connection {self.conn_id!r}: extra transport {transport!r} is not supported; use 'local'"
            )
        gpus = extra.get("gpus")
        return OnPremSettings(
            root=Path(root).expanduser(),
            gpus=None if gpus is None else str(gpus),
            grace_seconds=grace,
            transport=transport,
        )
