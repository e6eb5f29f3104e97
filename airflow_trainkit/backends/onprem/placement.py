"""Which GPU host a new on-prem job goes to.

The rule: among the hosts that have enough GPUs of the asked model at all (in the order the
connection lists them), the one with the most of them free now, as their lock files tell; the
first listed wins a tie. When none has enough free, the job still goes to that host and its runner
waits there for the GPUs (the job is PENDING, "waiting for N free GPU(s)"), at most ``max_wait``.
A job that needs no GPU goes to the first listed host. A host that cannot be reached now is passed
over (logged); one that refuses our key or shows an unknown host key is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_trainkit.backends.onprem.transport import Transport
    from airflow_trainkit.training.spec import TrainingJobSpec

log = logging.getLogger(__name__)

Candidate = tuple["Transport", int, list[dict[str, str]]]


def host_plan(spec: TrainingJobSpec, transport: Transport) -> tuple[int, list[dict[str, str]]]:
    """How many GPUs the job takes on the host of ``transport``, and which of its GPUs may serve.

    :raises ValueError: the host cannot give them (no GPU, too few, not of the asked model).
    """
    accelerator = spec.parsed_accelerator
    if accelerator is None:
        return 0, []
    gpus = transport.gpus()
    host = transport.host
    if not gpus:
        if spec.allow_cpu:
            return 0, []
        raise ValueError(
            f"spec.accelerator {spec.accelerator!r} asks for {accelerator.count} GPU(s) but host "
            f"{host!r} has none; set allow_cpu=true to run on CPU instead"
        )
    names = {g["name"] for g in gpus if g["name"]}
    if accelerator.model and names:
        gpus = [g for g in gpus if accelerator.model.upper() in g["name"].upper()]
        if not gpus:
            raise ValueError(
                f"spec.accelerator {spec.accelerator!r}: host {host!r} has {', '.join(sorted(names))}"
            )
    if len(gpus) < accelerator.count:
        raise ValueError(
            f"spec.accelerator {spec.accelerator!r} asks for {accelerator.count} GPU(s) but host "
            f"{host!r} has {len(gpus)}"
        )
    return accelerator.count, gpus


def eligible(spec: TrainingJobSpec, transports: list[Transport]) -> list[Candidate]:
    """The hosts that could ever run ``spec``, in the configured order.

    :raises ValueError: none can; with several hosts, naming each one's reason.
    """
    found, refusals = [], []
    for transport in transports:
        try:
            count, gpus = host_plan(spec, transport)
        except ValueError as err:
            refusals.append(str(err))
            continue
        found.append((transport, count, gpus))
    if not found:
        raise ValueError(refusals[0] if len(refusals) == 1 else "no host can run it: " + "; ".join(refusals))
    return found


def choose(eligible: list[Candidate], root_on: Callable[[Any], str]) -> Candidate:
    """The host for a job, by the rule above.

    :param eligible: ``(transport, GPUs needed, the host's GPUs of the asked model)`` per host that
        could ever run the job, in the configured order.
    :param root_on: the job root on a transport's host.
    :raises TrainingJobUnreachable: no eligible host can be reached.
    """
    from airflow_trainkit.exceptions import TrainingJobUnreachable

    if len(eligible) == 1 or eligible[0][1] == 0:
        return eligible[0]
    best: Candidate | None = None
    best_free = -1
    unreachable = []
    for candidate in eligible:
        transport, _, gpus = candidate
        try:
            busy = set(
                transport.call("busy_gpus", root=root_on(transport), indexes=[g["index"] for g in gpus])
            )
        except TrainingJobUnreachable as err:
            if not err.transient:
                raise
            log.warning("on-prem placement passes over host %s: %s", transport.host, err)
            unreachable.append(str(err))
            continue
        free = sum(1 for g in gpus if g["index"] not in busy)
        log.info("on-prem host %s: %s of %s suitable GPU(s) free", transport.host, free, len(gpus))
        if free > best_free:
            best, best_free = candidate, free
    if best is None:
        raise TrainingJobUnreachable(
            "no on-prem host that could run the job can be reached: " + "; ".join(unreachable), transient=True
        )
    return best
