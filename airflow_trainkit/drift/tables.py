"""The two windows of a drift check as tables read one column at a time.

A local Parquet file (or folder of parts) is never loaded whole: each column is read when it is
tested and dropped after, so memory stays at a few columns whatever the table's width. CSV, SQL
results, object-storage files and frames already in memory are held as one pandas frame.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from typing_extensions import override

from airflow_trainkit import storage

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd


class Table(ABC):
    """One window: its row count, its column names, and one column at a time as a pandas Series."""

    # False when only some of the source's columns were read: its column list is not the source's.
    complete: bool = True

    @property
    @abstractmethod
    def rows(self) -> int:
        """How many rows the table has (reading only its metadata where the format allows)."""

    @property
    @abstractmethod
    def columns(self) -> list[str]:
        """The table's column names, in its order."""

    @abstractmethod
    def column(self, name: str) -> pd.Series:
        """Every row of column ``name`` (safe to call from several threads at once)."""


class FrameTable(Table):
    """A pandas frame, given or read on first use by ``read`` (so a cached reference is never read)."""

    def __init__(
        self,
        frame: pd.DataFrame | None = None,
        *,
        read: Callable[[], pd.DataFrame] | None = None,
        complete: bool = True,
    ):
        if (frame is None) == (read is None):
            raise TypeError("give a frame or a read function")
        self.complete = complete
        self._frame = frame
        self._read = read
        self._reading = threading.Lock()  # worker threads ask for columns at once: read once

    @property
    def frame(self) -> pd.DataFrame:
        """The whole frame, read on first use (once, whichever thread asks first)."""
        with self._reading:
            if self._frame is None:
                if self._read is None:  # __init__ refuses this; kept out of reach of python -O
                    raise TypeError("a FrameTable needs a frame or a read function")
                self._frame = self._read()
        return self._frame

    @property
    @override
    def rows(self) -> int:
        return len(self.frame)

    @property
    @override
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    @override
    def column(self, name: str) -> pd.Series:
        return self.frame[name]


class ParquetTable(Table):
    """A local Parquet file or folder of parts, read a column at a time through pyarrow."""

    def __init__(self, path: str):
        import pyarrow.dataset as ds  # heavy: only when data is read

        try:
            self._dataset = ds.dataset(path, format="parquet")
            self._rows = self._dataset.count_rows()
        except (OSError, ValueError) as err:  # pyarrow's errors subclass these
            raise OSError(f"cannot read table {path!r}: {err}") from err
        self._path = path

    @property
    @override
    def rows(self) -> int:
        return self._rows

    @property
    @override
    def columns(self) -> list[str]:
        # A frame's index that pandas stored as a column is not data: pandas reads it back as the index.
        meta = self._dataset.schema.pandas_metadata or {}
        index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
        return [c for c in self._dataset.schema.names if c not in index]

    @override
    def column(self, name: str) -> pd.Series:
        try:
            data = self._dataset.to_table(columns=[name]).column(0)
        except (OSError, ValueError) as err:
            raise OSError(f"cannot read column {name!r} of {self._path!r}: {err}") from err
        return data.to_pandas().rename(name)


def open_table(uri: str, *, columns: list[str] | None = None) -> Table:
    """A table for ``uri``: column by column for local Parquet, else read whole on first use.

    :param columns: for tables read whole, read only these columns.
    :raises OSError: the URI cannot be read; the message names it.
    :raises ValueError: the format is not known from the extension.
    """
    if storage.table_format(uri) == "parquet" and storage.is_local(uri):
        path = storage.local_path(uri)
        if not path.exists():
            raise OSError(f"cannot read table {uri!r}: no such file: {path}")
        return ParquetTable(str(path))
    return FrameTable(read=lambda: storage.read_table(uri, columns=columns), complete=columns is None)


def as_table(data: Table | pd.DataFrame) -> Table:
    """A table for a frame; a table as it is."""
    return data if isinstance(data, Table) else FrameTable(data)
