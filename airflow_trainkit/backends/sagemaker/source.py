"""Script mode: the local source a spec names, packaged as the ``sourcedir.tar.gz`` SageMaker runs.

Framework containers unpack it and run its entry point; this module only finds and archives files.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_trainkit.training.spec import TrainingJobSpec

# ``entry_point`` value that means "the built-in trainer module shipped with trainkit".
BUILTIN_ENTRY_POINTS = {"trainkit:xgboost": "airflow_trainkit.trainers.xgboost"}
SOURCE_ARCHIVE = "sourcedir.tar.gz"


def script_source(spec: TrainingJobSpec) -> tuple[Path, str] | None:
    """``(folder or file to package, program name)`` when the spec asks for script mode."""
    source_dir = spec.options.get("source_dir")
    entry_point = spec.options.get("entry_point")
    if not source_dir and not entry_point:
        return None
    if entry_point in BUILTIN_ENTRY_POINTS:
        from importlib.util import find_spec

        module = BUILTIN_ENTRY_POINTS[entry_point]
        found = find_spec(module)
        if found is None or not found.origin:
            raise ValueError(f"spec.options['entry_point']: built-in trainer {module} is not installed")
        entry_point = found.origin
    if source_dir:
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
        return folder, program.as_posix()
    script = Path(str(entry_point)).expanduser()
    if not script.is_file():
        raise ValueError(f"spec.options['entry_point'] must be a local script file, got {entry_point!r}")
    return script, script.name


def package_source(path: Path) -> bytes:
    """``sourcedir.tar.gz`` bytes of a folder (its contents at the root) or of one script."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        if path.is_file():
            archive.add(path, arcname=path.name)
        else:
            for item in sorted(path.rglob("*")):
                parts = item.relative_to(path).parts
                if item.is_file() and not any(p in ("__pycache__", ".git") for p in parts):
                    archive.add(item, arcname="/".join(parts))
    return buffer.getvalue()
