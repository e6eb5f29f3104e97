"""Fake GPU hosts for the SSH transport's tests: a real OpenSSH sshd each, on a loopback port, in
namespaces of its own (mount, host name, PIDs), with a host key and a user key made per run.

What a job writes under a host's folder lives on a tmpfs only that host's processes see, its
processes are not this process's to signal, and its host name is not this machine's: an
implementation that quietly works on the local host fails the tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trainkit_testing import free_port, wait_until

SSHD = "/usr/sbin/sshd"
INIT = Path(__file__).with_name("_ns_init.py")
START_SECONDS = 30.0


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshKeys:
    """One run's keys: the user's key pair and its authorized_keys file."""

    folder: Path
    user_key: Path
    authorized_keys: Path

    @classmethod
    def make(cls, folder: Path) -> SshKeys:
        folder.mkdir(parents=True, exist_ok=True)
        public = keygen(folder / "user_ed25519", "trainkit-test-user")
        authorized = folder / "authorized_keys"
        authorized.write_text(public + "\n")
        authorized.chmod(0o600)
        return cls(folder, folder / "user_ed25519", authorized)


class FakeGpuHost:
    """One sshd host. ``folder`` (its job roots live below) is a private tmpfs inside the host."""

    def __init__(self, name: str, base: Path, keys: SshKeys, force_command: str | None = None) -> None:
        self.name = name
        self.force_command = force_command  # sshd's ForceCommand: runs instead of every command
        self.base = base / name
        self.folder = self.base / "host"  # mounted over inside the host only
        self.control = self.base / "control"
        self.keys = keys
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> FakeGpuHost:
        for path in (self.folder, self.control):
            path.mkdir(parents=True, exist_ok=True)
        self.host_public_key = keygen(self.base / "host_ed25519", f"{self.name}-host")
        config = self.base / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.base / 'host_ed25519'}",
                    "PidFile none",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    f"AuthorizedKeysFile {self.keys.authorized_keys}",
                    "StrictModes no",
                    "MaxStartups 100:30:200",
                    "MaxSessions 100",
                    "LogLevel ERROR",
                    *([f"ForceCommand {self.force_command}"] if self.force_command else []),
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        checked = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
        assert checked.returncode == 0, f"sshd refuses the test configuration: {checked.stderr}"
        self.process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--mount-proc",
                "--propagation",
                "private",
                sys.executable,
                str(INIT),
                str(self.control),
                str(self.folder),
                f"gpu-{self.name}",
                str(config),
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=open(self.control / "init.log", "ab"),  # noqa: SIM115 - the child holds it
        )
        log = self.control / "sshd.log"
        wait_until(
            lambda: (self.control / "ready").exists(),
            f"host {self.name}'s namespace to come up",
            timeout=START_SECONDS,
            every=0.05,
            log=self.control / "init.log",
        )
        self.wait_listening(log)
        return self

    def wait_listening(self, log: Path | None = None) -> None:
        def accepts() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    return sock.recv(4).startswith(b"SSH-")
            except OSError:
                return False

        wait_until(
            accepts,
            f"sshd of host {self.name} to answer on 127.0.0.1:{self.port}",
            timeout=START_SECONDS,
            every=0.05,
            log=log,
        )

    @property
    def init_pid(self) -> int:
        """The host's PID 1, as this process sees it: the child of ``unshare``."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])

    def _act(self, sig: int, what: str) -> None:
        acks_file = self.control / "acks"
        before = int(acks_file.read_text()) if acks_file.exists() else 0
        os.kill(self.init_pid, sig)
        wait_until(
            lambda: acks_file.exists() and int(acks_file.read_text()) > before,
            f"host {self.name} to {what}",
            timeout=START_SECONDS,
            every=0.05,
        )

    def drop_connections(self) -> None:
        """Kill every SSH session of the host (its listener stays): clients see the connection drop."""
        self._act(signal.SIGUSR1, "drop its SSH connections")

    def sshd_down(self) -> None:
        """Kill every sshd process of the host and start none: connections to it are refused (its
        jobs run on) until :meth:`restart_sshd`."""
        self._act(signal.SIGUSR2, "take sshd down")

    def restart_sshd(self) -> None:
        """Kill every sshd process of the host and start sshd again (after :meth:`sshd_down` too)."""
        self._act(signal.SIGHUP, "restart sshd")
        self.wait_listening(self.control / "sshd.log")

    def stop(self) -> None:
        """End the host: its PID 1 kills every process in it; then the whole group, to be sure."""
        if self.process is None:
            return
        try:
            os.kill(self.init_pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (OSError, IndexError, ValueError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def connection(self, *, host_key: str | None = None, **extra: object) -> str:
        """An ``AIRFLOW_CONN_*`` value of type ``ssh`` for this host, trusting its real host key."""
        return json.dumps(
            {
                "conn_type": "ssh",
                "host": "127.0.0.1",
                "port": self.port,
                "login": "root",
                "extra": {
                    "key_file": str(self.keys.user_key),
                    "host_key": host_key or self.host_public_key,
                    **extra,
                },
            }
        )

    def run(self, command: str) -> str:
        """Run a shell command inside the host (as an admin would on it), for checks only."""
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-p", "--", "sh", "-c", command],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
