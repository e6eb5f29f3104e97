"""On-prem jobs on a GPU server over SSH: the transport, with asyncssh, and its shared connections.

Every operation is one remote command: the host's Python runs :mod:`.agent`, whose source and
arguments (the job's environment among them) travel on the channel's stdin. A process keeps one
connection per host and event loop: the triggerer's triggers share their loop's, and the workers'
blocking calls share one kept by a background loop thread. A dropped connection is made anew on
the next call. Host keys are verified unless the connection opts out explicitly.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import logging
import os
import shlex
import sys
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit.backends.onprem.transport import Transport, parse_gpu_list
from airflow_trainkit.exceptions import TrainingJobUnreachable

if TYPE_CHECKING:
    from collections.abc import Coroutine

log = logging.getLogger(__name__)

CONN_TYPE = "ssh"
# Seconds one remote operation may take; a hung host is then reported unreachable, not waited on.
CALL_TIMEOUT = 60.0
CONNECT_TIMEOUT = 20.0
KEEPALIVE_SECONDS = 15.0
MIN_PYTHON = (3, 11)


class RemoteOperationFailed(RuntimeError):
    """The agent on the GPU host answered with an error (a file it could not write, ...)."""


@dataclass(frozen=True)
class SshTarget:
    """One GPU host's connection, read from an Airflow connection of type ``ssh``.

    Key material and passwords are held out of ``repr`` and never put in a message.
    """

    conn_id: str
    host: str
    port: int
    username: str | None
    key_file: str | None = None
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    host_key: str | None = None
    known_hosts: str | None = None
    verify_host_key: bool = True
    connect_timeout: float = CONNECT_TIMEOUT

    @property
    def label(self) -> str:
        """How messages name the host: address, port and connection id (never a credential)."""
        return f"{self.host}:{self.port} (connection {self.conn_id!r})"

    def connect_options(self) -> dict[str, Any]:
        """asyncssh's ``connect`` arguments."""
        import asyncssh  # the [ssh] extra; only a transport that is used imports it

        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "connect_timeout": self.connect_timeout,
            "keepalive_interval": KEEPALIVE_SECONDS,
            "keepalive_count_max": 3,
            "agent_path": None,
        }
        if self.username:
            options["username"] = self.username
        if self.private_key:
            options["client_keys"] = [asyncssh.import_private_key(self.private_key, self.passphrase)]
        elif self.key_file:
            options["client_keys"] = [self.key_file]
            if self.passphrase:
                options["passphrase"] = self.passphrase
        if self.password:
            options["password"] = self.password
        if not self.verify_host_key:
            options["known_hosts"] = None
        elif self.host_key:
            options["known_hosts"] = ([asyncssh.import_public_key(self.host_key)], [], [])
        elif self.known_hosts:
            options["known_hosts"] = str(Path(self.known_hosts).expanduser())
        # else asyncssh's default: ~/.ssh/known_hosts, and no key is trusted without one.
        return options


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def read_target(conn_id: str) -> SshTarget:
    """The host behind an Airflow connection of type ``ssh``, with the SSH provider's extras:
    ``key_file``, ``private_key``, ``private_key_passphrase``, ``host_key``, ``no_host_key_check``,
    ``conn_timeout``; and ``known_hosts`` (a file) of our own.

    Unlike the SSH provider (whose ``no_host_key_check`` defaults to true), host keys are checked
    unless ``no_host_key_check`` is set to true explicitly.

    :raises ValueError: the connection is not of type ``ssh`` or has no host.
    """
    from airflow_trainkit._compat import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type != CONN_TYPE:
        raise ValueError(
            f"hosts[].ssh_conn_id {conn_id!r}: connection type {conn.conn_type!r} is not {CONN_TYPE!r}"
        )
    if not conn.host:
        raise ValueError(f"hosts[].ssh_conn_id {conn_id!r}: the connection names no host")
    extra = conn.extra_dejson
    from airflow_trainkit._compat import mask_secret

    for secret in (extra.get("private_key"), extra.get("private_key_passphrase"), conn.password):
        if secret:
            mask_secret(secret)
    timeout = extra.get("conn_timeout", CONNECT_TIMEOUT)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(
            f"connection {conn_id!r}: extra conn_timeout must be seconds, got {timeout!r}"
        ) from None
    return SshTarget(
        conn_id=conn_id,
        host=conn.host,
        port=int(conn.port or 22),
        username=conn.login or None,
        key_file=extra.get("key_file"),
        private_key=extra.get("private_key"),
        passphrase=extra.get("private_key_passphrase"),
        password=conn.password or None,
        host_key=extra.get("host_key"),
        known_hosts=extra.get("known_hosts"),
        verify_host_key=not _flag(extra.get("no_host_key_check", False)),
        connect_timeout=timeout,
    )


