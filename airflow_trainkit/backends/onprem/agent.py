"""What the on-prem backend does on the host that runs its jobs, one operation per call. Stdlib only.

The local transport calls :func:`dispatch` in its own process; the SSH transport ships this file's
source to the GPU host with each call (on the SSH channel's stdin, with the operation's arguments)
and runs it there with the host's Python, so a GPU server needs nothing but Python 3.11 or later.
Each operation answers in one call what the backend needs at that moment (``snapshot`` reads a
job's state, record and runner in one go), so one describe is one remote command.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT_MARKER = ".trainkit-onprem-root"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def write_private(path: Path, text: str) -> None:
    """Write a job-control file whole (temporary sibling, then rename), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
            handle.write(text.encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_private_dir(path: Path) -> None:
    """Make a job-control folder 0700 (tightening one that exists), its parents as the umask says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)


def read_text(path: Path) -> str | None:
    """A file's text, or ``None`` when there is no such file."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether ``pid`` still runs and is the same process (its start time matches), not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return False
    return start_ticks is None or int(fields[19]) == int(start_ticks)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; ``False`` when the group is gone or not ours to signal."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# The operations. Each takes JSON arguments and returns a JSON value.


def op_hello() -> dict[str, Any]:
    """This host's Python version and interpreter, and its name: the transport's reachability check."""
    return {"python": list(sys.version_info[:3]), "host": socket.gethostname(), "executable": sys.executable}


def op_prepare_root(root: str) -> None:
    """Make the job root and its marker (which tells a root that is not there from an empty one)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    if not (Path(root) / ROOT_MARKER).exists():
        write_private(Path(root) / ROOT_MARKER, "trainkit on-prem job root\n")


def op_prepare(
    root: str,
    job_id: str,
    job_json: str,
    state_json: str,
    output_dir: str | None = None,
    files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Make the job's private directory and its control files; ``exists`` if the job has one already."""
    root_path = Path(root)
    op_prepare_root(root)
    job_dir = root_path / job_id
    if (job_dir / "job.json").exists():
        return {"exists": True}
    make_private_dir(job_dir)
    (job_dir / "work").mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        target = (job_dir / name).resolve()
        if job_dir.resolve() not in target.parents:
            raise ValueError(f"shipped file {name!r} would land outside the job directory")
        write_private(target, text)
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)  # artifacts honour the umask
    write_private(job_dir / "job.json", job_json)
    write_private(job_dir / "state.json", state_json)
    return {"exists": False}


