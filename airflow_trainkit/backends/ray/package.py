"""The job's working directory: a zip the Jobs API stores in the cluster (``PUT /api/packages/gcs/...``).

It always holds the launcher (``trainkit_ray_launch.py``, which enforces ``max_runtime`` on the
cluster); the built-in trainer's modules when the command runs it; and the files of
``spec.options['working_dir']`` when the spec names a local folder. The zip is deterministic (fixed
times, sorted names), so its name, ``_ray_pkg_<sha1>.zip`` as the ray SDK names packages, is the same
for the same files and an unchanged package is never uploaded twice. Stdlib only.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from airflow_trainkit.trainers import BUILTIN_TRAINER_FILES

LAUNCHER_NAME = "trainkit_ray_launch.py"
# The built-in trainer's files, and the distributed trainer. The cluster has neither Airflow nor trainkit.
SHIPPED_TRAINER_FILES = (*BUILTIN_TRAINER_FILES, "trainers/xgboost_ray.py")
BUILTIN_MODULES = ("airflow_trainkit.trainers.xgboost", "airflow_trainkit.trainers.xgboost_ray")
DISTRIBUTED_MODULE = "airflow_trainkit.trainers.xgboost_ray"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
_SKIPPED = ("__pycache__", ".git")


def package_files(*, builtin_trainer: bool, working_dir: str | None) -> dict[str, bytes | Path]:
    """Name in the zip -> content or local file.

    :raises ValueError: ``spec.options['working_dir']`` is not a folder, or holds the launcher's name.
    """
    import airflow_trainkit

    files: dict[str, bytes | Path] = {}
    if working_dir:
        folder = Path(working_dir).expanduser()
        if not folder.is_dir():
            raise ValueError(f"spec.options['working_dir'] must be a local folder, got {working_dir!r}")
        for item in sorted(folder.rglob("*")):
            parts = item.relative_to(folder).parts
            if item.is_file() and not any(p in _SKIPPED for p in parts):
                files["/".join(parts)] = item
        if LAUNCHER_NAME in files:
            raise ValueError(
                f"spec.options['working_dir'] {working_dir!r} holds {LAUNCHER_NAME}, a name the backend uses"
            )
    package = Path(airflow_trainkit.__file__).parent
    if builtin_trainer:
        for name in SHIPPED_TRAINER_FILES:
            files[f"airflow_trainkit/{name}"] = package / name
    files[LAUNCHER_NAME] = package / "backends" / "ray" / "launcher.py"
    return files


def zip_package(files: dict[str, bytes | Path], *, max_bytes: int, field: str) -> tuple[str, bytes]:
    """``(package name, zip bytes)``; refuses a package larger than ``max_bytes``.

    :param field: what to name in the error (the spec option or the connection setting).
    :raises ValueError: the files, or the zip, pass ``max_bytes``.
    """
    raw = sum(len(c) if isinstance(c, bytes) else c.stat().st_size for c in files.values())
    if raw > max_bytes * 4:  # refuse at once what cannot compress to the limit
        raise ValueError(_too_large(field, raw, max_bytes, "files"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            content = files[name]
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content if isinstance(content, bytes) else content.read_bytes())
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise ValueError(_too_large(field, len(data), max_bytes, "zipped package"))
    return f"_ray_pkg_{hashlib.sha1(data).hexdigest()}.zip", data  # noqa: S324 - a content name


def _too_large(field: str, size: int, limit: int, what: str) -> str:
    return (
        f"{field}: the {what} is {size / 2**20:.1f} MiB, more than the {limit / 2**20:.1f} MiB a job's "
        "working directory may take (connection extra max_package_mb); keep data out of it and read it "
        "from spec.inputs"
    )
