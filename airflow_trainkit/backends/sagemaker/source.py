"""Script mode: the local source a spec names, packaged as the ``sourcedir.tar.gz`` SageMaker runs.

Framework containers unpack it and run its entry point; this module only finds and archives files.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_trainkit.trainers import BUILTIN_TRAINER_FILES

if TYPE_CHECKING:
    from airflow_trainkit.training.spec import TrainingJobSpec

# ``entry_point`` value that means "the built-in trainer module shipped with trainkit".
BUILTIN_ENTRY_POINTS = {"trainkit:xgboost": "airflow_trainkit.trainers.xgboost"}
BUILTIN_PROGRAM = "trainkit_train.py"
# SageMaker runs the program with the hyperparameters as ``--name value`` arguments and also in
# SM_HPS, which the trainer reads; the argument copy is dropped, since the trainer takes its own flags.
_LAUNCHER = '''"""Runs trainkit's built-in trainer {module} in a SageMaker framework container."""
import runpy
import sys

sys.argv[1:] = []
runpy.run_module("{module}", run_name="__main__", alter_sys=True)
'''
SOURCE_ARCHIVE = "sourcedir.tar.gz"
# Files to archive: the name inside the archive -> a local file, or the content itself.
SourceFiles = dict[str, Path | bytes]


def script_source(spec: TrainingJobSpec) -> tuple[SourceFiles, str] | None:
    """``(files to package, program name)`` when the spec asks for script mode."""
    source_dir = spec.options.get("source_dir")
    entry_point = spec.options.get("entry_point")
    if not source_dir and not entry_point:
        return None
    if entry_point in BUILTIN_ENTRY_POINTS:
        if source_dir:
            raise ValueError(
                f"spec.options['source_dir'] cannot be combined with the built-in entry_point {entry_point!r}"
            )
        return builtin_trainer_source(BUILTIN_ENTRY_POINTS[str(entry_point)]), BUILTIN_PROGRAM
    if source_dir:
        return _source_folder(source_dir, entry_point)
    script = Path(str(entry_point)).expanduser()
    if not script.is_file():
        raise ValueError(f"spec.options['entry_point'] must be a local script file, got {entry_point!r}")
    return {script.name: script}, script.name


def _source_folder(source_dir: object, entry_point: object) -> tuple[SourceFiles, str]:
    """A local ``source_dir`` and the ``entry_point`` script inside it (relative, or absolute within it)."""
    folder = Path(str(source_dir)).expanduser()
    if not folder.is_dir():
        raise ValueError(f"spec.options['source_dir'] must be a local folder, got {source_dir!r}")
    if not entry_point:
        raise ValueError(
            "spec.options['entry_point'] is required with source_dir: the script, relative to it"
        )
    program = Path(str(entry_point))
    if program.is_absolute():
        try:
            program = program.relative_to(folder.resolve())
        except ValueError:
            raise ValueError(
                f"spec.options['entry_point'] {entry_point!r} is not inside source_dir {source_dir!r}"
            ) from None
    if not (folder / program).is_file():
        raise ValueError(f"spec.options['entry_point']: no file {program} in source_dir {source_dir!r}")
    return folder_files(folder), program.as_posix()


def builtin_trainer_source(module: str) -> SourceFiles:
    """The built-in trainer's modules under ``airflow_trainkit/`` and a launcher that runs ``module``."""
    import airflow_trainkit

    package = Path(airflow_trainkit.__file__).parent
    files: SourceFiles = {f"airflow_trainkit/{name}": package / name for name in BUILTIN_TRAINER_FILES}
    files[BUILTIN_PROGRAM] = _LAUNCHER.format(module=module).encode()
    return files


def folder_files(folder: Path) -> SourceFiles:
    """Every file of ``folder`` by its path inside it, leaving out ``__pycache__`` and ``.git``."""
    files: SourceFiles = {}
    for item in sorted(folder.rglob("*")):
        parts = item.relative_to(folder).parts
        if item.is_file() and not any(p in ("__pycache__", ".git") for p in parts):
            files["/".join(parts)] = item
    return files


def package_source(files: SourceFiles) -> bytes:
    """``sourcedir.tar.gz`` bytes holding ``files`` under their names."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in sorted(files.items()):
            if isinstance(content, Path):
                archive.add(content, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
