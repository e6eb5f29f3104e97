"""Deterministic job names: the same task instance and attempt always give the same name.

A retry can then find the job it already started by describing one name, never by listing an
account's jobs. The name fits the strictest backend rule we know (SageMaker: at most 63 letters,
digits and hyphens, starting with a letter), lower-cased for Vertex AI and Azure ML.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class JobIdentity:
    """Which task instance a job belongs to."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @classmethod
    def from_context(cls, context: Any) -> JobIdentity:
        """The identity of the task instance running in ``context``."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", None)
        return cls(ti.dag_id, ti.run_id, ti.task_id, -1 if map_index is None else int(map_index))

    def to_dict(self) -> dict[str, Any]:
        """The identity as JSON, for a trigger's kwargs (it asks the task's state by it)."""
        return asdict(self)

    @property
    def digest(self) -> str:
        """Ten hex characters that tell task instances apart when their slugs collide."""
        key = "\x1f".join([self.dag_id, self.run_id, self.task_id, str(self.map_index)])
        return hashlib.sha256(key.encode()).hexdigest()[:10]

    def job_name(self, attempt: int, *, max_length: int = 63, prefix: str = "tk") -> str:
        """``tk-<dag>-<task>-<digest>-a<attempt>``, slugs shortened to fit ``max_length``."""
        if attempt < 1:
            raise ValueError(f"attempt must be at least 1, got {attempt!r}")
        tail = f"-{self.digest}-a{attempt}"
        room = max_length - len(prefix) - len(tail) - 2
        if room < 2:
            raise ValueError(f"max_length {max_length} leaves no room for a readable job name")
        dag = _slug(self.dag_id) or "dag"
        task = _slug(self.task_id) or "task"
        dag_room = max(1, min(len(dag), room // 2 if len(task) > room // 2 else room - len(task)))
        task_room = room - dag_room
        return f"{prefix}-{dag[:dag_room].strip('-')}-{task[:task_room].strip('-')}{tail}"


def _slug(text: str) -> str:
    return _NOT_ALLOWED.sub("-", text.lower()).strip("-")
