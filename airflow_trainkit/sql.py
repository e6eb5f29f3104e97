"""A SQLAlchemy URL from an Airflow connection, and the secrets to keep out of logs and reports.

The one URL builder of every SQL source (data validation, drift windows): the password is masked
both as written and as the URL spells it, which a builder of its own would forget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def masked_connection_url(conn_id: str) -> tuple[str, list[str]]:
    """``(url, secrets)`` for the connection ``conn_id``, every secret already given to Airflow's
    secrets masker (so no task log shows it); pass ``secrets`` to :func:`scrub` for what is stored.

    :raises ValueError: the connection type has no SQLAlchemy dialect known here.
    """
    from airflow_trainkit._compat import BaseHook, mask_secret

    url, secrets = connection_url(BaseHook.get_connection(conn_id))
    for secret in secrets:
        mask_secret(secret)
    return url, secrets


def scrub(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` with every secret replaced by ``***``, in every string it holds."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value
