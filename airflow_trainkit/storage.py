"""Reading tables and writing files at a URI: local paths, ``file://`` and Airflow object storage.

Writes are whole or not at all: local files are written to a temporary sibling and renamed;
on object stores each object is put in one request and a folder of files gets its ``_SUCCESS``
marker last, so a reader that checks for it never sees half a report.

Two kinds of writes, by who may read them. Artifacts and reports (``write_bytes_atomic``,
``write_folder_atomic``) honour the umask: others on the host, an MLflow server or a web server may
read them. Job-control files (``write_private_atomic``, ``open_private_append``, ``make_private_dir``)
may hold a handle or what a job prints, so they are 0600 in a 0700 directory, whatever the umask.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlparse

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pandas as pd

SUCCESS_MARKER = "_SUCCESS"
# An artifact asks for what plain open() asks for and the umask trims it; private modes are exact.
ARTIFACT_FILE_MODE = 0o666
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a plain path or a ``file://`` URI."""
    scheme = urlparse(str(uri)).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(uri: str) -> Path:
    """The filesystem path of a local URI (``file:///x`` or ``/x``)."""
    parsed = urlparse(str(uri))
    if parsed.scheme == "file":
        return Path(parsed.path)
    return Path(uri).expanduser()


def join_uri(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended, keeping the scheme."""
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])


def write_bytes_atomic(uri: str, data: bytes) -> str:
    """Write one artifact or report file whole or not at all; returns the URI written.

    A local file's mode honours the umask (0644 under umask 022).
    """
    if is_local(uri):
        return str(_replace_local(local_path(uri), data, private=False))
    target = _object_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)  # one PUT: object stores never show half an object
    return uri


def write_private_atomic(path: str | Path, data: bytes) -> str:
    """Write one job-control file whole or not at all, readable by its owner only (0600).

    :raises ValueError: ``path`` is not local; private files never go to object storage.
    """
    if not is_local(str(path)):
        raise ValueError(f"path {str(path)!r}: job-control files are local files, not object storage")
    return str(_replace_local(local_path(str(path)), data, private=True))


def open_private_append(path: str | Path) -> BinaryIO:
    """Open a job-control file for appending, unbuffered, made (or tightened to) 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)  # a file left by an older version may be wider
    return os.fdopen(fd, "ab", buffering=0)


def make_private_dir(path: str | Path) -> Path:
    """A directory only its owner can enter (0700): made if missing, tightened if it exists.

    Missing parents are made as usual (umask): only ``path`` itself is private.
    """
    folder = Path(path)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    os.chmod(folder, PRIVATE_DIR_MODE)
    return folder


def _replace_local(path: Path, data: bytes, *, private: bool) -> Path:
    """Write ``data`` to a temporary sibling of ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open applies the umask to the mode, as open() does; tempfile.mkstemp would force 0600.
    mode = PRIVATE_FILE_MODE if private else ARTIFACT_FILE_MODE
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if private:
                os.fchmod(fd, PRIVATE_FILE_MODE)  # exactly 0600, whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_folder_atomic(uri: str, files: Mapping[str, bytes | str]) -> str:
    """Write a folder of files whole or not at all; an existing folder is replaced.

    Locally the files go to a hidden sibling folder that is renamed into place. On object stores
    the files are put one by one and ``_SUCCESS`` last.
    """
    payload = {name: data.encode() if isinstance(data, str) else data for name, data in files.items()}
    for name in payload:
        if name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"report file name {name!r} must be relative and stay inside the folder")
    if is_local(uri):
        final = local_path(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        # mkdir, not tempfile.mkdtemp (always 0700): a report folder honours the umask.
        staging = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}")
        staging.mkdir()
        try:
            for name, data in payload.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(data)
            (staging / SUCCESS_MARKER).write_bytes(b"")
            if final.exists():
                old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(final, old)
                os.replace(staging, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return str(final)
    base = _object_path(uri)
    (base / SUCCESS_MARKER).unlink(missing_ok=True)
    for name, data in payload.items():
        (base / name).write_bytes(data)
    (base / SUCCESS_MARKER).write_bytes(b"")
    return uri


def read_table(uri: str, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table (a file, or a folder of Parquet parts) into pandas.

    :raises ValueError: the format is not known from the extension.
    :raises OSError: the URI cannot be read; the message names the URI and the cause.
    """
    import pandas as pd  # heavy: only when data is read, never at DAG parse

    kind = table_format(uri)
    try:
        if is_local(uri):
            source: Any = local_path(uri)
            if not source.exists():
                raise FileNotFoundError(f"no such file: {source}")
        else:
            source = _object_path(uri).open("rb")
        if kind == "parquet":
            return pd.read_parquet(source, columns=columns)
        return pd.read_csv(source, usecols=columns)
    except pd.errors.EmptyDataError:
        # pandas says "No columns to parse from file", which reads like a parsing bug.
        raise OSError(
            f"cannot read table {uri!r}: the file is empty (not even a header row); an empty table "
            "needs its header row"
        ) from None
    except (OSError, ValueError) as err:
        raise OSError(f"cannot read table {uri!r}: {err}") from err


