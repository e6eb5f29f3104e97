"""What a job on a remote GPU host gets shipped with it: the runner always, and for the built-in
trainer its modules (as SageMaker's script mode ships them), so the host needs only Python 3.11+
and the trainer's libraries, not trainkit or Airflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_trainkit.backends.onprem.transport import Transport
    from airflow_trainkit.training.spec import TrainingJobSpec

# The built-in trainers a command may run with ``python -m``, and the libraries each imports.
TRAINER_LIBRARIES = {
    "airflow_trainkit.trainers.xgboost": ("xgboost", "numpy", "pandas", "sklearn", "pyarrow")
}
SOURCE_FOLDER = "src"


def runner_source() -> str:
    """The runner's source, written into each remote job's folder as ``runner.py``."""
    from airflow_trainkit.backends.onprem import runner

    return Path(runner.__file__).read_text()


def builtin_trainer(command: list[str]) -> str | None:
    """The built-in trainer module ``command`` runs (``python -m airflow_trainkit.trainers.xgboost``)."""
    if len(command) >= 3 and command[0] in ("python", "python3") and command[1] == "-m":
        return command[2] if command[2] in TRAINER_LIBRARIES else None
    return None


def job_files(command: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """``(files by their path in the job directory, libraries the host's Python must have)``.

    The trainer's modules go under ``src/`` (the job's ``PYTHONPATH``), the runner beside them.
    """
    files = {"runner.py": runner_source()}
    trainer = builtin_trainer(command)
    if trainer is None:
        return files, ()
    import airflow_trainkit
    from airflow_trainkit.trainers import BUILTIN_TRAINER_FILES

    package = Path(airflow_trainkit.__file__).parent
    for name in BUILTIN_TRAINER_FILES:
        files[f"{SOURCE_FOLDER}/airflow_trainkit/{name}"] = (package / name).read_text()
    return files, TRAINER_LIBRARIES[trainer]


def ship(spec: TrainingJobSpec, transport: Transport, job_dir: str, env: dict[str, str]) -> dict[str, str]:
    """The files a remote job is shipped with; the job's ``PYTHONPATH`` is set in ``env``.

    :raises ValueError: the host's Python lacks a library the built-in trainer needs.
    """
    from airflow_trainkit.backends.onprem.runner import JOB_PYTHONPATH_VAR

    files, libraries = job_files(list(spec.command))
    if libraries:
        missing = transport.call("missing_modules", names=list(libraries))
        if missing:
            raise ValueError(
                f"spec.command {' '.join(spec.command[:3])!r}: the Python {transport.python()!r} of host "
                f"{transport.host!r} lacks {', '.join(missing)}, which the built-in trainer needs; "
                "install them there or set the host's 'python' to one that has them"
            )
    paths = [f"{job_dir}/{SOURCE_FOLDER}"] if libraries else []
    paths += [spec.env["PYTHONPATH"]] if spec.env.get("PYTHONPATH") else []
    env[JOB_PYTHONPATH_VAR] = ":".join(paths)
    return files