@functools.cache
def agent_prefix() -> str:
    """The first line of every request's stdin: the agent's source as a JSON string (read once)."""
    from airflow_trainkit.backends.onprem import agent

    return json.dumps(Path(agent.__file__).read_text()) + "\n"


class _Pool:
    """One connection per (event loop, host) in this process, made on first use, remade once dropped.

    Keyed by the loop object itself (weakly), so a loop that ends takes its connections with it and
    a new loop never inherits one bound to an old loop.
    """

    def __init__(self) -> None:
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self.locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        self.opened = 0  # connections made: the tests hold the sharing to it

    @staticmethod
    def key(target: SshTarget) -> str:
        return f"{target.conn_id}@{target.host}:{target.port}"

    async def get(self, target: SshTarget) -> Any:
        loop = asyncio.get_running_loop()
        connections = self.by_loop.setdefault(loop, {})
        lock = self.locks.setdefault(loop, {}).setdefault(self.key(target), asyncio.Lock())
        async with lock:
            conn = connections.get(self.key(target))
            if conn is not None and not conn.is_closed():
                return conn
            conn = await _connect(target)
            self.opened += 1
            connections[self.key(target)] = conn
            return conn

    def drop(self, target: SshTarget, conn: Any) -> None:
        connections = self.by_loop.get(asyncio.get_running_loop(), {})
        if connections.get(self.key(target)) is conn:
            del connections[self.key(target)]
        conn.close()


POOL = _Pool()


async def _connect(target: SshTarget) -> Any:
    import asyncssh  # the [ssh] extra

    asyncssh_log = logging.getLogger("asyncssh")
    if asyncssh_log.level == logging.NOTSET:  # it logs every channel at INFO: one line per poll
        asyncssh_log.setLevel(logging.WARNING)
    try:
        return await asyncssh.connect(**target.connect_options())
    except asyncssh.HostKeyNotVerifiable as err:
        raise TrainingJobUnreachable(
            f"on-prem host {target.label}: its host key is not trusted ({err.reason}); set the "
            "connection's host_key or known_hosts to the host's key, after checking it",
            where=target.label,
        ) from None
    except asyncssh.PermissionDenied:
        raise TrainingJobUnreachable(
            f"on-prem host {target.label} refused user {target.username!r}'s key or password",
            where=target.label,
        ) from None
    except (TimeoutError, OSError, asyncssh.Error) as err:
        raise TrainingJobUnreachable(
            f"on-prem host {target.label} cannot be reached: {type(err).__name__}: {err}",
            where=target.label,
            transient=True,
        ) from None


