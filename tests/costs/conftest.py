"""A local stand-in for the three price APIs, serving the recorded answers in tests/costs/recorded
(real in shape and numbers; where each figure comes from: tests/costs/recorded/SOURCES.md)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

RECORDED = Path(__file__).parent / "recorded"


class PriceApiServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.overrides: dict[str, Any] = {}  # route -> body to serve instead of the recording
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # Azure Retail Prices and Google Cloud Billing Catalog
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append({"method": "GET", "path": parts.path, "query": query})
                if parts.path == "/api/retail/prices":
                    route = "azure2" if "$skip" in query else "azure1"
                    name = f"azure_retail_prices_page{route[-1]}.json"
                elif parts.path.startswith("/v1/services/") and parts.path.endswith("/skus"):
                    route = "google2" if query.get("pageToken") else "google1"
                    name = f"gcp_billing_skus_page{route[-1]}.json"
                else:
                    self.send_error(404)
                    return
                if route in server.overrides:
                    self._send(server.overrides[route])
                else:
                    self._send((RECORDED / name).read_bytes())

            def do_POST(self) -> None:  # AWS Price List, JSON 1.1 protocol
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                target = self.headers.get("X-Amz-Target")
                server.requests.append(
                    {
                        "method": "POST",
                        "target": target,
                        "body": body,
                        "auth": self.headers.get("Authorization", ""),
                    }
                )
                if target != "AWSPriceListService.GetProducts":
                    self.send_error(400)
                    return
                # Like the real API, answer only the region asked for (TERM_MATCH on regionCode).
                filters = {f.get("Field"): f.get("Value") for f in body.get("Filters") or []}
                region = filters.get("regionCode", "")
                number = 2 if body.get("NextToken") else 1
                route = f"aws{number}"
                if route in server.overrides:
                    self._send(server.overrides[route], "application/x-amz-json-1.1")
                    return
                recorded = RECORDED / f"aws_pricing_get_products_{region}_page{number}.json"
                page = (
                    recorded.read_bytes()
                    if recorded.exists()
                    else b'{"FormatVersion": "aws_v1", "PriceList": []}'
                )
                self._send(page, "application/x-amz-json-1.1")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def fetch(self) -> Any:
        """The real HTTPS GET of the refresh, sent to this server instead of the public hosts."""
        from airflow_trainkit.costs.refresh import http_get_json

        def get(url: str) -> Any:
            for host in (
                "https://prices.azure.com:443",  # NextPageLink names the port
                "https://prices.azure.com",
                "https://cloudbilling.googleapis.com",
            ):
                url = url.replace(host, self.url)
            return http_get_json(url, timeout=10)

        return get

    def pricing_client(self) -> Any:
        """boto3's real pricing client, pointed at this server: the real request is built and signed."""
        import boto3

        return boto3.client(
            "pricing",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id="AKIATESTTESTTEST",
            aws_secret_access_key="test-secret-not-real",
        )


@pytest.fixture(scope="session")
def price_api() -> Iterator[PriceApiServer]:
    server = PriceApiServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def price_server(price_api: PriceApiServer) -> Iterator[PriceApiServer]:
    price_api.requests.clear()
    price_api.overrides.clear()
    yield price_api
    price_api.overrides.clear()


@pytest.fixture
def trainkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "trainkit"
    monkeypatch.setenv("TRAINKIT_HOME", str(home))
    monkeypatch.delenv("TRAINKIT_PRICE_CATALOG", raising=False)
    monkeypatch.delenv("TRAINKIT_ONPREM_COSTS", raising=False)
    monkeypatch.delenv("TRAINKIT_PRICE_MAX_AGE", raising=False)
    monkeypatch.delenv("TRAINKIT_PRICE_MAX_AGE_DAYS", raising=False)
    return home