def table_format(uri: str) -> str:
    """``"csv"`` or ``"parquet"``, from the URI's extension."""
    name = urlparse(str(uri)).path.lower().rstrip("/")
    if name.endswith((".parquet", ".pq")) or name.endswith(".parquet.gz"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    raise ValueError(f"cannot tell the format of {uri!r}: expected a .csv or .parquet file")


def read_bytes(uri: str, *, conn_id: str | None = None) -> bytes:
    """The whole content of one file, local or in object storage.

    :param conn_id: the Airflow connection object storage reads ``uri`` with (Airflow's object
        storage picks the filesystem by the URI's scheme); ``None`` for the filesystem's own
        defaults (its environment variables, or a connection id written in the URI).
    :raises FileNotFoundError: nothing is at ``uri``; the message names it.
    :raises OSError: the store could not be read (no access, no such account); the message names the
        URI, the connection and the kind of error, never a credential.
    """
    if is_local(uri):
        path = local_path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {uri}")
        return path.read_bytes()
    with _reading(uri, conn_id):
        target = _object_path(uri, conn_id)
        if not target.exists():
            raise FileNotFoundError(f"no such file: {uri}")
        return bytes(target.read_bytes())


def exists(uri: str, *, conn_id: str | None = None) -> bool:
    """Whether something exists at ``uri`` (``conn_id`` as for :func:`read_bytes`).

    :raises OSError: the store could not be asked (see :func:`read_bytes`).
    """
    if is_local(uri):
        return local_path(uri).exists()
    with _reading(uri, conn_id):
        return bool(_object_path(uri, conn_id).exists())


@contextmanager
def _reading(uri: str, conn_id: str | None) -> Iterator[None]:
    """Turn a store's error into an ``OSError`` naming the URI and the error's kind only.

    A store's own message and its chained traceback can carry a signed URL or an account key
    (a connection string that did not parse): neither is kept.
    """
    try:
        yield
    except (FileNotFoundError, StorageConnectionError):
        raise
    except Exception as err:
        kind = [type(err).__name__]
        if type(err).__module__.startswith("airflow."):
            kind.append(f"({err})")  # Airflow's own, e.g. a connection that is not defined
        for attr in ("status_code", "error_code"):
            value = getattr(err, attr, None)
            if value is not None:
                kind.append(str(getattr(value, "value", value)))
        via = f"connection {conn_id!r}" if conn_id else "no connection (the filesystem's defaults)"
        raise OSError(f"cannot read {uri!r} with {via}: {' '.join(kind)}") from None


# abfs[s]://<container>@<account>.dfs.core.windows.net/<path>: Azure's own form of an ADLS URI.
_AZURE_URI = re.compile(r"^(abfss?|az)://([^@/]+)@([a-z0-9]+)\.(?:dfs|blob)\.([^/]+)(/.*)?$")


def _object_path(uri: str, conn_id: str | None = None) -> Any:
    from airflow_trainkit._compat import ObjectStoragePath

    azure = _AZURE_URI.match(str(uri))
    if azure is None:
        return ObjectStoragePath(uri, conn_id=conn_id) if conn_id else ObjectStoragePath(uri)
    # Airflow's object storage reads the part before '@' as a connection id, and adlfs takes the
    # account from its own settings: the URI becomes abfs://<container>/<path> on that account.
    scheme, container, account, suffix, path = azure.groups()
    options = {"account_name": account}
    if suffix != "core.windows.net":  # a sovereign cloud's endpoints
        options["account_host"] = f"{account}.blob.{suffix}"
    target = ObjectStoragePath(f"{scheme}://{container}{path or '/'}", conn_id=conn_id, **options)
    if conn_id:
        _check_account(target, uri, account, conn_id)
    return target


class StorageConnectionError(ValueError):
    """A connection cannot read a URI: it makes no filesystem, or one bound to another account."""


def _check_account(target: Any, uri: str, account: str, conn_id: str) -> None:
    """A connection's filesystem is bound to one storage account: refuse to read another one's URI."""
    try:
        fs = target.fs
    except ValueError:  # adlfs' message may quote what it was given: a signed URL, say
        raise StorageConnectionError(
            f"connection {conn_id!r} makes no filesystem to read {uri!r}: give it the extra "
            "account_name and a credential, or a connection_string"
        ) from None
    bound = getattr(fs, "account_name", None) or getattr(
        getattr(fs, "service_client", None), "account_name", None
    )
    if bound and str(bound).lower() != account:
        raise StorageConnectionError(
            f"{uri!r} is in storage account {account!r}, but connection {conn_id!r} reads account "
            f"{bound!r}: give a connection to {account!r}"
        )
