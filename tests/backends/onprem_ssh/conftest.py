"""Two fake GPU hosts for the whole session, each a real sshd in namespaces of its own."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sshd_hosts import FakeGpuHost, SshKeys  # noqa: E402
from trainkit_testing import environ_set  # noqa: E402


@pytest.fixture(scope="session")
def gpu_hosts() -> dict[str, FakeGpuHost]:
    """Hosts ``a`` and ``b``, reached through connections ``gpu_a`` and ``gpu_b`` (type ``ssh``)."""
    for tool in ("/usr/sbin/sshd", "ssh-keygen", "unshare", "nsenter"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: the SSH transport's tests need openssh-server and util-linux")
    base = Path(tempfile.mkdtemp(prefix="trainkit-sshd-"))
    keys = SshKeys.make(base / "keys")
    hosts: dict[str, FakeGpuHost] = {}
    try:
        for name in ("a", "b"):
            hosts[name] = FakeGpuHost(name, base, keys).start()
        env = {f"AIRFLOW_CONN_GPU_{name.upper()}": host.connection() for name, host in hosts.items()}
        with environ_set(env):
            yield hosts
    finally:
        for host in hosts.values():
            host.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def onprem_ssh(gpu_hosts, monkeypatch, tmp_path):
    """``make(entries, grace_seconds=1)``: an on-prem backend on connection ``trainkit_onprem_ssh``
    whose hosts are ``entries`` (default: host ``a`` without GPUs, a fresh job root)."""
    from ssh_testing import host_entry, onprem_ssh_connection

    from airflow_trainkit.backends.onprem import OnPremBackend

    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))

    def make(entries=None, grace_seconds: float = 1) -> OnPremBackend:
        entries = entries or [host_entry(gpu_hosts["a"])]
        monkeypatch.setenv("AIRFLOW_CONN_TRAINKIT_ONPREM_SSH", onprem_ssh_connection(entries, grace_seconds))
        return OnPremBackend("trainkit_onprem_ssh")

    return make