class _Bridge:
    """A background event loop for blocking callers (workers), so they share connections too."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = -1

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        with self.lock:
            if self.loop is None or self.pid != os.getpid():  # a forked child starts its own
                self.loop = asyncio.new_event_loop()
                self.pid = os.getpid()
                threading.Thread(target=self.loop.run_forever, name="trainkit-ssh", daemon=True).start()
            loop = self.loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


BRIDGE = _Bridge()


class SshTransport(Transport):
    """Jobs on one GPU host over SSH.

    :param ssh_conn_id: an Airflow connection of type ``ssh``.
    :param root: the job root on the host (a path there).
    :param gpus: the host's GPU inventory (``"0:A100,1:A100"``, ``"none"``); ``None`` to ask
        ``nvidia-smi`` on the host.
    :param python: the host's interpreter (3.11 or later) for the runner and ``python`` commands.
    """

    ships_runner = True

    def __init__(self, ssh_conn_id: str, root: str, gpus: str | None = None, python: str = "python3") -> None:
        self.ssh_conn_id = ssh_conn_id
        self.root = root
        self.configured_gpus = gpus
        self.python_path = python
        self._target: SshTarget | None = None

    @property
    @override
    def host(self) -> str:
        return self.ssh_conn_id

    def target(self) -> SshTarget:
        """The host's connection, read on first use (a blocking connection lookup) and kept."""
        if self._target is None:
            self._target = read_target(self.ssh_conn_id)
        return self._target

    @override
    def python(self) -> str:
        return self.python_path

    @override
    def call(self, op: str, **args: Any) -> Any:
        target = self.target()  # read here, in the caller's thread: connection lookups block
        return BRIDGE.run(self._call(target, op, args))

    @override
    async def call_async(self, op: str, **args: Any) -> Any:
        if "asyncssh" not in sys.modules:  # its first import takes longer than a loop may block
            await asyncio.to_thread(importlib.import_module, "asyncssh")
        target = self._target if self._target is not None else await asyncio.to_thread(self.target)
        return await self._call(target, op, args)

    async def _call(self, target: SshTarget, op: str, args: dict[str, Any]) -> Any:
        import asyncssh  # the [ssh] extra

        command = f"{shlex.quote(self.python_path)} -c {shlex.quote(agent_bootstrap())}"
        stdin = agent_prefix() + json.dumps({"op": op, "args": args})
        for attempt in (1, 2):
            conn = await POOL.get(target)
            try:
                done = await conn.run(command, input=stdin, check=False, timeout=CALL_TIMEOUT)
                break
            except (TimeoutError, OSError, asyncssh.Error) as err:
                # A dropped connection (sshd restarted, network blip): make a new one, once.
                POOL.drop(target, conn)
                if attempt == 2:
                    raise TrainingJobUnreachable(
                        f"on-prem host {target.label}: {op} failed: {type(err).__name__}: {err}",
                        where=target.label,
                        transient=True,
                    ) from None
        if done.exit_status == 127:
            raise TrainingJobUnreachable(
                f"on-prem host {target.label} has no {self.python_path!r}: set hosts[].python to its Python 3.11+",
                where=target.label,
            )
        try:
            answer = json.loads(done.stdout or "")
        except ValueError:
            detail = (str(done.stderr or "").strip().splitlines() or ["no output"])[-1]
            raise RemoteOperationFailed(
                f"on-prem host {target.label}: {op} failed (exit {done.exit_status}): {detail[:300]}"
            ) from None
        if not answer.get("ok"):
            raise RemoteOperationFailed(f"on-prem host {target.label}: {op} failed: {answer.get('error')}")
        return answer["result"]

    @override
    def check_python(self) -> dict[str, Any]:
        """The host answers and its Python is recent enough for the runner.

        :raises ValueError: the host's Python is older than 3.11.
        """
        hello = self.call("hello")
        if tuple(hello["python"][:2]) < MIN_PYTHON:
            raise ValueError(
                f"hosts[].python {self.python_path!r} on {self.target().label} is Python "
                f"{'.'.join(map(str, hello['python']))}; the runner needs 3.11 or later"
            )
        return hello

    @override
    def gpus(self) -> list[dict[str, str]]:
        if self.configured_gpus is not None:
            return parse_gpu_list(self.configured_gpus)
        return list(self.call("gpus"))


def agent_bootstrap() -> str:
    """The ``python -c`` program each remote call runs: it reads the agent's source from stdin and runs it."""
    from airflow_trainkit.backends.onprem.agent import BOOTSTRAP

    return BOOTSTRAP
