"""Reading a job's progress.json (the backend contract's ``progress``) and writing it (the trainer's
``ProgressWriter``): whatever the file holds, a reader gets a history of numbers or ``None``."""

from __future__ import annotations

import asyncio
import json
import math
from enum import StrEnum

import pytest

from airflow_trainkit.trainers.contract import PROGRESS_FILE, progress_history
from airflow_trainkit.trainers.xgboost_booster import ProgressWriter
from airflow_trainkit.training.backend import JobPhase, JobStatus, TrainingBackend


class FolderState(StrEnum):
    RUNNING = "Running"


class FolderBackend(TrainingBackend):
    """A backend whose jobs are only their output folders: ``progress`` is the contract's default."""

    name = "folder"
    State = FolderState
    PHASES = {FolderState.RUNNING: JobPhase.RUNNING}

    def submit(self, spec, job, identity=None):
        raise NotImplementedError

    def describe(self, job):
        raise NotImplementedError

    def stop(self, job, *, reason=""):
        pass


def running(output_uri: str | None) -> JobStatus:
    return JobStatus(job_id="j", state="Running", phase=JobPhase.RUNNING, output_uri=output_uri)


@pytest.fixture
def read(tmp_path):
    """``progress()`` of a job whose output folder holds ``content`` as progress.json."""

    def read(content: bytes | str) -> dict[str, list[float]] | None:
        path = tmp_path / PROGRESS_FILE
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        status = running(str(tmp_path))
        history = FolderBackend().progress(status)
        assert repr(asyncio.run(FolderBackend().progress_async(status))) == repr(history)
        return history

    return read


def test_a_whole_file_gives_its_history(read):
    document = {
        "round": 3,
        "first_round": 1,
        "history": {"validation-auc": [0.5, 0.6, 0.7], "train-logloss": [0.69, 0.6, 0.5]},
        "updated_at": "2026-12-02T03:00:00.000+00:00",
    }
    assert read(json.dumps(document)) == document["history"]
    assert read(json.dumps({"history": {}})) == {}  # written before the first round


def test_no_output_or_no_file_is_none(tmp_path):
    assert FolderBackend().progress(running(None)) is None
    assert FolderBackend().progress(running(str(tmp_path / "absent"))) is None
    assert FolderBackend().progress(running(str(tmp_path))) is None  # the folder, without the file


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"round": 3, "history": {"validation-auc": [0.5, 0.6',  # cut off mid-write
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"round": 3}',
        b'{"history": [0.5, 0.6]}',
        b'{"history": "validation-auc"}',
        b"[" * 100_000,  # deeper than the JSON parser goes
    ],
    ids=[
        "empty",
        "partial",
        "not text",
        "a list",
        "no history",
        "history a list",
        "history text",
        "too deep",
    ],
)
def test_a_partial_or_garbled_file_is_none(read, content):
    assert read(content) is None


def test_only_lists_of_numbers_are_kept_and_null_is_nan(read):
    history = read(
        json.dumps(
            {
                "history": {
                    "validation-auc": [0.5, 1],
                    "validation-rmse": [1.5, None, 1.2],
                    "note": "text",
                    "nested": {"a": [1]},
                    "words": [0.5, "high"],
                    "flags": [True, False],
                    "none": None,
                }
            }
        )
    )
    assert history is not None and set(history) == {"validation-auc", "validation-rmse"}
    assert history["validation-auc"] == [0.5, 1.0] and all(
        type(v) is float for v in history["validation-auc"]
    )
    assert history["validation-rmse"][0] == 1.5 and math.isnan(history["validation-rmse"][1])
    assert read('{"history": {"huge": [1' + "0" * 400 + '], "ok": [1]}}') == {"ok": [1.0]}
    assert progress_history(None) is None


def test_the_writer_writes_strict_json_that_the_reader_reads_back(tmp_path):
    writer = ProgressWriter(str(tmp_path / "out"), 0, start_round=20)
    writer.write()  # before the first round: the folder is made, the history is empty
    assert json.loads((tmp_path / "out" / PROGRESS_FILE).read_text())["history"] == {}
    writer.evals_log = {"validation": {"auc": [0.7, float("nan")], "logloss": [0.5, 0.4]}}
    writer.trained = 2
    writer.write()
    text = (tmp_path / "out" / PROGRESS_FILE).read_text()
    document = json.loads(text)
    assert "NaN" not in text and document["history"]["validation-auc"] == [0.7, None]
    assert (document["round"], document["first_round"]) == (22, 21)
    assert document["updated_at"].endswith("+00:00")
    history = FolderBackend().progress(running(str(tmp_path / "out")))
    assert history is not None and history["validation-logloss"] == [0.5, 0.4]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [PROGRESS_FILE]  # no temporary left


def test_the_writer_keeps_to_its_interval(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from airflow_trainkit.trainers import xgboost_booster

    now = [1000.0]
    monkeypatch.setattr(xgboost_booster, "time", SimpleNamespace(monotonic=lambda: now[0]))
    writer = ProgressWriter(str(tmp_path), 2.0, start_round=0)
    assert writer.due()  # the first round is written at once
    writer.write()
    now[0] += 1.9
    assert not writer.due()
    now[0] += 0.1
    assert writer.due()
    assert ProgressWriter(str(tmp_path), 0, start_round=0).due()


def test_the_writer_writes_nothing_to_object_storage_while_training(tmp_path):
    writer = ProgressWriter("s3://bucket/model", 0, start_round=0)
    writer.write()  # no filesystem is asked: an object store gets the file with the output folder
    assert writer.last_write is None and not writer.failed


def test_a_write_that_fails_is_logged_once_and_training_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = ProgressWriter(str(blocker / "out"), 0, start_round=0)
    writer.write()
    writer.write()
    assert writer.failed
    assert sum("cannot write progress.json" in r.getMessage() for r in caplog.records) == 1
