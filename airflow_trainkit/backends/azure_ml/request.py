"""The Azure ML command job for a TrainingJobSpec, and the checks Azure ML would make on it.

:func:`job_plan` turns a spec into plain values (no SDK import here); the backend hands them to
``azure.ai.ml.command(...)``, which builds and sends the real REST body.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

BACKEND = "azure_ml"
DEFAULT_INSTANCE_TYPE = "Standard_D4s_v3"
DEFAULT_EXPERIMENT = "trainkit"
# Options this backend reads from ``spec.options``; anything else is refused by name.
KNOWN_OPTIONS = ("compute", "experiment_name")
# The job's named outputs: the model folder, and the checkpoint folder a spot job resumes from.
MODEL_OUTPUT = "model"
CHECKPOINT_OUTPUT = "checkpoints"
# Tags carrying our name and what the cost needs; describe reads them back (one GET, no compute call).
JOB_ID_TAG = "trainkit-job-id"
INSTANCE_TYPE_TAG = "trainkit-instance-type"
SPOT_TAG = "trainkit-spot"
SERVERLESS = "serverless"

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# AmlCompute names: 2-16 letters, digits and hyphens, starting with a letter (an ``azureml:`` prefix allowed).
_COMPUTE = re.compile(r"^(?:azureml:)?([a-zA-Z][a-zA-Z0-9-]{1,15})$")
_VM_SIZE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
_ENV_REF = re.compile(r"^azureml:[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+|@latest)$")
_DATASTORE_URI = re.compile(r"^azureml://datastores/([A-Za-z0-9_]+)/paths/(.*)$")
_ASSET_URI = re.compile(r"^azureml:[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+|@latest)$")
_HTTPS_BLOB = re.compile(r"^https://([a-z0-9]{3,24})\.blob\.core\.windows\.net/([a-z0-9-]{3,63})(/.*)?$")
_ABFSS = re.compile(r"^abfss://([a-z0-9-]{3,63})@([a-z0-9]{3,24})\.dfs\.core\.windows\.net(/.*)?$")


@dataclass
class JobPlan:
    """Everything ``azure.ai.ml.command(...)`` is given for one job, as plain values."""

    name: str
    command: str
    environment: str  # ``azureml:name:version`` or an image to wrap in ``Environment(image=...)``
    environment_is_image: bool
    inputs: dict[str, tuple[str, str]]  # name -> (uri_folder | uri_file, uri)
    outputs: dict[str, str]  # name -> azureml://datastores/... folder (read-write mount)
    environment_variables: dict[str, str]
    tags: dict[str, str]
    experiment_name: str
    timeout: int
    instance_count: int
    compute: str | None  # a cluster name, or None for serverless
    instance_type: str | None  # serverless only: the VM size asked for
    spot: bool
    process_count_per_instance: int = 1
    notes: list[str] = field(default_factory=list)


def compute_name(spec: TrainingJobSpec, connection_compute: str | None) -> str | None:
    """The cluster the job runs on (``spec.options['compute']`` over the connection's), or ``None`` for serverless.

    :raises ValueError: the name is not an Azure ML compute name.
    """
    for field_name, value in (
        ("spec.options['compute']", spec.options.get("compute")),
        ("connection extra 'compute'", connection_compute),
    ):
        if value is None or value == "":
            continue
        if value == SERVERLESS:
            return None
        match = _COMPUTE.match(value) if isinstance(value, str) else None
        if not match:
            raise ValueError(
                f"{field_name}: {value!r} is not an Azure ML compute name (2-16 letters, digits and "
                "hyphens starting with a letter, optionally 'azureml:<name>') nor 'serverless'"
            )
        return match.group(1)
    return None


def validate(spec: TrainingJobSpec) -> None:
    """Refuse what Azure ML would refuse, before any call; ``ValueError`` names the field and value."""
    _validate_options(spec)
    _validate_image(spec)
    _validate_storage(spec)
    _validate_names(spec)
    instance_type(spec)


def _validate_options(spec: TrainingJobSpec) -> None:
    """``spec.options``: only the known keys, a compute name, an experiment name Azure ML accepts."""
    unknown = sorted(set(spec.options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ValueError(
            f"spec.options: unknown Azure ML option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(KNOWN_OPTIONS)}"
        )
    compute_name(spec, None)
    experiment = spec.options.get("experiment_name")
    if experiment is not None and (
        not isinstance(experiment, str) or not re.match(r"^[\w.-]{1,255}$", experiment)
    ):
        raise ValueError(
            f"spec.options['experiment_name'] must be letters, digits, '_', '.', '-', got {experiment!r}"
        )


def _validate_image(spec: TrainingJobSpec) -> None:
    """``spec.image``: required, and a well-formed reference when it names a registered environment."""
    if not spec.image:
        raise ValueError(
            "spec.image is required for Azure ML (got None): a container image, or a registered "
            "environment as 'azureml:<name>:<version>'"
        )
    if spec.image.startswith("azureml:") and not _ENV_REF.match(spec.image):
        raise ValueError(
            f"spec.image: {spec.image!r} is not an environment reference 'azureml:<name>:<version>' "
            "or 'azureml:<name>@latest'"
        )


def _validate_storage(spec: TrainingJobSpec) -> None:
    """Output and checkpoint URIs on a datastore, where they are mounted (the spec requires a checkpoint for spot)."""
    if not spec.output_uri or not _DATASTORE_URI.match(spec.output_uri):
        raise ValueError(
            "spec.output_uri must be an Azure ML datastore URI 'azureml://datastores/<name>/paths/<path>' "
            f"(the job's outputs are mounted from a datastore), got {spec.output_uri!r}"
        )
    if spec.checkpoint_uri is not None and not _DATASTORE_URI.match(spec.checkpoint_uri):
        raise ValueError(
            "spec.checkpoint_uri must be an Azure ML datastore URI 'azureml://datastores/<name>/paths/<path>' "
            f"(it is mounted read-write), got {spec.checkpoint_uri!r}"
        )


def _validate_names(spec: TrainingJobSpec) -> None:
    """Input channels and environment names Azure ML accepts, and input URIs it can mount."""
    for channel, uri in spec.inputs.items():
        if not _NAME.match(channel):
            raise ValueError(
                f"spec.inputs: channel name {channel!r} must match [a-zA-Z_][a-zA-Z0-9_]* "
                "(it becomes the job input and the variable TRAINKIT_INPUT_<CHANNEL>)"
            )
        input_type(channel, uri)
    for key in spec.env:
        if not _NAME.match(key):
            raise ValueError(
                f"spec.env: Azure ML environment names must match [a-zA-Z_][a-zA-Z0-9_]*, got {key!r}"
            )


def input_type(channel: str, uri: str) -> str:
    """``uri_file`` or ``uri_folder`` for an input URI Azure ML can mount.

    :raises ValueError: the URI is not ``azureml://datastores/...``, a data asset ``azureml:<name>:<version>``,
        ``https://<account>.blob.core.windows.net/<container>/...`` or
        ``abfss://<container>@<account>.dfs.core.windows.net/...``.
    """
    if _ASSET_URI.match(uri):
        return "uri_folder"
    match = _DATASTORE_URI.match(uri) or _HTTPS_BLOB.match(uri) or _ABFSS.match(uri)
    if not match:
        raise ValueError(
            f"spec.inputs[{channel!r}]: Azure ML cannot mount {uri!r}; use azureml://datastores/<name>/paths/<path>, "
            "azureml:<data asset>:<version>, https://<account>.blob.core.windows.net/<container>/<path> or "
            "abfss://<container>@<account>.dfs.core.windows.net/<path>"
        )
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return "uri_file" if not uri.endswith("/") and "." in last else "uri_folder"


def instance_type(spec: TrainingJobSpec) -> str:
    """The VM size a serverless job asks for: the explicit one, else the accelerator's row, else CPU."""
    from airflow_trainkit.training.instances import instance_for

    chosen = spec.instance_type_for(BACKEND)
    if chosen is None and spec.parsed_accelerator is not None:
        try:
            chosen = instance_for(BACKEND, spec.parsed_accelerator).instance_type
        except ValueError as err:
            raise ValueError(f"spec.accelerator {spec.accelerator!r}: {err}") from None
    chosen = chosen or DEFAULT_INSTANCE_TYPE
    if not _VM_SIZE.match(chosen):
        raise ValueError(
            f"spec.instance_type: {chosen!r} is not an Azure VM size such as 'Standard_NC4as_T4_v3'"
        )
    return chosen


def output_folder(spec: TrainingJobSpec, job_id: str) -> str:
    """Where the job's model goes: ``<spec.output_uri>/<job id>/model``."""
    return f"{str(spec.output_uri).rstrip('/')}/{job_id}/{MODEL_OUTPUT}"


def job_plan(
    spec: TrainingJobSpec,
    job_id: str,
    *,
    compute: str | None,
    identity: JobIdentity | None = None,
    cluster_vm_size: str | None = None,
) -> JobPlan:
    """The command job for ``spec`` under the name ``job_id``.

    The trainer reads its mounted paths from ``TRAINKIT_*`` variables that the command sets from the
    job's ``${{inputs.<channel>}}`` / ``${{outputs.<name>}}`` placeholders (Azure ML resolves those to
    the mount points when the job starts); the rest of the trainer contract travels as environment
    variables, and ``spec.env`` comes last (it wins).
    """
    accelerator = spec.parsed_accelerator
    inputs = {channel: (input_type(channel, uri), uri) for channel, uri in spec.inputs.items()}
    outputs = {MODEL_OUTPUT: output_folder(spec, job_id)}
    paths = {"TRAINKIT_OUTPUT_URI": _placeholder("outputs", MODEL_OUTPUT)}
    if spec.checkpoint_uri:
        outputs[CHECKPOINT_OUTPUT] = spec.checkpoint_uri.rstrip("/") + "/"
        paths["TRAINKIT_CHECKPOINT_URI"] = _placeholder("outputs", CHECKPOINT_OUTPUT)
    for channel in inputs:
        paths[f"TRAINKIT_INPUT_{channel.upper()}"] = _placeholder("inputs", channel)
    command = "env " + " ".join(f"{k}={v}" for k, v in paths.items()) + " " + shlex.join(spec.command)
    env = {
        "TRAINKIT_JOB_ID": job_id,
        "TRAINKIT_HYPERPARAMETERS": json.dumps(spec.hyperparameters, sort_keys=True),
        "TRAINKIT_GPU_COUNT": str(accelerator.count if accelerator else 0),
        **spec.env,
    }
    vm_size = cluster_vm_size if compute else instance_type(spec)
    image = str(spec.image)
    return JobPlan(
        name=job_id,
        command=command,
        environment=image,
        environment_is_image=not image.startswith("azureml:"),
        inputs=inputs,
        outputs=outputs,
        environment_variables=env,
        tags=tags(spec, job_id, identity, vm_size),
        experiment_name=str(spec.options.get("experiment_name") or DEFAULT_EXPERIMENT),
        timeout=int(spec.max_runtime),
        instance_count=spec.instance_count,
        compute=compute,
        instance_type=None if compute else vm_size,
        spot=spec.spot,
        process_count_per_instance=max(1, accelerator.count if accelerator else 1),
    )


def tags(
    spec: TrainingJobSpec, job_id: str, identity: JobIdentity | None, vm_size: str | None
) -> dict[str, str]:
    """The spec's tags, then the Airflow identity, our name, and the VM size and tier the cost needs."""
    out = dict(spec.tags)
    if identity is not None:
        out.update(
            {
                "airflow-dag-id": identity.dag_id,
                "airflow-run-id": identity.run_id,
                "airflow-task-id": identity.task_id,
                "airflow-map-index": str(identity.map_index),
            }
        )
    attempt = re.search(r"-a(\d+)$", job_id)
    if attempt:
        out["airflow-attempt"] = attempt.group(1)
    out[JOB_ID_TAG] = job_id
    out[SPOT_TAG] = "true" if spec.spot else "false"
    if vm_size:
        out[INSTANCE_TYPE_TAG] = vm_size
    return out


def datastore_path(uri: str) -> tuple[str, str] | None:
    """``(datastore, path)`` of an ``azureml://datastores/<name>/paths/<path>`` URI, else ``None``."""
    match = _DATASTORE_URI.match(uri)
    return (match.group(1), match.group(2)) if match else None


def _placeholder(kind: str, name: str) -> str:
    """``${{inputs.<name>}}`` / ``${{outputs.<name>}}``: Azure ML puts the mount path there."""
    return "${{" + kind + "." + name + "}}"
