"""The one SQL URL builder (validation and drift): the URL, its secrets, and their masking."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace
from urllib.parse import quote_plus

import pytest
from airflow.sdk.log import redact
from sql_testing import password_connection, require_password

from airflow_trainkit.operators.drift import read_sql
from airflow_trainkit.sql import connection_url, masked_connection_url


def test_connection_url_lists_its_secrets() -> None:
    conn = SimpleNamespace(
        conn_id="c",
        conn_type="postgres",
        host="db",
        port=5432,
        login="u",
        password="p@ss word",
        schema="x",
        extra_dejson={"sslmode": "require"},
    )
    url, secrets = connection_url(conn)
    assert url.startswith("postgresql://u:p%40ss") and url.endswith("word@db:5432/x?sslmode=require")
    assert "p@ss word" in secrets and url in secrets
    assert url[len("postgresql://u:") : url.index("@db")] in secrets  # the password as the URL spells it
    sqlite = SimpleNamespace(
        conn_id="s",
        conn_type="sqlite",
        host="",
        port=None,
        login=None,
        password=None,
        schema="/tmp/x.db",
        extra_dejson={},
    )
    assert connection_url(sqlite) == ("sqlite:////tmp/x.db", ["sqlite:////tmp/x.db"])
    with pytest.raises(ValueError, match="type 'http'.*sqlalchemy_scheme"):
        connection_url(SimpleNamespace(conn_id="h", conn_type="http", extra_dejson={}))


def test_the_password_is_masked_as_written_and_as_the_url_spells_it(monkeypatch):
    password = "tk-mask@/:pw 1"
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_MASKED",
        json.dumps(
            {"conn_type": "postgres", "login": "u", "password": password, "host": "db", "schema": "x"}
        ),
    )
    url, secrets = masked_connection_url("pg_masked")
    in_url = url[len("postgresql://u:") : url.index("@db")]
    assert in_url != password and in_url in secrets
    for spelling in (password, in_url, quote_plus(password), url):
        assert redact(f"<{spelling}>") == "<***>", spelling


def test_drift_reads_sql_through_the_shared_builder(tmp_path, monkeypatch):
    password = "tk-drift@/:pw-2"
    database = str(tmp_path / "events.db")
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE events (x INTEGER)")
        conn.executemany("INSERT INTO events VALUES (?)", [(1,), (2,)])
    require_password(database, password)
    password_connection(monkeypatch, "drift_pw", database, login="u", password=password)
    assert read_sql("drift_pw", "SELECT x FROM events")["x"].tolist() == [1, 2]
    assert redact("<tk-drift%40%2F%3Apw-2>") == "<***>"  # masked as the URL spells it, too
    # A wrong password fails with the database's own message and no spelling of the password.
    password_connection(monkeypatch, "drift_wrong", database, login="u", password="tk-wrong@/:pw-3")
    with pytest.raises(OSError) as err:
        read_sql("drift_wrong", "SELECT x FROM events")
    assert str(err.value) == (
        "cannot read SQL from connection 'drift_wrong': password authentication failed for user 'u'"
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chain shown
