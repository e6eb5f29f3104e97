"""Where an on-prem job's processes run and its job directory lives: the transport seam.

``LocalTransport`` runs on this host; ``SshTransport`` (:mod:`.ssh`) on a GPU server over SSH.
The backend talks only to this interface: what it does on the host lives in :mod:`.agent`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import Any, Protocol

from typing_extensions import override


class Transport(Protocol):
    """What the on-prem backend needs from the host that runs its jobs.

    Every operation on the host is one :func:`~airflow_trainkit.backends.onprem.agent.dispatch`
    call, made in this process (local) or on the GPU host (SSH): one call, one round trip.
    """

    #: whether the runner is shipped into each job directory (remote) or imported (local).
    ships_runner: bool

    @property
    def host(self) -> str:
        """How results, handles and errors name the host."""
        ...

    def call(self, op: str, **args: Any) -> Any:
        """Run the agent operation ``op`` on the host and return its JSON answer (blocking)."""
        ...

    async def call_async(self, op: str, **args: Any) -> Any:
        """:meth:`call` for the triggerer's event loop: it never blocks the loop."""
        ...

    def python(self) -> str:
        """The interpreter that replaces ``python`` in a job's command and runs the runner."""
        ...

    def gpus(self) -> list[dict[str, str]]:
        """The host's GPUs: the configured inventory, else what ``nvidia-smi`` lists there."""
        ...

    def check_python(self) -> dict[str, Any]:
        """The host answers, with a Python the runner can use (its version, host name)."""
        ...


class LocalTransport(Transport):
    """Jobs run on this host, as their own session, outliving the task process that started them.

    :param gpus: the GPU inventory (``"0,1"``, ``"0:A100,1:A100"``, ``"none"``); ``None`` for
        ``TRAINKIT_ONPREM_GPUS`` if set, else ``nvidia-smi``.
    """

    ships_runner = False

    def __init__(self, gpus: str | None = None) -> None:
        self.configured_gpus = gpus

    @property
    @override
    def host(self) -> str:
        return socket.gethostname()

    @override
    def call(self, op: str, **args: Any) -> Any:
        from airflow_trainkit.backends.onprem.agent import dispatch

        return dispatch(op, args)

    @override
    async def call_async(self, op: str, **args: Any) -> Any:
        return await asyncio.to_thread(self.call, op, **args)

    @override
    def python(self) -> str:
        return sys.executable  # the worker's own interpreter, with trainkit installed

    @override
    def check_python(self) -> dict[str, Any]:
        return dict(self.call("hello"))  # this interpreter runs trainkit: it is recent enough

    @override
    def gpus(self) -> list[dict[str, str]]:
        configured = self.configured_gpus
        if configured is None:
            configured = os.environ.get("TRAINKIT_ONPREM_GPUS")
        if configured is not None:
            return parse_gpu_list(configured)
        return list(self.call("gpus"))


def parse_gpu_list(text: str | list[Any]) -> list[dict[str, str]]:
    """A GPU inventory: ``"0,1"`` -> two GPUs of unknown model; ``"0:A100,1:T4"`` names their models;
    ``""`` or ``"none"`` -> no GPU; a list of ``{"index", "name"}`` dicts is taken as it is."""
    if isinstance(text, list):
        items = [f"{g.get('index')}:{g.get('name') or ''}" if isinstance(g, dict) else str(g) for g in text]
        text = ",".join(items)
    text = str(text).strip()
    if text.lower() in ("", "none"):
        return []
    gpus = []
    for item in text.split(","):
        index, _, name = item.strip().partition(":")
        if not index.strip().isdigit():
            raise ValueError(
                f"GPU list {text!r}: {item.strip()!r} is not a GPU index; expected e.g. '0,1', "
                "'0:A100,1:A100' or 'none'"
            )
        gpus.append({"index": index.strip(), "name": name.strip()})
    return gpus


def process_start_ticks(pid: int) -> int | None:
    """The start time of a process of this host (see :func:`agent.process_start_ticks`)."""
    from airflow_trainkit.backends.onprem.agent import process_start_ticks as ticks

    return ticks(pid)


SIGTERM = signal.SIGTERM
SIGKILL = signal.SIGKILL
