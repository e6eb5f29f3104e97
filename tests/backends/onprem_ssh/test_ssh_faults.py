"""The SSH transport when the network or the host misbehaves, and when it must refuse a host."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time

import pytest
from ssh_testing import host_entry, spec
from sshd_hosts import free_port, keygen
from trainkit_testing import first_trigger_event, job_reaches, make_context

from airflow_trainkit._compat import TaskDeferred
from airflow_trainkit.backends.onprem import ssh
from airflow_trainkit.exceptions import TrainingJobUnreachable
from airflow_trainkit.operators.training import TrainModelOperator

pytestmark = pytest.mark.integration
CONN = "trainkit_onprem_ssh"


def deferred_trigger(script: str, poll_interval: float = 0.1, run_id: str = "run"):
    op = TrainModelOperator(
        task_id="train",
        backend="onprem",
        backend_conn_id=CONN,
        spec={"command": ["sh", "-c", script]},
        poll_interval=poll_interval,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context(run_id=run_id))
    return deferred.value.trigger


def trigger_in_thread(trigger) -> tuple[threading.Thread, dict]:
    """The trigger runs to its event in a thread with its own event loop, as in a triggerer."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(event=first_trigger_event(trigger)), daemon=True)
    thread.start()
    return thread, out


def joined(thread: threading.Thread, out: dict) -> dict:
    thread.join(timeout=90)
    assert not thread.is_alive(), "the trigger never yielded its event"
    return out["event"]


@pytest.mark.parametrize("fault", ["drop_connections", "restart_sshd"])
def test_the_job_outlives_the_connection_and_the_trigger_reconnects(onprem_ssh, gpu_hosts, fault):
    host = gpu_hosts["a"]
    entry = host_entry(host)
    backend = onprem_ssh([entry])
    # The job runs until the test releases it, after the fault: the trigger must see it end.
    trigger = deferred_trigger(
        'while [ ! -e "$TRAINKIT_JOB_DIR/../release" ]; do sleep 0.1; done; echo survived'
    )
    job_reaches(backend, trigger.ref, lambda s: s.state == "RUNNING")
    thread, out = trigger_in_thread(trigger)
    time.sleep(1)  # the trigger is polling on its own connection
    opened = ssh.POOL.opened
    getattr(host, fault)()  # every SSH session of the host dies (and, restarting, sshd itself)
    host.run(f"touch {entry['root']}/release")
    event = joined(thread, out)
    assert event["status"] == "done", event
    assert (event["job"]["state"], event["job"]["details"]["host"]) == ("SUCCEEDED", "gpu_a")
    assert ssh.POOL.opened > opened  # a new connection was made after the fault
    assert backend.log_tail(trigger.ref) == ["survived"]


def test_one_remote_command_per_describe_and_one_connection_per_host(onprem_ssh, gpu_hosts, monkeypatch):
    onprem_ssh([host_entry(gpu_hosts["a"])])
    interval = 0.5
    triggers = [deferred_trigger("sleep 3", poll_interval=interval, run_id=f"run-{i}") for i in range(4)]
    calls: list[str] = []
    real_call = ssh.SshTransport._call

    async def counting(self, target, op, args):
        calls.append(op)
        return await real_call(self, target, op, args)

    monkeypatch.setattr(ssh.SshTransport, "_call", counting)
    opened = ssh.POOL.opened

    async def run_all():
        start = time.monotonic()
        events = await asyncio.gather(*(first_event(t) for t in triggers))
        return events, time.monotonic() - start

    async def first_event(trigger):
        async for event in trigger.run():
            return event.payload

    events, elapsed = asyncio.run(run_all())
    assert all(e["status"] == "done" and e["job"]["state"] == "SUCCEEDED" for e in events), events
    jobs = len({t.job_id for t in triggers})
    assert jobs == 4
    # One snapshot per describe, at most one describe per job per interval; one connection in all.
    assert set(calls) == {"snapshot"}
    assert len(calls) <= jobs * (math.ceil(elapsed / interval) + 1), (len(calls), elapsed)
    assert ssh.POOL.opened - opened == 1


def test_an_unknown_or_changed_host_key_is_refused_before_anything_starts(
    onprem_ssh, gpu_hosts, monkeypatch, tmp_path
):
    host = gpu_hosts["a"]
    entry = host_entry(host, ssh_conn_id="gpu_a_other_key")
    # The key of another host where host a's should be: a changed key.
    monkeypatch.setenv(
        "AIRFLOW_CONN_GPU_A_OTHER_KEY", host.connection(host_key=gpu_hosts["b"].host_public_key)
    )
    backend = onprem_ssh([entry])
    with pytest.raises(TrainingJobUnreachable, match=r"its host key is not trusted") as refused:
        backend.check(spec("true"))
    assert f"127.0.0.1:{host.port} (connection 'gpu_a_other_key')" in str(refused.value)
    assert not backend.is_transient(refused.value)
    with pytest.raises(TrainingJobUnreachable, match=r"its host key is not trusted"):
        backend.submit(spec("true"), "ssh-never")
    assert host.run(f"test -e {entry['root']} && echo there || echo absent").strip() == "absent"
    # No host key and an empty known_hosts file: an unknown host is refused too.
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    conn = json.loads(host.connection())
    del conn["extra"]["host_key"]
    conn["extra"]["known_hosts"] = str(empty)
    monkeypatch.setenv("AIRFLOW_CONN_GPU_A_OTHER_KEY", json.dumps(conn))
    with pytest.raises(TrainingJobUnreachable, match=r"its host key is not trusted"):
        onprem_ssh([entry]).check(spec("true"))
    # Only an explicit opt-out skips the check.
    conn["extra"]["no_host_key_check"] = True
    monkeypatch.setenv("AIRFLOW_CONN_GPU_A_OTHER_KEY", json.dumps(conn))
    onprem_ssh([entry]).check(spec("true"))


