"""Two GPU hosts behind one backend, with GPU inventories configured (no GPU needed): placement by
free GPUs of the asked model, queueing on a host bounded by max_wait, the host found again by name."""

from __future__ import annotations

import pytest
from ssh_testing import host_entry, spec
from trainkit_testing import job_reaches

from airflow_trainkit.training.backend import JobRef

pytestmark = pytest.mark.integration


def test_a_job_goes_to_the_host_that_has_the_model_and_is_pinned_there(onprem_ssh, gpu_hosts):
    backend = onprem_ssh(
        [host_entry(gpu_hosts["a"], gpus="0:T4"), host_entry(gpu_hosts["b"], gpus="0:A100,1:A100")]
    )
    status = backend.submit(
        spec("hostname; echo gpus=$CUDA_VISIBLE_DEVICES", accelerator="A100:2"), "place-a100"
    )
    assert status.details["host"] == "gpu_b" and status.handle == "gpu_b/place-a100"
    done = job_reaches(backend, "place-a100", lambda s: s.phase.terminal)  # found by name alone
    assert (done.state, done.details["host"], sorted(done.details["gpus"])) == (
        "SUCCEEDED",
        "gpu_b",
        ["0", "1"],
    )
    assert backend.log_tail("place-a100") == ["gpu-b", "gpus=0,1"]


def test_no_host_with_the_model_is_refused_naming_each_host(onprem_ssh, gpu_hosts):
    backend = onprem_ssh([host_entry(gpu_hosts["a"], gpus="0:T4"), host_entry(gpu_hosts["b"], gpus="0:A100")])
    with pytest.raises(ValueError) as refused:
        backend.check(spec("true", accelerator="H100:1"))
    assert str(refused.value) == (
        "no host can run it: spec.accelerator 'H100:1': host 'gpu_a' has T4; "
        "spec.accelerator 'H100:1': host 'gpu_b' has A100"
    )
    with pytest.raises(ValueError, match=r"asks for 2 GPU\(s\) but host 'gpu_b' has 1"):
        onprem_ssh([host_entry(gpu_hosts["b"], gpus="0:A100")]).check(spec("true", accelerator="A100:2"))


# A job that holds its GPU until the test releases it: a file in its host's job root.
HOLD = 'echo on $(hostname) gpu=$CUDA_VISIBLE_DEVICES; while [ ! -e "$TRAINKIT_JOB_DIR/../release" ]; do sleep 0.1; done'


def test_busy_hosts_spread_then_queue_until_a_gpu_frees(onprem_ssh, gpu_hosts):
    entries = [host_entry(gpu_hosts["a"], gpus="0:T4"), host_entry(gpu_hosts["b"], gpus="0:T4")]
    backend = onprem_ssh(entries)
    job = spec(HOLD, accelerator="T4:1")
    first = backend.submit(job, "place-1")
    job_reaches(
        backend,
        JobRef(backend="onprem", job_name="place-1", handle=first.handle),
        lambda s: s.state == "RUNNING",
    )
    second = backend.submit(job, "place-2")  # host a's only GPU is taken: host b
    job_reaches(
        backend,
        JobRef(backend="onprem", job_name="place-2", handle=second.handle),
        lambda s: s.state == "RUNNING",
    )
    third = backend.submit(job, "place-3")  # none free: it queues on the first listed host
    assert (first.details["host"], second.details["host"], third.details["host"]) == (
        "gpu_a",
        "gpu_b",
        "gpu_a",
    )
    waiting = job_reaches(backend, "place-3", lambda s: "waiting" in (s.message or ""))
    assert waiting.state == "PENDING" and waiting.message == "waiting for 1 free GPU(s)"
    for host, entry in zip((gpu_hosts["a"], gpu_hosts["b"]), entries, strict=True):
        host.run(f"touch {entry['root']}/release")
    for name in ("place-1", "place-2", "place-3"):
        assert job_reaches(backend, name, lambda s: s.phase.terminal, timeout=40).state == "SUCCEEDED"
    assert backend.log_tail("place-3") == ["on gpu-a gpu=0"]


def test_queueing_is_bounded_by_max_wait(onprem_ssh, gpu_hosts):
    backend = onprem_ssh([host_entry(gpu_hosts["a"], gpus="0:T4")])
    backend.submit(spec(HOLD, accelerator="T4:1"), "hold-gpu")
    job_reaches(backend, "hold-gpu", lambda s: s.state == "RUNNING")
    backend.submit(spec("echo never", accelerator="T4:1", max_runtime=1, max_wait=2), "wait-too-long")
    done = job_reaches(backend, "wait-too-long", lambda s: s.phase.terminal)
    assert (done.state, done.message) == ("FAILED", "no 1 free GPU(s) within max_wait")
    assert backend.log_tail("wait-too-long") == []
    backend.stop("hold-gpu")
    assert job_reaches(backend, "hold-gpu", lambda s: s.phase.terminal).state == "STOPPED"
