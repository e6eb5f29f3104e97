"""The reference side of a drift check, prepared once: sorted values per numeric column, counts per
categorical column, a row sample for the report; cached on disk per reference file.

A cached profile is keyed by the reference URI with its size and modification time (or ETag), so a
weekly check against the same champion reference reads neither the table nor sorts it again; its
arrays are memory-mapped, so the reference costs almost no RAM.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_trainkit import storage

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

log = logging.getLogger(__name__)

PROFILE_VERSION = 1
KEEP_PROFILES = 8


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
        return self.rows - self.nulls


@dataclass
class Profile:
    """A prepared window: column profiles, row count, and a row sample for the report.

    :param sampled_from: the table's full row count when only ``max_rows`` of it were kept.
    :param aligned: row-aligned (unsorted) values of the label and prediction columns, for
        performance metrics.
    """

    rows: int
    columns: dict[str, ColumnProfile]
    sample: pd.DataFrame | None = None
    sampled_from: int | None = None
    aligned: dict[str, np.ndarray] = field(default_factory=dict)


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


def sample_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> tuple[pd.DataFrame, int | None]:
    """At most ``max_rows`` rows drawn without replacement with ``seed``; the full row count if sampled."""
    if max_rows is None or len(frame) <= max_rows:
        return frame, None
    return frame.sample(n=max_rows, random_state=seed), len(frame)


def build_profile(
    frame: pd.DataFrame,
    *,
    max_rows: int | None,
    seed: int,
    report_rows: int,
    aligned_columns: tuple[str, ...] = (),
    window: str = "reference",
) -> Profile:
    """Prepare every column of ``frame`` (the columns are profiled one at a time, never copied whole)."""
    frame, sampled_from = sample_rows(frame, max_rows, seed)
    columns = {
        str(name): profile_column(frame[name], column_kind(frame[name]), column=str(name), window=window)
        for name in frame.columns
    }
    sample, _ = sample_rows(frame, report_rows, seed)
    aligned = {c: frame[c].to_numpy() for c in aligned_columns if c in frame.columns}
    return Profile(len(frame), columns, sample.reset_index(drop=True), sampled_from, aligned)


def cache_key(
    uri: str, *, max_rows: int | None, seed: int, report_rows: int, aligned: tuple[str, ...]
) -> str | None:
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
    payload = json.dumps([PROFILE_VERSION, identity, max_rows, seed, report_rows, list(aligned)])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def save_profile(profile: Profile, folder: Path) -> None:
    """Write a profile folder whole or not at all."""
    files: dict[str, bytes | str] = {}
    meta: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "rows": profile.rows,
        "sampled_from": profile.sampled_from,
    }
    cols = []
    for i, col in enumerate(profile.columns.values()):
        entry: dict[str, Any] = {"name": col.name, "kind": col.kind, "rows": col.rows, "nulls": col.nulls}
        if col.values is not None:
            entry["file"] = f"c{i}.npy"
            files[entry["file"]] = _npy_bytes(col.values)
        else:
            entry["counts"] = col.counts
        cols.append(entry)
    meta["columns"] = cols
    meta["aligned"] = {}
    for j, (name, arr) in enumerate(profile.aligned.items()):
        fname = f"a{j}.npy"
        meta["aligned"][name] = fname
        files[fname] = _npy_bytes(arr if arr.dtype != object else arr.astype(str))
    if profile.sample is not None:
        buf = io.BytesIO()
        profile.sample.to_parquet(buf, index=False)
        files["sample.parquet"] = buf.getvalue()
    files["profile.json"] = json.dumps(meta)
    storage.write_folder_atomic(str(folder), files)


def load_profile(folder: Path) -> Profile | None:
    """A cached profile with memory-mapped arrays, or None when absent or incomplete."""
    import pandas as pd  # heavy: only when data is prepared

    if not (folder / storage.SUCCESS_MARKER).exists():
        return None
    meta = json.loads((folder / "profile.json").read_text())
    if meta.get("version") != PROFILE_VERSION:
        return None
    columns = {}
    for entry in meta["columns"]:
        values = np.load(folder / entry["file"], mmap_mode="r") if "file" in entry else None
        columns[entry["name"]] = ColumnProfile(
            entry["name"],
            entry["kind"],
            entry["rows"],
            entry["nulls"],
            values=values,
            counts=entry.get("counts"),
        )
    aligned = {name: np.load(folder / fname, allow_pickle=False) for name, fname in meta["aligned"].items()}
    sample_path = folder / "sample.parquet"
    sample = pd.read_parquet(sample_path) if sample_path.exists() else None
    os.utime(folder)  # recently used: pruned last
    return Profile(meta["rows"], columns, sample, meta.get("sampled_from"), aligned)


def cached_reference_profile(
    uri: str,
    read: Any,
    *,
    cache_dir: Path,
    max_rows: int | None,
    seed: int,
    report_rows: int,
    aligned_columns: tuple[str, ...] = (),
) -> tuple[Profile, bool]:
    """The reference profile for ``uri`` from the cache, or built with ``read()`` and cached.

    :returns: the profile and whether it came from the cache.
    """
    key = cache_key(uri, max_rows=max_rows, seed=seed, report_rows=report_rows, aligned=aligned_columns)
    folder = cache_dir / key if key else None
    if folder is not None:
        cached = load_profile(folder)
        if cached is not None:
            log.info("Reference profile of %s read from cache %s", uri, folder)
            return cached, True
    profile = build_profile(
        read(), max_rows=max_rows, seed=seed, report_rows=report_rows, aligned_columns=aligned_columns
    )
    if folder is not None:
        try:
            save_profile(profile, folder)
            _prune(cache_dir)
        except OSError as err:  # a cache that cannot be written must not fail the check
            log.warning("Could not cache the reference profile in %s: %s", folder, err)
    return profile, False


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _prune(cache_dir: Path) -> None:
    folders = sorted(
        (p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[KEEP_PROFILES:]:
        shutil.rmtree(old, ignore_errors=True)