def test_a_refused_key_and_an_unreachable_host_name_the_host_never_the_key(
    onprem_ssh, gpu_hosts, monkeypatch, tmp_path
):
    host = gpu_hosts["a"]
    keygen(tmp_path / "stranger", "stranger")
    stranger_key = (tmp_path / "stranger").read_text()
    conn = json.loads(host.connection())
    del conn["extra"]["key_file"]
    conn["extra"]["private_key"] = stranger_key
    monkeypatch.setenv("AIRFLOW_CONN_GPU_STRANGER", json.dumps(conn))
    with pytest.raises(TrainingJobUnreachable, match=r"refused user 'root''s key") as refused:
        onprem_ssh([host_entry(host, ssh_conn_id="gpu_stranger")]).check(spec("true"))
    assert "gpu_stranger" in str(refused.value) and "PRIVATE KEY" not in str(refused.value)
    assert stranger_key.splitlines()[1] not in str(refused.value)

    conn = json.loads(host.connection())
    conn["port"] = free_port()  # nobody listens there
    monkeypatch.setenv("AIRFLOW_CONN_GPU_NOWHERE", json.dumps(conn))
    backend = onprem_ssh([host_entry(host, ssh_conn_id="gpu_nowhere")])
    with pytest.raises(
        TrainingJobUnreachable,
        match=rf"on-prem host 127.0.0.1:{conn['port']} \(connection 'gpu_nowhere'\) cannot be reached",
    ) as unreachable:
        backend.check(spec("true"))
    assert backend.is_transient(unreachable.value)


def test_bad_host_settings_are_refused_naming_the_field(onprem_ssh, gpu_hosts, monkeypatch):
    entry = host_entry(gpu_hosts["a"])
    cases = [
        (
            {**entry, "root": "relative/jobs"},
            r"hosts\[0\].root must be an absolute path on the host, got 'relative/jobs'",
        ),
        ({**entry, "gpus": "0,x"}, r"'x' is not a GPU index"),
        ({**entry, "colour": "red"}, r"hosts\[0\]: unknown key\(s\) \['colour'\]"),
        ({**entry, "ssh_conn_id": ""}, r"hosts\[0\].ssh_conn_id must be a connection id, got ''"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            _ = onprem_ssh([bad]).settings
    with pytest.raises(ValueError, match=r"ssh_conn_id 'gpu_a' is listed twice"):
        _ = onprem_ssh([entry, entry]).settings
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SSH", json.dumps({"conn_type": "http", "host": "x"}))
    with pytest.raises(
        ValueError, match=r"hosts\[\].ssh_conn_id 'not_ssh': connection type 'http' is not 'ssh'"
    ):
        onprem_ssh([host_entry(gpu_hosts["a"], ssh_conn_id="not_ssh")]).check(spec("true"))
    with pytest.raises(TrainingJobUnreachable, match=r"\(connection 'gpu_a'\) has no '/usr/bin/python3.9'"):
        onprem_ssh([host_entry(gpu_hosts["a"], python="/usr/bin/python3.9")]).check(spec("true"))


# The host runs each command through this wrapper; after the first spawn ran, it kills its own session,
# so the create is carried out and its answer never arrives (a connection dropped at the worst moment).
_DROP_AFTER_SPAWN = r"""
import os, signal, subprocess, sys
request = sys.stdin.buffer.read()
done = subprocess.run(["/bin/sh", "-c", os.environ["SSH_ORIGINAL_COMMAND"]], input=request, capture_output=True)
if b'"op": "spawn"' in request:
    try:
        os.rename(sys.argv[1], sys.argv[1] + ".taken")
        os.kill(os.getppid(), signal.SIGKILL)
    except OSError:
        pass
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
sys.exit(done.returncode)
"""


@pytest.fixture
def answer_dropping_host(tmp_path, monkeypatch):
    """A host whose first spawn runs but whose answer is lost; connection ``gpu_drop``."""
    from sshd_hosts import FakeGpuHost, SshKeys

    flag, wrapper = tmp_path / "drop-next-spawn", tmp_path / "wrapper.py"
    wrapper.write_text(_DROP_AFTER_SPAWN)
    flag.write_text("once")
    host = FakeGpuHost(
        "drop",
        tmp_path,
        SshKeys.make(tmp_path / "keys"),
        force_command=f"exec /usr/bin/python3 {wrapper} {flag}",
    ).start()
    monkeypatch.setenv("AIRFLOW_CONN_GPU_DROP", host.connection())
    try:
        yield host
    finally:
        host.stop()


def test_a_spawn_whose_answer_is_lost_is_followed_not_failed_nor_repeated(onprem_ssh, answer_dropping_host):
    """On a last try, failing here would leave the started job running with nobody watching it."""
    host = answer_dropping_host
    entry = host_entry(host)
    onprem_ssh([entry])
    script = 'echo run >> "$TRAINKIT_JOB_DIR/../runs"; sleep 3'
    trigger = deferred_trigger(script, run_id="lost-answer")  # deferred on the job: not failed
    assert (host.base.parent / "drop-next-spawn.taken").exists(), "the answer was never dropped"
    event = first_trigger_event(trigger)
    assert event["status"] == "done" and event["job"]["phase"] == "succeeded", event
    assert host.run(f"cat {entry['root']}/runs").split() == ["run"]  # one runner, not two
