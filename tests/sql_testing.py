"""A database that needs a password, on a host without a database server: SQLite behind a URL that
carries a user and a password, checked on connect. The operators reach it through their real SQL path
(connection -> URL builder -> SQLAlchemy engine), so the password travels, escaped, inside the URL."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

SCHEME = "pwsqlite"
# database file -> the password it accepts
PASSWORDS: dict[str, str] = {}


class PasswordSQLiteDialect(SQLiteDialect_pysqlite):
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: Any) -> Any:
        # One connection per engine, as GX gives a sqlite:// URL: its query assets' temp tables
        # live in one connection only.
        return sa.pool.StaticPool

    def create_connect_args(self, url: Any) -> Any:
        cargs, cparams = super().create_connect_args(sa.engine.URL.create("sqlite", database=url.database))
        return cargs, {**cparams, "pw_user": url.username, "pw_password": url.password}

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        user, password = cparams.pop("pw_user"), cparams.pop("pw_password")
        if password is None or password != PASSWORDS.get(cargs[0]):
            raise sqlite3.OperationalError(f"password authentication failed for user {user!r}")
        return super().connect(*cargs, **cparams)


registry.register(SCHEME, __name__, "PasswordSQLiteDialect")


def require_password(database: str, password: str) -> None:
    """From now on the SQLite file ``database`` accepts only ``password`` through ``pwsqlite``."""
    PASSWORDS[database] = password


def password_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, database: str, *, login: str, password: str
) -> str:
    """An ``AIRFLOW_CONN_*`` connection (type postgres, driver ``pwsqlite``) to the SQLite file
    ``database`` with ``login`` and ``password``; returns the connection id."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "localhost",
                "login": login,
                "password": password,
                "schema": database,
                "extra": {"sqlalchemy_scheme": SCHEME},
            }
        ),
    )
    return conn_id
