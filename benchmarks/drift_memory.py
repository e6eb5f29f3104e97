"""Drift check memory on a wide table: it follows the columns in work, not the table's size.

Writes two Parquet windows of ``--rows`` x ``--columns`` float64 values (3 of the columns of the
current window shifted by 0.1 standard deviations), then measures peak RSS side by side, each in a
fresh process:

- trainkit's drift check, defaults, report included (the cold path: the reference is prepared and
  cached as it is read);
- ``pandas.read_parquet`` of both windows and nothing else: the least any check that loads the
  windows whole needs.

Run: ``python benchmarks/drift_memory.py [--rows 200000] [--columns 1000]`` (writes 2 x rows x
columns x 8 bytes to a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from drift import _child  # benchmarks/drift.py: a fresh interpreter that reports wall time and peak RSS

SHIFTED = ["c7", "c123", "c456"]


def generate(folder: Path, rows: int, columns: int) -> tuple[str, str]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"c{i}" for i in range(columns)]
    schema = pa.schema([(n, pa.float64()) for n in names])
    chunk = max(rows // 4, 1)  # written a quarter of the rows at a time: generating stays bounded too
    paths = []
    for name, seed in (("reference", 1), ("current", 2)):
        rng = np.random.default_rng(seed)
        path = folder / f"{name}.parquet"
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, rows, chunk):
                n = min(chunk, rows - start)
                arrays = [
                    pa.array(rng.standard_normal(n) + (0.1 if name == "current" and col in SHIFTED else 0.0))
                    for col in names
                ]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        paths.append(str(path))
    return paths[0], paths[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainkit-drift-memory-") as tmp:
        folder = Path(tmp)
        ref, cur = generate(folder, args.rows, args.columns)
        table_gib = 2 * args.rows * args.columns * 8 / 2**30
        check = _child(
            f"""
from airflow_trainkit.drift.check import run_check
from airflow_trainkit.drift.engine import DriftConfig
from airflow_trainkit.drift.tables import open_table
result = run_check(reference=open_table({ref!r}), current=open_table({cur!r}), config=DriftConfig(),
                   reference_uri={ref!r}, report_uri={str(folder / "report")!r})
out = {{"drifted": sorted(c.column for c in result.drifted_features)}}
""",
            {"TRAINKIT_HOME": str(folder / "home")},
        )
        whole = _child(
            f"""
import pandas as pd
a = pd.read_parquet({ref!r}); b = pd.read_parquet({cur!r})
out = {{}}
"""
        )
    shifted = [c for c in SHIFTED if int(c[1:]) < args.columns]
    print(
        f"data: 2 windows of {args.rows:,} rows x {args.columns:,} float columns ({table_gib:.2f} GiB in memory)"
    )
    print(f"{'what':52} {'seconds':>8} {'peak GiB':>9}")
    print(
        f"{'trainkit check, report included (cold)':52} {check['wall_seconds']:>8.1f} {check['peak_rss_gib']:>9.2f}"
    )
    print(
        f"{'pandas.read_parquet of both windows, nothing else':52} {whole['wall_seconds']:>8.1f} {whole['peak_rss_gib']:>9.2f}"
    )
    print(f"ratio of peaks, loading whole / trainkit: {whole['peak_rss_gib'] / check['peak_rss_gib']:.1f}x")
    ok = check["drifted"] == sorted(shifted)
    print(f"flagged {check['drifted']}: {'exactly the shifted columns' if ok else 'NOT the shifted columns'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
