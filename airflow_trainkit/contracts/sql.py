"""A SQLAlchemy URL from an Airflow connection, and the secrets to keep out of logs and reports."""

from __future__ import annotations

from typing import Any

# Airflow connection type -> SQLAlchemy dialect (with its usual driver). A connection's extra may
# name another with ``sqlalchemy_scheme`` (the common.sql convention), e.g. ``postgresql+psycopg``.
DIALECTS = {
    "sqlite": "sqlite",
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mssql": "mssql+pymssql",
    "oracle": "oracle+oracledb",
    "redshift": "redshift+redshift_connector",
    "snowflake": "snowflake",
    "trino": "trino",
    "databricks": "databricks",
}
# Extra keys that belong to Airflow or to hooks, not to the database driver's URL query.
_NOT_URL_QUERY = {"sqlalchemy_scheme", "sqlalchemy_query", "engine_kwargs", "log_sql", "placeholder"}


def connection_url(conn: Any) -> tuple[str, list[str]]:
    """``(url, secrets)`` for an Airflow ``Connection``: the URL with its password, and the strings
    (password, URL) that must be masked and scrubbed. Never log or store the URL itself.

    :raises ValueError: the connection type has no SQLAlchemy dialect known here.
    """
    import sqlalchemy as sa  # heavy-ish: only when a SQL source is validated

    extra = dict(getattr(conn, "extra_dejson", None) or {})
    conn_type = (conn.conn_type or "").lower()
    scheme = extra.get("sqlalchemy_scheme") or DIALECTS.get(conn_type)
    if not scheme:
        raise ValueError(
            f"connection {conn.conn_id!r} has type {conn.conn_type!r}, which has no SQLAlchemy dialect here; "
            f"set extra 'sqlalchemy_scheme' (e.g. 'postgresql+psycopg') or use one of: {', '.join(sorted(DIALECTS))}"
        )
    if scheme.startswith("sqlite"):
        database = conn.schema or conn.host or ""
        if database and not database.startswith("/") and database != ":memory:" and conn.host and conn.schema:
            database = f"{conn.host}/{conn.schema}"
        url = sa.engine.URL.create(scheme, database=database or None)
    else:
        query = {k: str(v) for k, v in (extra.get("sqlalchemy_query") or {}).items()}
        query.update(
            {
                k: str(v)
                for k, v in extra.items()
                if k not in _NOT_URL_QUERY and isinstance(v, str | int | float)
            }
        )
        url = sa.engine.URL.create(
            scheme,
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query=query,
        )
    rendered = url.render_as_string(hide_password=False)
    secrets = [s for s in (conn.password, rendered) if s]
    if conn.password:
        # The password as it appears inside the URL (escaped) is a secret too.
        from urllib.parse import quote, quote_plus

        prefix, _, suffix = url.render_as_string(hide_password=True).partition("***")
        in_url = rendered[len(prefix) : len(rendered) - len(suffix)]
        secrets += [v for v in {in_url, quote_plus(conn.password), quote(conn.password, safe="")} if v]
    return rendered, secrets