def op_spawn(job_dir: str, argv: list[str], env: dict[str, str], inherit: bool = False) -> dict[str, Any]:
    """Start the runner in a session of its own, so it outlives this call (and an SSH session).

    The environment goes to the process directly, never through a file; ``inherit`` puts it over
    this process's own (a GPU host's login environment) instead of replacing it. Standard streams
    are not inherited: a caller waiting for them to close would wait for the job.
    """
    process = subprocess.Popen(
        argv,
        cwd=job_dir,
        env={**os.environ, **env} if inherit else env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    runner = {"pid": process.pid, "start_ticks": process_start_ticks(process.pid)}
    write_private(Path(job_dir) / "runner.json", json.dumps(runner))
    return runner


def runner_alive(job_dir: Path, state: dict[str, Any], start_grace: float) -> bool:
    """Whether the job's runner still runs; one that has not recorded a pid yet gets ``start_grace``
    seconds after the submit."""
    runner = json.loads(read_text(job_dir / "runner.json") or "{}")
    pid = state.get("runner_pid") or runner.get("pid")
    if pid is None:
        submitted = datetime.fromisoformat(state.get("submitted_at") or utcnow())
        return (datetime.now(UTC) - submitted).total_seconds() < start_grace
    ticks = state.get("runner_start_ticks") or runner.get("start_ticks")
    return process_alive(int(pid), ticks)


def utcnow() -> str:
    """Now in UTC, ISO 8601 to the millisecond: the timestamps of ``state.json`` and ``stop.json``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def op_snapshot(root: str, job_id: str, start_grace: float) -> dict[str, Any]:
    """Everything describe needs about one job, read on the host in one call."""
    job_dir = Path(root) / job_id
    state_text = read_text(job_dir / "state.json")
    answer: dict[str, Any] = {"root_visible": (Path(root) / ROOT_MARKER).exists(), "state": None}
    if state_text is None:
        return answer
    state = json.loads(state_text)
    answer.update(
        state=state,
        job=json.loads(read_text(job_dir / "job.json") or "{}"),
        runner_alive=runner_alive(job_dir, state, start_grace)
        if state.get("state") not in TERMINAL
        else False,
    )
    return answer


def op_stop(root: str, job_id: str, reason: str, start_grace: float) -> dict[str, Any]:
    """Ask the job to stop: a stop request, SIGTERM to a runner that records its pid, or, with no
    runner left, SIGKILL to the orphaned group. Harmless when repeated."""
    job_dir = Path(root) / job_id
    state_text = read_text(job_dir / "state.json")
    if state_text is None:
        return {"found": False}
    state = json.loads(state_text)
    if state.get("state") in TERMINAL:
        return {"found": True, "signalled": None}
    requested_at = utcnow()
    if not (job_dir / "stop.json").exists():
        write_private(job_dir / "stop.json", json.dumps({"reason": reason, "requested_at": requested_at}))
    signalled = None
    if runner_alive(job_dir, state, start_grace):
        # A runner that has not yet recorded its pid reads stop.json before it starts the command;
        # one that has gets SIGTERM, forwards it to the job's group and escalates.
        if state.get("runner_pid"):
            signal_group(int(state["runner_pid"]), signal.SIGTERM)
            signalled = "runner"
    elif state.get("child_pgid"):
        signal_group(int(state["child_pgid"]), signal.SIGKILL)  # no runner left to escalate: no grace
        signalled = "group"
    return {"found": True, "signalled": signalled}


def op_read(path: str, limit: int = 1_000_000) -> str | None:
    """A small file's text (``metrics.json``), ``None`` if there is none or it is larger than ``limit``."""
    try:
        if Path(path).stat().st_size > limit:
            return None
    except OSError:
        return None
    return read_text(Path(path))


def op_tail(path: str, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (a job's ``output.log``); none when it is absent."""
    text = read_text(Path(path)) or ""
    return text.splitlines()[-int(lines) :]


def op_missing(paths: list[str]) -> list[str]:
    """Which of ``paths`` do not exist on this host (a job's local inputs, checked before submit)."""
    return [p for p in paths if not Path(p).exists()]


def op_missing_modules(names: list[str]) -> list[str]:
    """Which of ``names`` this Python cannot import (the trainer's libraries on a GPU host)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def op_busy_gpus(root: str, indexes: list[str]) -> list[str]:
    """Which GPUs a job holds now: their lock is taken (tried without waiting, released at once)."""
    lock_dir = Path(root) / "gpu-locks"
    busy = []
    for index in indexes:
        path = lock_dir / f"gpu{index}.lock"
        if not path.exists():
            continue
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy.append(index)
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return busy


def op_gpus() -> list[dict[str, str]]:
    """The host's GPUs as ``nvidia-smi`` lists them; none without it."""
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


# What the SSH transport runs remotely: the first line of stdin is this file's source as a JSON
# string, the rest the request (which may hold the job's environment: it never touches the disk).
BOOTSTRAP = (
    "import sys,json;src=json.loads(sys.stdin.readline());"
    "exec(compile(src,'trainkit_agent','exec'),{'__name__':'trainkit_agent'})"
)

OPERATIONS: dict[str, Any] = {
    "hello": op_hello,
    "prepare_root": op_prepare_root,
    "prepare": op_prepare,
    "spawn": op_spawn,
    "snapshot": op_snapshot,
    "stop": op_stop,
    "tail": op_tail,
    "read": op_read,
    "missing": op_missing,
    "missing_modules": op_missing_modules,
    "busy_gpus": op_busy_gpus,
    "gpus": op_gpus,
}


def dispatch(op: str, args: dict[str, Any]) -> Any:
    """Run the operation named ``op`` with its JSON arguments; ``ValueError`` for an unknown name."""
    if op not in OPERATIONS:
        raise ValueError(f"unknown on-prem agent operation {op!r}")
    return OPERATIONS[op](**args)


def main() -> int:
    """Remote entry (see :data:`BOOTSTRAP`): the request follows the source on stdin; one JSON answer
    on stdout."""
    request = json.load(sys.stdin)
    try:
        answer = {"ok": True, "result": dispatch(request["op"], request.get("args") or {})}
    except Exception as err:  # reported to the caller, which raises it there
        answer = {"ok": False, "error": f"{type(err).__name__}: {err}"}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0


if __name__ == "trainkit_agent":
    sys.exit(main())
