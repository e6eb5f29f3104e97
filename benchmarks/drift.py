"""Drift on large data: 1,000,000 rows x 50 numeric columns against a reference of the same size.

Five columns of the current window are shifted by 0.1 standard deviations; both windows are read
from Parquet files generated into a temporary folder. Measured side by side in one run:

- trainkit's drift check with default settings, report included, in a fresh process (cold: no
  cached reference profile, Evidently imported on the way), then again with the cached profile;
- a plain ``scipy.stats.ks_2samp`` loop over the 50 columns, and trainkit's statistics on the same
  frames in the same process (like for like: no read, no report);
- Evidently's DataDriftPreset with KS on a 10 % slice (100,000 rows), scaled by 10 to the full size
  (an estimate: Evidently on the full size takes minutes).

Run: ``python benchmarks/drift.py [--rows N]``. Budget: under 30 s and 4 GiB for trainkit's check,
flagging exactly the shifted columns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

COLUMNS = 50
SHIFTED = ["c3", "c11", "c24", "c37", "c45"]
SHIFT = 0.1


def generate(folder: Path, rows: int) -> tuple[str, str]:
    import numpy as np
    import pandas as pd

    paths = []
    for name, seed, shifted in (("reference", 1, False), ("current", 2, True)):
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({f"c{i}": rng.standard_normal(rows) for i in range(COLUMNS)})
        if shifted:
            for col in SHIFTED:
                frame[col] += SHIFT
        path = folder / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(str(path))
        del frame
    return paths[0], paths[1]


def _child(code: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last. Adds wall time and peak RSS."""
    wrapper = textwrap.dedent(
        """
        import json, resource, sys, time
        _t0 = time.perf_counter()
        {code}
        out["wall_seconds"] = round(time.perf_counter() - _t0, 2)
        out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        print(json.dumps(out))
        """
    ).format(code=textwrap.indent(textwrap.dedent(code), "").strip())
    proc = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["phases"] = [
        line.split("Drift check timings: ")[1] for line in proc.stderr.splitlines() if "timings:" in line
    ]
    return out


def trainkit_check(ref: str, cur: str, report: str, home: str) -> dict:
    code = f"""
import logging
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from airflow_trainkit.drift.check import run_check
from airflow_trainkit.drift.engine import DriftConfig
from airflow_trainkit.drift.tables import open_table
result = run_check(
    reference=open_table({ref!r}),
    current=open_table({cur!r}),
    config=DriftConfig(),
    reference_uri={ref!r},
    report_uri={report!r},
)
s = result.summary()
out = {{"drifted": sorted(c["column"] for c in s["drifted_columns"]), "rows": s["rows"]}}
"""
    return _child(code, {"TRAINKIT_HOME": home})


def scipy_loop(ref: str, cur: str) -> dict:
    """The scipy loop, then trainkit's statistics on the same frames in the same process (no read,
    no report): the like-for-like comparison."""
    code = f"""
import pandas as pd
from scipy.stats import ks_2samp
from airflow_trainkit.drift.engine import DriftConfig, evaluate
a = pd.read_parquet({ref!r}); b = pd.read_parquet({cur!r})
t = time.perf_counter()
p = {{c: ks_2samp(a[c].to_numpy(), b[c].to_numpy()).pvalue for c in a.columns}}
loop = time.perf_counter() - t
t = time.perf_counter()
ours = evaluate(a, b, DriftConfig())
out = {{
    "loop_seconds": round(loop, 2),
    "drifted": sorted(c for c, v in p.items() if v < 0.05),
    "trainkit_seconds": round(time.perf_counter() - t, 2),
    "trainkit_drifted": sorted(c.column for c in ours.drifted_features),
}}
"""
    return _child(code)


