"""The contract between a training backend and a trainer program: environment in, exit code out.

Light on purpose (standard library only), so any trainer, including your own, can start from it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import pandas as pd

log = logging.getLogger("airflow_trainkit.trainer")

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2

TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")

# The per-round metrics a trainer writes into its output folder while it trains, for a watcher
# (a tuner's pruner) to read: {"round": n, "first_round": k, "history": {"validation-auc": [...],
# ...}, "updated_at": "<ISO-8601 UTC>"}; each history list holds one value per round of this run,
# its first for round ``first_round``.
PROGRESS_FILE = "progress.json"


class BadInput(ValueError):
    """The job's input or configuration is wrong; the trainer exits with code 2."""


@dataclass
class TrainerEnv:
    """What a backend hands a trainer: input channels, hyperparameters, where to write, GPUs.

    :param inputs: channel name (``train``, ``validation``, ...) to a URI of a table or a folder of tables.
    :param hyperparameters: the job's hyperparameters, JSON values.
    :param output_uri: where the trainer writes its model and metrics (a folder).
    :param checkpoint_uri: a local folder for checkpoints, or None.
    :param gpu_count: how many GPUs the backend gave the job.
    :param cuda_visible_devices: the job's ``CUDA_VISIBLE_DEVICES``.
    :param source: ``"trainkit"`` or ``"sagemaker"``: which set of variables was read.
    """

    inputs: dict[str, str] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    output_uri: str | None = None
    checkpoint_uri: str | None = None
    gpu_count: int = 0
    cuda_visible_devices: str = ""
    source: str = "trainkit"

    @property
    def has_gpu(self) -> bool:
        """Whether the job was given a GPU: a positive GPU count and visible CUDA devices."""
        devices = self.cuda_visible_devices.strip()
        return self.gpu_count > 0 and devices not in ("", "-1", "none", "NoDevFiles")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainerEnv:
        """Read the ``TRAINKIT_*`` variables; fall back to SageMaker's ``SM_*`` ones.

        ``TRAINKIT_INPUTS`` (JSON channel -> URI) is read first, then each ``TRAINKIT_INPUT_<CHANNEL>``
        overrides its channel. Without any ``TRAINKIT_`` input or output, ``SM_CHANNEL_<NAME>``,
        ``SM_MODEL_DIR``, ``SM_HPS``, ``SM_NUM_GPUS`` and ``SM_CHECKPOINT_DIR`` are used.

        :raises BadInput: a JSON variable does not parse or is not an object.
        """
        env = os.environ if environ is None else environ
        inputs: dict[str, str] = {}
        raw_inputs = env.get("TRAINKIT_INPUTS")
        if raw_inputs:
            parsed = _json_object("TRAINKIT_INPUTS", raw_inputs)
            inputs.update({str(k).lower(): str(v) for k, v in parsed.items()})
        for key, value in env.items():
            if key.startswith("TRAINKIT_INPUT_") and value:
                inputs[key[len("TRAINKIT_INPUT_") :].lower()] = value
        raw_hps = env.get("TRAINKIT_HYPERPARAMETERS")
        hyperparameters = _json_object("TRAINKIT_HYPERPARAMETERS", raw_hps) if raw_hps else {}
        output_uri = env.get("TRAINKIT_OUTPUT_URI") or None
        checkpoint_uri = env.get("TRAINKIT_CHECKPOINT_URI") or None
        gpu_count = _int_env(env, "TRAINKIT_GPU_COUNT")
        source = "trainkit"
        if not inputs and not output_uri and any(k.startswith("SM_") for k in env):
            source = "sagemaker"
            for key, value in env.items():
                if key.startswith("SM_CHANNEL_") and value:
                    inputs[key[len("SM_CHANNEL_") :].lower()] = value
            output_uri = env.get("SM_MODEL_DIR") or None
            raw_sm = env.get("SM_HPS")
            hyperparameters = _json_object("SM_HPS", raw_sm) if raw_sm else hyperparameters
            checkpoint_uri = checkpoint_uri or env.get("SM_CHECKPOINT_DIR") or None
            gpu_count = gpu_count or _int_env(env, "SM_NUM_GPUS")
        return cls(
            inputs=inputs,
            hyperparameters=hyperparameters,
            output_uri=output_uri,
            checkpoint_uri=checkpoint_uri,
            gpu_count=gpu_count,
            cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES", ""),
            source=source,
        )


