"""The Ray job's entrypoint wrapper: runs the spec's command and stops it at ``max_runtime``.

Shipped to the cluster in the job's working directory as ``trainkit_ray_launch.py`` (stdlib only:
the cluster has neither Airflow nor trainkit). The limit is enforced here, on the cluster, as well as
by the task's deadline, so a job outlives neither a dead triggerer nor a hard-killed task by more
than its limit. The command stays in this process group: Ray's own stop signals both. With
``--start-by EPOCH`` (the task's deadline), a job the cluster places only after that time (it was
PENDING for lack of resources, and the task has given up on it) exits without running the command.

Usage: ``python trainkit_ray_launch.py --max-runtime SECONDS [--grace SECONDS] [--start-by EPOCH] -- COMMAND...``
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

# Exit code of a command stopped at its limit (as coreutils ``timeout``).
TIMED_OUT = 124


def main(argv: list[str]) -> int:
    """Run the command; its exit code, or :data:`TIMED_OUT` when the limit stopped it."""
    if "--" not in argv:
        print("trainkit launcher: usage: --max-runtime SECONDS [--grace SECONDS] -- COMMAND...", flush=True)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    values = dict(zip(options[::2], options[1::2], strict=False))
    max_runtime = float(values.get("--max-runtime", "0"))
    grace = float(values.get("--grace", "30"))
    if not command or max_runtime <= 0:
        print("trainkit launcher: a command and a positive --max-runtime are required", flush=True)
        return 2
    start_by = float(values.get("--start-by", "0"))
    if start_by and time.time() > start_by:
        print(
            f"trainkit launcher: started {time.time() - start_by:.0f} s after the task's deadline; "
            "not running the command",
            flush=True,
        )
        return TIMED_OUT
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        # Ray's stop sends SIGTERM to the whole group; forwarding covers a stop of this process alone.
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    deadline = time.monotonic() + max_runtime
    while True:
        try:
            code = child.wait(timeout=max(deadline - time.monotonic(), 0.0))
            return code if code >= 0 else 128 - code
        except subprocess.TimeoutExpired:
            break
    print(f"trainkit launcher: max_runtime of {max_runtime:g} s passed; stopping the command", flush=True)
    child.terminate()
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return TIMED_OUT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