def evidently_slice(ref: str, cur: str, rows: int) -> dict:
    code = f"""
t = time.perf_counter()
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
imported = time.perf_counter() - t
a = pd.read_parquet({ref!r}).iloc[:{rows}]; b = pd.read_parquet({cur!r}).iloc[:{rows}]
d = DataDefinition(numerical_columns=list(a.columns))
t = time.perf_counter()
snap = Report([DataDriftPreset(method="ks")]).run(
    current_data=Dataset.from_pandas(b, data_definition=d), reference_data=Dataset.from_pandas(a, data_definition=d))
html = snap.get_html_str(as_iframe=False)
out = {{"import_seconds": round(imported, 2), "run_seconds": round(time.perf_counter() - t, 2)}}
"""
    return _child(code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainkit-drift-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        ref, cur = generate(folder, args.rows)
        print(
            f"data: {args.rows:,} rows x {COLUMNS} columns per window, {len(SHIFTED)} shifted by {SHIFT} sd "
            f"(generated in {time.perf_counter() - t:.1f} s)"
        )
        home = str(folder / "home")
        cold = trainkit_check(ref, cur, str(folder / "report-cold"), home)
        warm = trainkit_check(ref, cur, str(folder / "report-warm"), home)
        scipy = scipy_loop(ref, cur)
        slice_rows = args.rows // 10
        ev = evidently_slice(ref, cur, slice_rows)

    ok = all(run == sorted(SHIFTED) for run in (cold["drifted"], warm["drifted"], scipy["trainkit_drifted"]))
    ev_scaled = ev["run_seconds"] * 10
    print()
    print(f"{'what':58} {'seconds':>9} {'peak GiB':>9}  flagged")
    print(
        f"{'trainkit check, defaults, report included (cold process)':58} {cold['wall_seconds']:>9.1f} "
        f"{cold['peak_rss_gib']:>9.2f}  {cold['drifted']}"
    )
    print(
        f"{'trainkit check, cached reference profile':58} {warm['wall_seconds']:>9.1f} "
        f"{warm['peak_rss_gib']:>9.2f}  {warm['drifted']}"
    )
    print(
        f"{'scipy ks_2samp loop over the columns (p < 0.05)':58} {scipy['loop_seconds']:>9.1f} "
        f"{'':>9}  {scipy['drifted']}"
    )
    print(
        f"{'trainkit statistics on the same frames (no read, no report)':58} "
        f"{scipy['trainkit_seconds']:>9.1f} {'':>9}  {scipy['trainkit_drifted']}"
    )
    print(
        f"{f'Evidently DataDriftPreset(ks) on {slice_rows:,} rows':58} {ev['run_seconds']:>9.1f} "
        f"{ev['peak_rss_gib']:>9.2f}  (import {ev['import_seconds']:.1f} s not included)"
    )
    print(f"{'  ... scaled x10 to the full size (estimate)':58} {ev_scaled:>9.1f}")
    for label, run in (("cold", cold), ("cached", warm)):
        print(f"  trainkit {label} phases: {'; '.join(run['phases'])}")
    print()
    print(
        f"ratio scipy loop / trainkit statistics, same frames:  "
        f"{scipy['loop_seconds'] / scipy['trainkit_seconds']:.1f}x"
    )
    print(
        f"ratio scipy loop / trainkit whole check, cold:    {scipy['loop_seconds'] / cold['wall_seconds']:.2f}x"
    )
    print(
        f"ratio scipy loop / trainkit whole check, cached:  {scipy['loop_seconds'] / warm['wall_seconds']:.2f}x"
    )
    print(f"ratio Evidently scaled / trainkit cold: {ev_scaled / cold['wall_seconds']:.1f}x")
    within = cold["wall_seconds"] < 30 and cold["peak_rss_gib"] < 4
    print(f"budget (< 30 s, < 4 GiB, exactly the shifted columns): {'met' if within and ok else 'NOT met'}")
    print(f"load average during the run: {os.getloadavg()} on {os.cpu_count()} cores")
    return 0 if within and ok else 1


if __name__ == "__main__":
    sys.exit(main())
