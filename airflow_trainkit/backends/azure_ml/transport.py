"""An azure-core transport that sends every request to one base URL: a local stand-in or a private proxy.

Used only when the connection's extra sets ``api_endpoint``. The SDK still builds its requests for the
public hosts (``management.azure.com``, ``login.microsoftonline.com``, ``<account>.blob.core.windows.net``),
so its bearer policy, retries and pollers behave as in production; only the socket goes elsewhere. The
original host travels in ``X-Forwarded-Host`` so the stand-in can tell the services apart.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def redirecting_transport(endpoint: str) -> Any:
    """A ``RequestsTransport`` whose requests go to ``endpoint`` (``http://host:port``), paths kept.

    The request's own URL is restored after each send: azure-core's retry policy re-sends the same
    request object, and its long-running-operation poller reads ``response.request.url``.
    """
    # azure-core ships with azure-ai-ml; imported only when an Azure ML job is handled.
    from azure.core.pipeline.transport import RequestsTransport

    target = urlsplit(endpoint)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise ValueError(f"api_endpoint must be an http(s)://host[:port] URL, got {endpoint!r}")

    class RedirectingTransport(RequestsTransport):  # type: ignore[misc]
        def send(self, request: Any, **kwargs: Any) -> Any:
            original = request.url
            parts = urlsplit(original)
            request.url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))
            request.headers["X-Forwarded-Host"] = parts.netloc
            try:
                return super().send(request, **kwargs)
            finally:
                request.url = original

    return RedirectingTransport()
