"""Each window of a drift check prepared a column at a time: sorted values per numeric column,
counts per categorical column, and the rows kept for the report.

The reference's prepared columns are cached on disk per reference file, keyed by its URI with its
size and modification time (or ETag): a weekly check against the same champion reference neither
reads the table nor sorts it again, and the cached arrays are memory-mapped, so they cost almost no
RAM. Columns are cached one by one as they are first asked for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_trainkit import storage

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pandas as pd

    from airflow_trainkit.drift.tables import Table

log = logging.getLogger(__name__)

PROFILE_VERSION = 2
KEEP_PROFILES = 8
DEFAULT_REPORT_ROWS = 10_000


@dataclass
class ColumnProfile:
    """One column of one window: ``values`` (sorted, finite) for numeric, ``counts`` for categorical."""

    name: str
    kind: str
    rows: int
    nulls: int
    values: np.ndarray | None = None
    counts: dict[str, int] | None = None

    @property
    def evaluated(self) -> int:
        """The rows that hold a value (what the tests run on)."""
        return self.rows - self.nulls


def column_kind(series: pd.Series) -> str:
    """``"numeric"`` for numeric dtypes (bool excluded), ``"categorical"`` otherwise."""
    import pandas as pd  # heavy: only when data is prepared

    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
        return "categorical"
    return "numeric"


def numeric_values(series: pd.Series, *, column: str, window: str) -> np.ndarray:
    """The finite values of a numeric column as float64, sorted; strings are refused by name."""
    import pandas as pd  # heavy: only when data is prepared

    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        converted = pd.to_numeric(series, errors="coerce")
        bad = series.notna() & converted.isna()
        if bad.any():
            example = series[bad].iloc[0]
            raise ValueError(
                f"column {column!r} is numeric in the reference but the {window} window holds "
                f"{int(bad.sum())} non-numeric value(s), e.g. {example!r}"
            )
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]  # Evidently drops NaN and +-inf before testing
    finite.sort()
    return finite


def categorical_counts(series: pd.Series) -> dict[str, int]:
    """Counts of the non-null values, keyed by their text."""
    counts = series.dropna().astype(str).value_counts(sort=False)
    return {str(k): int(v) for k, v in counts.items()}


def profile_column(series: pd.Series, kind: str, *, column: str, window: str) -> ColumnProfile:
    """Prepare one column of one window."""
    rows = int(series.shape[0])
    if kind == "numeric":
        values = numeric_values(series, column=column, window=window)
        return ColumnProfile(column, kind, rows, rows - int(values.shape[0]), values=values)
    counts = categorical_counts(series)
    return ColumnProfile(column, kind, rows, rows - sum(counts.values()), counts=counts)


@dataclass
class PreparedColumn:
    """One column of one window, ready to test and to show.

    :param sample: the report's rows of the column.
    :param aligned: the evaluated rows in table order (for the label and prediction, whose
        performance metric pairs them row by row); None for other columns.
    """

    profile: ColumnProfile
    sample: pd.Series
    aligned: np.ndarray | None = None


class Window:
    """One side of a check: a table, the rows evaluated and the rows kept for the report.

    Windows longer than ``max_rows`` are evaluated on ``max_rows`` rows drawn without replacement
    with ``seed`` (the same rows for every column); the report keeps ``report_rows`` of those.

    :param cache: where the reference's prepared columns are cached; None prepares every column anew.
    """

    def __init__(
        self,
        table: Table,
        name: str,
        *,
        max_rows: int | None,
        seed: int,
        report_rows: int = DEFAULT_REPORT_ROWS,
        cache: ProfileCache | None = None,
    ):
        self.table = table
        self.name = name
        self.max_rows = max_rows
        self.seed = seed
        self.report_rows = report_rows
        self.cache = cache

    @cached_property
    def _shape(self) -> tuple[int, list[str]]:
        # A table read with only some columns has a partial column list: not one to cache.
        cache = self.cache if self.cache is not None and self.table.complete else None
        cached = cache.table_shape() if cache else None
        if cached is not None:
            return cached
        try:
            shape = self.table.rows, self.table.columns
        except OSError as err:
            raise OSError(f"the {self.name} window: {err}") from err
        if cache:
            cache.save_table_shape(*shape)
        return shape

    @property
    def total_rows(self) -> int:
        """The table's row count, before any sampling."""
        return self._shape[0]

    @property
    def columns(self) -> list[str]:
        """The table's column names (from the cache when the reference's shape is cached)."""
        return self._shape[1]

    @property
    def sampled_from(self) -> int | None:
        """The table's row count when only ``max_rows`` of its rows are evaluated."""
        sampled = self.max_rows is not None and self.total_rows > self.max_rows
        return self.total_rows if sampled else None

    @property
    def rows(self) -> int:
        """How many rows are evaluated."""
        return self.total_rows if self.max_rows is None else min(self.total_rows, self.max_rows)

    @cached_property
    def _row_picks(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        evaluated = None
        if self.sampled_from is not None:
            rng = np.random.default_rng(self.seed)
            evaluated = np.sort(rng.choice(self.total_rows, self.rows, replace=False))
        shown = None
        if self.rows > self.report_rows:
            rng = np.random.default_rng(self.seed + 1)
            shown = np.sort(rng.choice(self.rows, self.report_rows, replace=False))
        return evaluated, shown

    def prepare(self, column: str, *, kind: str | None = None, aligned: bool = False) -> PreparedColumn:
        """Column ``column`` prepared: from the cache, else read and profiled (and then cached).

        :param kind: ``numeric`` or ``categorical``, as the reference decided; from the data if None.
        :param aligned: also keep the evaluated rows in table order.
        """
        if self.cache is not None:
            cached = self.cache.load(column, aligned=aligned)
            if cached is not None:
                return cached
        evaluated, shown = self._row_picks
        try:
            series = self.table.column(column)
        except OSError as err:
            raise OSError(f"the {self.name} window: {err}") from err
        if evaluated is not None:
            series = series.iloc[evaluated]
        prepared = PreparedColumn(
            profile_column(series, kind or column_kind(series), column=column, window=self.name),
            (series if shown is None else series.iloc[shown]).reset_index(drop=True),
            series.to_numpy() if aligned else None,
        )
        if self.cache is not None:
            self.cache.save(prepared)
        return prepared


class ProfileCache:
    """Prepared reference columns on disk, one set of files per column, each written whole.

    A column's ``.json`` is written last, so a column is either complete or absent; a file that
    cannot be read counts as absent and is prepared again.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def for_uri(
        cls, uri: str, cache_dir: Path, *, max_rows: int | None, seed: int, report_rows: int
    ) -> ProfileCache | None:
        """The cache of the file at ``uri`` in its current version; None when it has no stable identity."""
        key = cache_key(uri, max_rows=max_rows, seed=seed, report_rows=report_rows)
        if key is None:
            return None
        folder = cache_dir / key
        if folder.is_dir():
            os.utime(folder)  # recently used: pruned last
        else:
            _prune(cache_dir)
        return cls(folder)

    def table_shape(self) -> tuple[int, list[str]] | None:
        """The cached row count and column names; None when not cached or unreadable."""
        try:
            meta = json.loads((self.folder / "table.json").read_text())
        except (OSError, ValueError):
            return None
        return int(meta["rows"]), list(meta["columns"])

    def save_table_shape(self, rows: int, columns: list[str]) -> None:
        """Cache the table's row count and column names (so a cached reference is never opened)."""
        payload = json.dumps({"version": PROFILE_VERSION, "rows": rows, "columns": columns})
        self._write("table.json", lambda path: path.write_text(payload))

    def load(self, column: str, *, aligned: bool) -> PreparedColumn | None:
        """A cached column; None when absent, damaged, or cached without the aligned rows asked for."""
        import pandas as pd  # heavy: only when data is prepared

        stem = _stem(column)
        try:
            meta = json.loads((self.folder / f"{stem}.json").read_text())
            if aligned and not meta["aligned"]:
                return None
            values = np.load(self.folder / f"{stem}.values.npy", mmap_mode="r") if meta["values"] else None
            profile = ColumnProfile(
                meta["name"], meta["kind"], meta["rows"], meta["nulls"], values=values, counts=meta["counts"]
            )
            sample = pd.read_parquet(self.folder / f"{stem}.sample.parquet")[column]
            kept = np.load(self.folder / f"{stem}.aligned.npy", allow_pickle=False) if aligned else None
        except (OSError, ValueError, KeyError) as err:
            log.debug("Cached column %r unusable, preparing it again: %s", column, err)
            return None
        return PreparedColumn(profile, sample, kept)

    def save(self, prepared: PreparedColumn) -> None:
        """Cache one column; a cache that cannot be written only logs a warning."""
        col = prepared.profile
        stem = _stem(col.name)
        try:
            if col.values is not None:
                values = col.values
                self._write(f"{stem}.values.npy", lambda path: np.save(path, values, allow_pickle=False))
            sample = prepared.sample.to_frame(col.name)
            self._write(f"{stem}.sample.parquet", lambda path: sample.to_parquet(path, index=False))
            if prepared.aligned is not None:
                kept = prepared.aligned if prepared.aligned.dtype != object else prepared.aligned.astype(str)
                self._write(f"{stem}.aligned.npy", lambda path: np.save(path, kept, allow_pickle=False))
            meta = {
                "name": col.name,
                "kind": col.kind,
                "rows": col.rows,
                "nulls": col.nulls,
                "counts": col.counts,
                "values": col.values is not None,
                "aligned": prepared.aligned is not None,
            }
            self._write(f"{stem}.json", lambda path: path.write_text(json.dumps(meta)))
        except (OSError, ValueError, TypeError) as err:  # e.g. a column of mixed types parquet refuses
            log.warning("Could not cache reference column %r in %s: %s", col.name, self.folder, err)

    def _write(self, name: str, write: Callable[[Path], Any]) -> None:
        """Write one file under a temporary name and rename it into place (no fsync: a cache)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / name
        tmp = final.with_name(f".{uuid.uuid4().hex[:8]}-{name}")  # same suffix: np.save keeps it
        try:
            write(tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)


def _stem(column: str) -> str:
    return "c-" + hashlib.sha256(column.encode()).hexdigest()[:20]


def cache_key(uri: str, *, max_rows: int | None, seed: int, report_rows: int) -> str | None:
    """A key that changes when the file at ``uri`` changes; None when no stable identity is known."""
    try:
        if storage.is_local(uri):
            stat = storage.local_path(uri).stat()
            identity: Any = [str(storage.local_path(uri).resolve()), stat.st_size, stat.st_mtime_ns]
        else:
            info = storage._object_path(uri).stat()
            tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
            if tag is None:
                return None
            identity = [uri, info.get("size"), str(tag)]
    except OSError:
        return None
    payload = json.dumps([PROFILE_VERSION, identity, max_rows, seed, report_rows])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _prune(cache_dir: Path) -> None:
    if not cache_dir.is_dir():
        return
    folders = sorted(
        (p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[KEEP_PROFILES - 1 :]:  # room for the one about to be made
        shutil.rmtree(old, ignore_errors=True)
