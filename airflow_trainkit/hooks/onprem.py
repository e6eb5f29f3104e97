"""Connection for the on-prem GPU backend: where job directories live and which GPUs to use.

The connection is optional: without one, jobs live under ``$AIRFLOW_HOME/trainkit/onprem-jobs``
and the host's GPUs are found with ``nvidia-smi``. With ``"transport": "ssh"`` its ``hosts`` name
the GPU servers, each reached through an Airflow connection of type ``ssh``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import override

from airflow_trainkit._compat import BaseHook

DEFAULT_GRACE_SECONDS = 30.0
TRANSPORTS = ("local", "ssh")
_HOST_KEYS = {"ssh_conn_id", "root", "gpus", "python"}


@dataclass(frozen=True)
class HostSettings:
    """One GPU server of the SSH transport.

    :param ssh_conn_id: an Airflow connection of type ``ssh`` (host, port, user, key, host key).
    :param root: the job root on that host, an absolute path there.
    :param gpus: its GPU inventory (``"0:A100,1:A100"``, ``"0,1"``, ``"none"``); ``None`` to ask
        ``nvidia-smi`` on the host.
    :param python: its Python 3.11+ interpreter, which runs the runner and ``python`` commands.
    """

    ssh_conn_id: str
    root: str
    gpus: str | None = None
    python: str = "python3"


@dataclass(frozen=True)
class OnPremSettings:
    """Resolved settings of one on-prem connection.

    :param root: folder holding one directory per job; the triggerer must see it too.
    :param gpus: ``"0,1"`` to restrict the GPUs jobs may take, ``"none"`` for a CPU-only host,
        ``None`` to ask ``nvidia-smi``.
    :param grace_seconds: time between SIGTERM and SIGKILL when a job is stopped.
    :param transport: where jobs run: ``"local"`` (this host) or ``"ssh"`` (the ``hosts``).
    :param hosts: the GPU servers of the SSH transport, in order of preference.
    """

    root: Path
    gpus: str | None = None
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    transport: str = "local"
    hosts: tuple[HostSettings, ...] = ()


class OnPremGpuHook(BaseHook):
    """Reads an on-prem connection (type ``trainkit_onprem``) into :class:`OnPremSettings`.

    Extras: ``root``, ``gpus``, ``grace_seconds``, ``transport`` (``"local"`` or ``"ssh"``) and,
    for ``"ssh"``, ``hosts``: a list of ``{"ssh_conn_id", "root", "gpus", "python"}``. ``TRAINKIT_ONPREM_ROOT`` and
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
    @override
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "login", "password", "port", "host"],
            "relabeling": {},
            "placeholders": {
                "extra": '{"root": "/shared/trainkit-jobs", "gpus": "0,1", "grace_seconds": 30}',
            },
        }

    def settings(self) -> OnPremSettings:
        """The connection's settings, or the embedded defaults without one.

        :raises ValueError: naming the connection, the extra and its bad value.
        """
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
        if transport not in TRANSPORTS:
            raise ValueError(
                f"connection {self.conn_id!r}: extra transport {transport!r} is not supported; "
                f"use one of {', '.join(TRANSPORTS)}"
            )
        gpus = extra.get("gpus")
        hosts = self._hosts(extra.get("hosts")) if transport == "ssh" else ()
        return OnPremSettings(
            root=Path(root).expanduser(),
            gpus=None if gpus is None else str(gpus),
            grace_seconds=grace,
            transport=transport,
            hosts=hosts,
        )

    def _hosts(self, value: Any) -> tuple[HostSettings, ...]:
        """The ``hosts`` extra, checked: every field named with its bad value."""
        from airflow_trainkit.backends.onprem.transport import parse_gpu_list

        where = f"connection {self.conn_id!r}: extra hosts"
        if not isinstance(value, list) or not value:
            raise ValueError(
                f"{where} must be a non-empty list of {{ssh_conn_id, root, gpus}}, got {value!r}"
            )
        hosts = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ValueError(f"{where}[{i}] must be an object, got {item!r}")
            unknown = sorted(set(item) - _HOST_KEYS)
            if unknown:
                raise ValueError(f"{where}[{i}]: unknown key(s) {unknown}; known: {sorted(_HOST_KEYS)}")
            conn_id = item.get("ssh_conn_id")
            if not isinstance(conn_id, str) or not conn_id.strip():
                raise ValueError(f"{where}[{i}].ssh_conn_id must be a connection id, got {conn_id!r}")
            root = item.get("root")
            if not isinstance(root, str) or not root.startswith("/"):
                raise ValueError(f"{where}[{i}].root must be an absolute path on the host, got {root!r}")
            gpus = item.get("gpus")
            if gpus is not None:
                parse_gpu_list(gpus)  # raises ValueError naming the bad item
                gpus = (
                    gpus
                    if isinstance(gpus, str)
                    else ",".join(f"{g['index']}:{g.get('name', '')}" for g in parse_gpu_list(gpus))
                )
            python = item.get("python", "python3")
            if not isinstance(python, str) or not python.strip():
                raise ValueError(f"{where}[{i}].python must be an interpreter path or name, got {python!r}")
            hosts.append(
                HostSettings(ssh_conn_id=conn_id, root=root.rstrip("/") or "/", gpus=gpus, python=python)
            )
        names = [h.ssh_conn_id for h in hosts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{where}: ssh_conn_id {duplicates[0]!r} is listed twice")
        return tuple(hosts)
