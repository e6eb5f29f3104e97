"""storage's two kinds of writes: artifacts and reports honour the umask, job-control files are private."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from airflow_trainkit import storage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_artifacts_and_reports_honour_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    model = Path(storage.write_bytes_atomic(str(tmp_path / "out" / "model.json"), b"{}"))
    assert mode(model) == file_mode and model.read_bytes() == b"{}"
    report = Path(
        storage.write_folder_atomic(str(tmp_path / "report"), {"a.json": "{}", "sub/b.html": "<p>"})
    )
    assert mode(report) == dir_mode and mode(report / "sub") == dir_mode
    assert {mode(report / name) for name in ("a.json", "sub/b.html", storage.SUCCESS_MARKER)} == {file_mode}
    # Replacing keeps the rule, and no temporary sibling is left behind.
    storage.write_folder_atomic(str(tmp_path / "report"), {"a.json": "{}"})
    assert mode(tmp_path / "report") == dir_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "report"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.json"]


def test_job_control_files_are_0600_in_a_0700_directory_whatever_the_umask(tmp_path, umask):
    umask(0)
    job_dir = storage.make_private_dir(tmp_path / "root" / "job-1")
    assert mode(job_dir) == 0o700
    assert mode(tmp_path / "root") == 0o777  # only the job's own directory is private
    state = Path(storage.write_private_atomic(job_dir / "state.json", b"{}"))
    assert mode(state) == 0o600 and state.read_bytes() == b"{}"
    with storage.open_private_append(job_dir / "output.log") as log:
        log.write(b"one\n")
    with storage.open_private_append(job_dir / "output.log") as log:
        log.write(b"two\n")
    assert mode(job_dir / "output.log") == 0o600
    assert (job_dir / "output.log").read_bytes() == b"one\ntwo\n"
    assert sorted(p.name for p in job_dir.iterdir()) == ["output.log", "state.json"]


def test_private_writes_tighten_what_an_older_version_left_wider(tmp_path, umask):
    umask(0o022)
    job_dir = tmp_path / "job"
    job_dir.mkdir(mode=0o755)
    (job_dir / "job.json").write_text("old")
    (job_dir / "output.log").write_text("old\n")
    storage.make_private_dir(job_dir)
    storage.write_private_atomic(job_dir / "job.json", b"new")
    storage.open_private_append(job_dir / "output.log").close()
    assert (mode(job_dir), mode(job_dir / "job.json"), mode(job_dir / "output.log")) == (0o700, 0o600, 0o600)


def test_private_files_never_go_to_object_storage():
    with pytest.raises(ValueError, match=r"path 's3://bucket/job\.json': job-control files are local"):
        storage.write_private_atomic("s3://bucket/job.json", b"{}")
