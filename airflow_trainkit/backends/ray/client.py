"""The Ray Jobs REST API over httpx (a dependency of Airflow itself): no ``ray`` import anywhere.

One :class:`RayJobsClient` per backend object: a blocking ``httpx.Client`` for the worker, and one
``httpx.AsyncClient`` per event loop for the triggerer, opened by the first call in that loop and
closed when the loop cancels the task that holds it (as the SageMaker backend keeps its aiobotocore
client). Every answer that is not a success becomes a :class:`RayApiError` or, for a refused token
or an address that does not answer, a :class:`~airflow_trainkit.exceptions.TrainingJobUnreachable`
naming the connection. The token travels only in a header and never reaches a message.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any

from airflow_trainkit.exceptions import TrainingJobUnreachable, TrainkitError

if TYPE_CHECKING:
    from airflow_trainkit.hooks.ray import RaySettings

# Answers worth another try: throttling and the 5xx a busy or restarting head node gives.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
# The first submit on a fresh cluster waits for the head node's job agent (seen: 5-10 s).
SUBMIT_TIMEOUT = 120.0
_MAX_CONNECTIONS = 20


class RayApiError(TrainkitError):
    """The Jobs API answered with an error status.

    :param status: the HTTP status.
    :param text: the last line of Ray's answer (its tracebacks end with the reason).
    """

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        super().__init__(f"Ray Jobs API {method} {path} answered {status}: {text}")
        self.status = status
        self.text = text

    @property
    def transient(self) -> bool:
        """Throttling or a 5xx of a busy or restarting head node: worth another try."""
        return self.status in TRANSIENT_STATUS and not self.already_exists

    @property
    def already_exists(self) -> bool:
        """A submit refused because a job of that name exists (a retry re-attaches to it)."""
        return "already exists" in self.text

    @property
    def not_found(self) -> bool:
        """No job has the name asked for."""
        return self.status == 404


def _reason(text: str) -> str:
    """The last non-empty line of an answer, short: Ray puts whole tracebacks in error bodies."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "(empty answer)")[:500]


class RayJobsClient:
    """Calls of one connection's Jobs API.

    :param settings: the connection's resolved settings.
    """

    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings
        self._sync: Any = None
        self._sync_lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._holders: set[asyncio.Task[None]] = set()

    # -- clients ----------------------------------------------------------------------------------

    def _client_args(self) -> dict[str, Any]:
        import httpx  # Airflow's own dependency; imported when a Ray job is handled

        return {
            "base_url": self.settings.address,
            "headers": self.settings.headers(),
            "verify": self.settings.verify,
            "timeout": httpx.Timeout(self.settings.timeout, connect=min(self.settings.timeout, 10.0)),
            "limits": httpx.Limits(max_connections=_MAX_CONNECTIONS),
            "follow_redirects": False,
        }

    @property
    def sync(self) -> Any:
        """The blocking ``httpx.Client`` of the worker's calls, made on first use."""
        import httpx

        with self._sync_lock:
            if self._sync is None:
                self._sync = httpx.Client(**self._client_args())
            return self._sync

    async def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        ready = self._async.get(loop)
        if ready is None:
            ready = self._async[loop] = loop.create_future()
            holder = loop.create_task(self._hold(ready), name="trainkit-ray-client")
            self._holders.add(holder)
            holder.add_done_callback(self._holders.discard)
        return await asyncio.shield(ready)

    async def _hold(self, ready: asyncio.Future[Any]) -> None:
        """Open this loop's client and keep it open until the loop cancels this task."""
        import httpx

        try:
            async with httpx.AsyncClient(**self._client_args()) as client:
                ready.set_result(client)
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        except Exception as err:  # a bad CA bundle path: every waiter sees the error
            if not ready.done():
                ready.set_exception(err)

    def close(self) -> None:
        """Close the blocking client (each event loop's async client closes with its loop)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- calls ------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One blocking call; the answer's JSON (``None`` for an empty body)."""
        import httpx

        try:
            response = self.sync.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise self._unreachable(err) from None
        return self._answer(method, path, response)

    async def arequest(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call in the running event loop; the answer's JSON (``None`` for an empty body)."""
        import httpx

        client = await self._async_client()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise self._unreachable(err) from None
        return self._answer(method, path, response)

    def _answer(self, method: str, path: str, response: Any) -> Any:
        if response.status_code in (401, 403):
            raise TrainingJobUnreachable(
                f"authentication failed: the Ray cluster at {self.settings.address} refused "
                f"{'the token' if self.settings.token else 'a call without a token'} of connection "
                f"{self.settings.conn_id!r} (HTTP {response.status_code}); set the cluster's token as the "
                "connection's password",
                where=f"connection {self.settings.conn_id!r} password",
                transient=False,
            )
        if response.status_code >= 400:
            raise RayApiError(method, path, response.status_code, _reason(response.text))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RayApiError(
                method,
                path,
                response.status_code,
                f"not JSON: is connection {self.settings.conn_id!r} host {self.settings.address} a Ray "
                "dashboard?",
            ) from None

    def _unreachable(self, err: BaseException) -> TrainingJobUnreachable:
        return TrainingJobUnreachable(
            f"connection {self.settings.conn_id!r} host {self.settings.address}: the Ray Jobs API did not "
            f"answer ({type(err).__name__}: {err})",
            where=f"connection {self.settings.conn_id!r} host",
            transient=True,
        )
