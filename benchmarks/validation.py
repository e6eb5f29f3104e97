"""Data validation overhead: ValidateDataOperator's core path vs plain GX 1.x, same data and suite.

1,000,000 rows x 30 columns (Parquet) against a 60-check contract. Both paths read the file and run
the same GX ExpectationSuite with the same result format; ours also parses the contract, compiles it,
fingerprints the data, renders GX's Data Docs page and writes the report folder. The two alternate in
one process (after a warm-up of each); the ratio of their median CPU times is the verdict (the measure
other processes on a shared machine disturb least), printed with the wall-time ratios and the peak
resident memory. Budget: ours / plain GX <= 1.10.

    python benchmarks/validation.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import numpy as np  # noqa: E402 - after the GX environment is set
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

BUDGET = 1.10
N_FLOAT, N_INT, N_STR = 20, 5, 5
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon"]


def make_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(N_FLOAT):
        values = rng.normal(100.0, 15.0, rows)
        if i % 4 == 0:
            values[rng.random(rows) < 0.01] = np.nan
        data[f"f{i:02d}"] = values
    for i in range(N_INT):
        data[f"i{i:02d}"] = rng.integers(0, 1000, rows)
    for i in range(N_STR):
        data[f"s{i:02d}"] = pd.Series(rng.choice(CATEGORIES, rows)).astype(object)
    return pd.DataFrame(data)


def contract_yaml() -> str:
    """30 existence checks, 29 column checks (ranges, types, sets of values) and a row count: 60."""
    lines = ["dataset: benchmark", "owner: bench", "columns:"]
    for i in range(N_FLOAT):
        lines += [f"  - name: f{i:02d}", "    range: {min: -1000, max: 1000}"]
    for i in range(N_INT):
        lines += [f"  - name: i{i:02d}", "    type: integer"]
    for i in range(N_STR):
        lines += [f"  - name: s{i:02d}"] + ([f"    allowed_values: {CATEGORIES}"] if i < N_STR - 1 else [])
    lines += ["table:", "  row_count: {min: 1}"]
    return "\n".join(lines) + "\n"


class PeakRss:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self) -> PeakRss:
        gc.collect()  # the previous run's frame and GX objects (reference cycles) are freed first
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def plain_gx(uri: str, suite_json: dict) -> tuple[bool, int]:
    """What a team writes with GX 1.x alone: read, ephemeral context, suite, validation definition, run."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = pd.read_parquet(uri)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("plain")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(**suite_json))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="plain", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    return bool(result.success), len(result.results)


def ours(uri: str, contract_path: str, report_uri: str) -> tuple[bool, int]:
    from airflow_trainkit.contracts.engine import validate

    summary = validate(uri, contract_path, report_uri=report_uri).summary
    return bool(summary["success"]), int(summary["evaluated"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainkit-bench-validation-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the data file is 165 MiB


def run(args: argparse.Namespace, work: Path) -> None:
    from airflow_trainkit.contracts.compile import compile_suite, resolve_contract

    contract_path = work / "contract.yaml"
    contract_path.write_text(contract_yaml())
    source = resolve_contract(str(contract_path))
    checks = len(source.checks)
    suite_json = compile_suite(source).to_json_dict()
    suite_json.pop("id", None)
    for item in suite_json["expectations"]:
        item.pop("id", None)

    started = time.perf_counter()
    data = work / "data.parquet"
    make_frame(args.rows).to_parquet(data, index=False)
    small = work / "small.parquet"
    make_frame(1000).to_parquet(small, index=False)
    print(
        f"data: {args.rows:,} rows x 30 columns, {data.stat().st_size / 2**20:.0f} MiB parquet; "
        f"contract: {checks} checks; written in {time.perf_counter() - started:.1f} s"
    )

    # Warm-up: imports, GX's expectation registry and the Data Docs templates, for both paths.
    plain_gx(str(small), suite_json)
    ours(str(small), str(contract_path), str(work / "report-warmup"))

    times: dict[str, list[float]] = {"plain GX": [], "trainkit": []}
    cpu: dict[str, list[float]] = {"plain GX": [], "trainkit": []}
    peaks: dict[str, int] = {"plain GX": 0, "trainkit": 0}
    extra: dict[str, int] = {"plain GX": 0, "trainkit": 0}
    for rep in range(args.repeats):
        for name in ("plain GX", "trainkit") if rep % 2 == 0 else ("trainkit", "plain GX"):
            with PeakRss() as rss:
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "plain GX":
                    ok = plain_gx(str(data), suite_json)
                else:
                    ok = ours(str(data), str(contract_path), str(work / f"report-{rep}"))
                elapsed, used = time.perf_counter() - t0, time.process_time() - c0
            times[name].append(elapsed)
            cpu[name].append(used)
            peaks[name] = max(peaks[name], rss.peak)
            extra[name] = max(extra[name], rss.peak - rss.start)
            print(
                f"  rep {rep + 1} {name:9s} {elapsed:7.2f} s wall {used:7.2f} s CPU  success={ok[0]} checks={ok[1]}  peak RSS {rss.peak / 2**30:.2f} GiB "
                f"(+{(rss.peak - rss.start) / 2**30:.2f} GiB during the run)"
            )

    print()
    print(
        f"{'path':10s} {'median s':>9s} {'min s':>7s} {'CPU med s':>10s} {'peak RSS GiB':>13s} {'peak growth GiB':>16s}"
    )
    for name in ("plain GX", "trainkit"):
        print(
            f"{name:10s} {statistics.median(times[name]):9.2f} {min(times[name]):7.2f} "
            f"{statistics.median(cpu[name]):10.2f} {peaks[name] / 2**30:13.2f} {extra[name] / 2**30:16.2f}"
        )
    best = min(times["trainkit"]) / min(times["plain GX"])
    median = statistics.median(times["trainkit"]) / statistics.median(times["plain GX"])
    cpu_ratio = statistics.median(cpu["trainkit"]) / statistics.median(cpu["plain GX"])
    # Both paths are single-process and CPU-bound: on a shared machine their CPU time is the measure
    # other processes disturb least. Wall-time ratios are printed too; on an idle machine they agree.
    verdict = "within" if cpu_ratio <= BUDGET else "OVER"
    print(
        f"ratio trainkit / plain GX, median CPU time: {cpu_ratio:.3f}x  ({verdict} the {BUDGET:.2f}x budget)"
    )
    print(f"ratio of wall times: best {best:.3f}x, median {median:.3f}x")


if __name__ == "__main__":
    main()