def _json_object(name: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise BadInput(f"{name} is not valid JSON ({err}): {raw[:200]!r}") from err
    if not isinstance(value, dict):
        raise BadInput(f"{name} must be a JSON object, got {type(value).__name__}: {raw[:200]!r}")
    return value


def _int_env(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError as err:
        raise BadInput(f"{name} must be an integer, got {raw!r}") from err


def redact_uri(uri: str) -> str:
    """``uri`` without any ``user:password@`` part, for logs and written metadata."""
    parsed = urlparse(str(uri))
    if parsed.username is None and parsed.password is None:
        return str(uri)
    host = parsed.hostname or ""
    if parsed.port:
        host = f"{host}:{parsed.port}"
    return urlunparse(parsed._replace(netloc=host))


def table_uris(channel: str, uri: str) -> list[str]:
    """The table files behind ``uri``: the file itself, or the ``.csv``/``.parquet`` files of a folder.

    :raises BadInput: the folder has no table files, or the URI is neither a table nor a folder.
    """
    from airflow_trainkit import storage

    lower = urlparse(uri).path.lower().rstrip("/")
    if lower.endswith(TABLE_SUFFIXES):
        return [uri]
    if storage.is_local(uri):
        path = storage.local_path(uri)
        if not path.exists():
            raise BadInput(f"input {channel!r}: cannot read {redact_uri(uri)!r}: no such file or folder")
        if not path.is_dir():
            raise BadInput(
                f"input {channel!r}: cannot tell the format of {redact_uri(uri)!r}: "
                "expected a .csv or .parquet file, or a folder of them"
            )
        files = sorted(
            str(p) for p in path.iterdir() if p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES)
        )
    else:
        from airflow_trainkit._compat import ObjectStoragePath  # remote folders only

        try:
            folder = ObjectStoragePath(uri)
            files = sorted(str(p) for p in folder.iterdir() if p.name.lower().endswith(TABLE_SUFFIXES))
        except OSError as err:
            raise BadInput(f"input {channel!r}: cannot list {redact_uri(uri)!r}: {err}") from err
    if not files:
        raise BadInput(f"input {channel!r}: folder {redact_uri(uri)!r} has no .csv or .parquet files")
    return files


def read_channel(channel: str, uri: str) -> pd.DataFrame:
    """Read one input channel into a DataFrame (a folder's files are concatenated in name order).

    :raises BadInput: the URI cannot be read (the message names the channel, the URI and the cause)
        or the table has no rows.
    """
    import pandas as pd  # heavy: only when data is read

    from airflow_trainkit import storage

    frames = []
    for file_uri in table_uris(channel, uri):
        try:
            frames.append(storage.read_table(file_uri))
        except (OSError, ValueError) as err:
            raise BadInput(f"input {channel!r}: cannot read {redact_uri(file_uri)!r}: {err}") from err
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise BadInput(f"input {channel!r}: table {redact_uri(uri)!r} has no rows")
    return frame


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time of each line (tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging() -> None:
    """Log lines with timestamps to stdout (errors also go to stderr, from :func:`run_main`)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if not any(isinstance(h, _StdoutHandler) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        )
        root.addHandler(handler)


def run_main(main: Callable[[list[str] | None], None], argv: list[str] | None = None, *, prog: str) -> int:
    """Run a trainer's ``main`` and turn its outcome into an exit code.

    0 when it returns, 2 for :class:`BadInput` (the message on stderr), 1 for anything else (the
    traceback on stderr).
    """
    setup_logging()
    try:
        main(argv)
    except BadInput as err:
        log.error("bad input: %s", err)
        print(f"{prog}: error: {err}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except Exception as err:
        log.error("failed: %s: %s", type(err).__name__, err)
        traceback.print_exc(file=sys.stderr)
        print(f"{prog}: unexpected error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return EXIT_UNEXPECTED
    return EXIT_OK


def newest_checkpoint(
    folder: str | Path, prefix: str = "model_", suffix: str = ".json"
) -> tuple[int, Path] | None:
    """The checkpoint with the highest round number in ``folder`` (``model_<round>.json``), or None."""
    path = Path(folder)
    if not path.is_dir():
        return None
    found = []
    for item in path.iterdir():
        name = item.name
        if name.startswith(prefix) and name.endswith(suffix):
            number = name[len(prefix) : -len(suffix)]
            if number.isdigit():
                found.append((int(number), item))
    return max(found) if found else None


def progress_history(content: bytes | str | None) -> dict[str, list[float]] | None:
    """The ``history`` of a ``progress.json``'s content: each ``<data>-<metric>`` whose value is a
    list of numbers, ``null`` read as NaN; other keys are left out.

    :return: ``None`` for no content, content that is not JSON (a partial or garbled file), or
        JSON without a ``history`` object. Never raises for what the file holds.
    """
    import math

    if not content:
        return None
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    history = document.get("history") if isinstance(document, dict) else None
    if not isinstance(history, dict):
        return None
    found: dict[str, list[float]] = {}
    for key, values in history.items():
        if not isinstance(values, list):
            continue
        if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
            try:
                found[str(key)] = [math.nan if v is None else float(v) for v in values]
            except OverflowError:  # an integer beyond any float
                continue
    return found
