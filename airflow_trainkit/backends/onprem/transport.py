"""Where an on-prem job's processes run and its job directory lives: the transport seam.

``LocalTransport`` runs on this host. A remote GPU server over SSH will be a second class with
the same methods; the backend and the runner talk only to this interface.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Protocol


class Transport(Protocol):
    """What the on-prem backend needs from the host that runs its jobs."""

    def read_text(self, path: Path) -> str | None: ...

    def write_text_atomic(self, path: Path, text: str) -> None:
        """Write a job-control file whole, readable by its owner only (0600)."""
        ...

    def make_dirs(self, path: Path) -> None: ...

    def make_private_dir(self, path: Path) -> None:
        """Make a directory only its owner can enter (0700): a job's directory."""
        ...

    def exists(self, path: Path) -> bool: ...

    def spawn_detached(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> int: ...

    def signal_group(self, pgid: int, sig: int) -> bool: ...

    def process_alive(self, pid: int, start_ticks: int | None) -> bool: ...

    def gpus(self) -> list[dict[str, str]]: ...


class LocalTransport:
    """Jobs run on this host, as their own session, outliving the task process that started them."""

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    def write_text_atomic(self, path: Path, text: str) -> None:
        from airflow_trainkit.storage import write_private_atomic

        write_private_atomic(path, text.encode())

    def make_dirs(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def make_private_dir(self, path: Path) -> None:
        from airflow_trainkit.storage import make_private_dir

        make_private_dir(path)

    def exists(self, path: Path) -> bool:
        return path.exists()

    def spawn_detached(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> int:
        # The environment goes to the process directly, never through a file. Own session, so the
        # job survives the task process; stdio never inherited, or the LocalExecutor keeps the slot
        # for 60 s after the task exits ("open sockets").
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        return process.pid

    def signal_group(self, pgid: int, sig: int) -> bool:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def process_alive(self, pid: int, start_ticks: int | None) -> bool:
        """Alive and the same process: a recycled pid has another start time."""
        ticks = process_start_ticks(pid)
        if ticks is None:
            return False
        if _is_zombie(pid):
            return False
        return start_ticks is None or ticks == start_ticks

    def gpus(self) -> list[dict[str, str]]:
        """This host's GPUs: ``TRAINKIT_ONPREM_GPUS`` ("0,1" or "none") if set, else nvidia-smi."""
        configured = os.environ.get("TRAINKIT_ONPREM_GPUS")
        if configured is not None:
            return parse_gpu_list(configured)
        smi = shutil.which("nvidia-smi")
        if not smi:
            return []
        try:
            out = subprocess.run(
                [smi, "--query-gpu=index,name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        gpus = []
        for line in out.splitlines():
            index, _, name = line.partition(",")
            if index.strip().isdigit():
                gpus.append({"index": index.strip(), "name": name.strip()})
        return gpus


def parse_gpu_list(text: str) -> list[dict[str, str]]:
    """``"0,1"`` -> two GPUs of unknown model; ``""`` or ``"none"`` -> no GPU."""
    text = text.strip()
    if text.lower() in ("", "none"):
        return []
    gpus = []
    for item in text.split(","):
        index = item.strip()
        if not index.isdigit():
            raise ValueError(
                f"GPU list {text!r}: {index!r} is not a GPU index; expected e.g. '0,1' or 'none'"
            )
        gpus.append({"index": index, "name": ""})
    return gpus


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


SIGTERM = signal.SIGTERM
SIGKILL = signal.SIGKILL
