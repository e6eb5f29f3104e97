"""PID 1 of one fake GPU host: its own mount, UTS and PID namespaces (started by ``unshare``).

It mounts a private tmpfs over the host's folder (so the job roots there are invisible to the test
process), gives the host's users empty shell start-up files, names the host, starts sshd and reaps orphans. Signals from the test: SIGHUP restarts
sshd (every sshd process of the host dies, listener and sessions), SIGUSR1 drops the SSH
connections (the sessions die, the listener stays), SIGUSR2 takes sshd down until the next SIGHUP
(every sshd process dies and none is started: connections are refused), SIGTERM ends the host and
everything in it. Each action done is counted in ``<control>/acks``.

    python _ns_init.py CONTROL_DIR HOST_DIR HOSTNAME SSHD_CONFIG
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

control, host_dir, hostname, config = (Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=256m", "tmpfs", host_dir], check=True)
# The host's users get empty shell start-up files, not this machine's (pyenv's take 0.3 s a command).
empty = control / "empty-rc"
empty.write_text("")
for name in (".bashrc", ".profile", ".bash_profile", ".bash_login"):
    rc = Path(os.path.expanduser("~")) / name
    if rc.is_file():
        subprocess.run(["mount", "--bind", str(empty), str(rc)], check=True)
socket.sethostname(hostname)
actions: list[str] = []
signal.signal(signal.SIGHUP, lambda *_: actions.append("restart"))
signal.signal(signal.SIGUSR1, lambda *_: actions.append("drop"))
signal.signal(signal.SIGUSR2, lambda *_: actions.append("down"))
signal.signal(signal.SIGTERM, lambda *_: actions.append("exit"))


def start_sshd() -> subprocess.Popen[bytes]:
    with open(control / "sshd.log", "ab") as log:
        return subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=log)


def sshd_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "sshd":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


sshd = start_sshd()
acks = 0
(control / "ready").write_text(str(os.getpid()))
while True:
    while True:  # reap orphans: runners whose agent exited are ours now
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    while actions:
        action = actions.pop(0)
        if action == "exit":
            os.kill(-1, signal.SIGKILL)  # every other process of this PID namespace
            sys.exit(0)
        keep = {sshd.pid} if action == "drop" else set()
        for pid in sshd_pids():
            if pid not in keep:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if action in ("restart", "down"):
            sshd.wait()
        if action == "restart":
            sshd = start_sshd()
        acks += 1
        (control / "acks").write_text(str(acks))
    time.sleep(0.05)
