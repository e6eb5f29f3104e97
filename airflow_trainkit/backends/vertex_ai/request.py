"""The CustomJob request for a TrainingJobSpec, and the checks Vertex AI would make on it.

The request is built as the CustomJob's JSON form (proto field names, enums by name, durations as
``"<n>s"``); the backend parses it into the real ``aiplatform_v1.CustomJob`` message. No SDK import here.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from airflow_trainkit.backends.vertex_ai.status import JOB_ID_LABEL

if TYPE_CHECKING:
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

DEFAULT_MACHINE_TYPE = "n1-standard-4"
# Options this backend reads from ``spec.options``; anything else is refused by name.
KNOWN_OPTIONS = ("service_account", "network", "boot_disk_size_gb", "boot_disk_type")
# Project and region come from the connection only: describe/stop in the triggerer know the
# connection id and the job name, never the spec, so a per-spec project could not be found again.
CONNECTION_ONLY_OPTIONS = ("project", "region", "location")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MACHINE_TYPE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
_SERVICE_ACCOUNT = re.compile(r"^[^@\s]+@[^@\s]+\.iam\.gserviceaccount\.com$|^[^@\s]+@[a-z0-9.-]+$")
_NETWORK = re.compile(r"^projects/[^/]+/global/networks/[^/]+$")
_LABEL_VALUE_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
_DISK_TYPES = ("pd-ssd", "pd-standard")


class VertexRequestBuilder:
    """Checking a spec and building its CustomJob; mixed into :class:`VertexAIBackend`."""

    def validate(self, spec: TrainingJobSpec) -> None:
        """Refuse what Vertex AI would refuse, before any API call; ``ValueError`` names the field."""
        _validate_option_names(spec)
        _validate_image_and_storage(spec)
        _validate_names(spec)
        self.machine_spec(spec)
        _validate_option_values(spec)

    def machine_spec(self, spec: TrainingJobSpec) -> dict[str, Any]:
        """MachineSpec: the explicit machine type, else the accelerator's row of the shared table, else CPU.

        With an explicit machine type and an accelerator, the accelerator's type and count still come
        from the table.
        """
        from airflow_trainkit.training.instances import instance_for

        chosen = spec.instance_type_for("vertex_ai")
        out: dict[str, Any] = {}
        if spec.parsed_accelerator is not None:
            try:
                row = instance_for("vertex_ai", spec.parsed_accelerator)
            except ValueError as err:
                raise ValueError(f"spec.accelerator {spec.accelerator!r}: {err}") from None
            chosen = chosen or row.instance_type
            out["accelerator_type"] = row.accelerator_type
            out["accelerator_count"] = row.accelerator_count or row.gpu_count
        chosen = chosen or DEFAULT_MACHINE_TYPE
        if not _MACHINE_TYPE.match(chosen):
            raise ValueError(f"spec.instance_type: {chosen!r} is not a Compute Engine machine type name")
        return {"machine_type": chosen, **out}

    @staticmethod
    def trainer_env(spec: TrainingJobSpec, job_id: str, output_uri: str) -> dict[str, str]:
        """The ``TRAINKIT_*`` variables the trainer contract reads, then the spec's own env (which wins).

        Paths are Cloud Storage FUSE paths (``gs://b/x`` -> ``/gcs/b/x``), which Vertex mounts in every
        custom training container: the trainer reads and writes them as local files, with neither
        gcsfs nor Airflow in the image (and checkpoints must be a local folder).
        """
        accelerator = spec.parsed_accelerator
        inputs = {name: fuse_path(uri) for name, uri in spec.inputs.items()}
        env = {
            "TRAINKIT_JOB_ID": job_id,
            "TRAINKIT_OUTPUT_URI": fuse_path(output_uri),
            "TRAINKIT_INPUTS": json.dumps(inputs, sort_keys=True),
            "TRAINKIT_HYPERPARAMETERS": json.dumps(spec.hyperparameters, sort_keys=True),
            "TRAINKIT_GPU_COUNT": str(accelerator.count if accelerator else 0),
            **{f"TRAINKIT_INPUT_{name.upper()}": path for name, path in inputs.items()},
        }
        if spec.checkpoint_uri:
            env["TRAINKIT_CHECKPOINT_URI"] = fuse_path(spec.checkpoint_uri)
        env.update(spec.env)
        return env

    def build_request(
        self, spec: TrainingJobSpec, job_id: str, *, identity: JobIdentity | None = None
    ) -> dict[str, Any]:
        """The CustomJob (JSON form) for ``spec`` under the display name ``job_id``.

        The job writes under ``<spec.output_uri>/<job_id>/``: Vertex sets ``AIP_MODEL_DIR`` to its
        ``model/`` folder, and ``TRAINKIT_OUTPUT_URI`` gives the built-in trainer the same folder.
        """
        base = f"{spec.output_uri.rstrip('/')}/{job_id}" if spec.output_uri else ""
        env = self.trainer_env(spec, job_id, f"{base}/model")
        container: dict[str, Any] = {
            "image_uri": spec.image,
            "command": list(spec.command[:1]),
            "env": [{"name": k, "value": v} for k, v in env.items()],
        }
        if spec.command[1:]:
            container["args"] = list(spec.command[1:])
        pool: dict[str, Any] = {"machine_spec": self.machine_spec(spec), "container_spec": container}
        disk = {
            k: spec.options[k]
            for k in ("boot_disk_size_gb", "boot_disk_type")
            if spec.options.get(k) is not None
        }
        if disk:
            pool["disk_spec"] = disk
        # Vertex runs exactly one chief (pool 0); further machines are the workers of pool 1.
        pools = [{**pool, "replica_count": 1}]
        if spec.instance_count > 1:
            pools.append({**pool, "replica_count": spec.instance_count - 1})
        scheduling: dict[str, Any] = {"timeout": f"{int(spec.max_runtime)}s"}
        if spec.spot:
            scheduling["strategy"] = "SPOT"
        job_spec: dict[str, Any] = {
            "worker_pool_specs": pools,
            "scheduling": scheduling,
            "base_output_directory": {"output_uri_prefix": base},
        }
        for option in ("service_account", "network"):
            if spec.options.get(option):
                job_spec[option] = spec.options[option]
        return {"display_name": job_id, "labels": self.labels(spec, job_id, identity), "job_spec": job_spec}

    @staticmethod
    def labels(spec: TrainingJobSpec, job_id: str, identity: JobIdentity | None) -> dict[str, str]:
        """The spec's tags plus the Airflow identity and the job name, cleaned to Vertex's label rules.

        Keys and values: at most 63 lowercase letters, digits, ``_`` and ``-``; keys start with a letter.
        """
        labels = {_label_key(k): _label_value(v) for k, v in spec.tags.items()}
        if identity is not None:
            labels.update(
                {
                    "airflow-dag-id": _label_value(identity.dag_id),
                    "airflow-run-id": _label_value(identity.run_id),
                    "airflow-task-id": _label_value(identity.task_id),
                    "airflow-map-index": _label_value(str(identity.map_index)),
                }
            )
        attempt = re.search(r"-a(\d+)$", job_id)
        if attempt:
            labels["airflow-attempt"] = attempt.group(1)
        labels["trainkit"] = "true"
        labels[JOB_ID_LABEL] = _label_value(job_id)
        return dict(list(labels.items())[-64:])


def _validate_option_names(spec: TrainingJobSpec) -> None:
    """No project or region in the spec (they come from the connection), and no unknown option."""
    for name in CONNECTION_ONLY_OPTIONS:
        if name in spec.options:
            raise ValueError(
                f"spec.options[{name!r}] is not supported for Vertex AI (got {spec.options[name]!r}): "
                "set 'project' and 'region' in the extra of the google_cloud_platform connection, "
                "because the triggerer finds the job again from the connection alone"
            )
    unknown = sorted(set(spec.options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ValueError(
            f"spec.options: unknown Vertex AI option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(KNOWN_OPTIONS)}"
        )


def _validate_image_and_storage(spec: TrainingJobSpec) -> None:
    """An image, and Cloud Storage output and checkpoint URIs (the spec itself requires a checkpoint for spot)."""
    if not spec.image:
        raise ValueError(
            "spec.image is required for Vertex AI (got None): the Artifact Registry URI of the container"
        )
    if not spec.output_uri or not _is_gs(spec.output_uri):
        raise ValueError(f"spec.output_uri must be a gs:// URI for Vertex AI, got {spec.output_uri!r}")
    if spec.checkpoint_uri is not None and not _is_gs(spec.checkpoint_uri):
        raise ValueError(
            f"spec.checkpoint_uri must be a gs:// URI for Vertex AI, got {spec.checkpoint_uri!r}"
        )


def _validate_names(spec: TrainingJobSpec) -> None:
    """Inputs on Cloud Storage under channel names, and environment names, that are variable names."""
    for channel, uri in spec.inputs.items():
        if not _is_gs(uri):
            raise ValueError(f"spec.inputs[{channel!r}] must be a gs:// URI for Vertex AI, got {uri!r}")
        if not _ENV_KEY.match(channel):
            raise ValueError(
                f"spec.inputs: channel name {channel!r} must match [a-zA-Z_][a-zA-Z0-9_]* "
                "(it becomes the variable TRAINKIT_INPUT_<CHANNEL>)"
            )
    for key in spec.env:
        if not _ENV_KEY.match(key):
            raise ValueError(
                f"spec.env: Vertex AI environment names must match [a-zA-Z_][a-zA-Z0-9_]*, got {key!r}"
            )


def _validate_option_values(spec: TrainingJobSpec) -> None:
    """The service account, network and boot disk options, when given, in the forms Vertex AI takes."""
    account = spec.options.get("service_account")
    if account is not None and (not isinstance(account, str) or not _SERVICE_ACCOUNT.match(account)):
        raise ValueError(f"spec.options['service_account'] must be a service account email, got {account!r}")
    network = spec.options.get("network")
    if network is not None and (not isinstance(network, str) or not _NETWORK.match(network)):
        raise ValueError(
            "spec.options['network'] must be 'projects/<project number>/global/networks/<name>', "
            f"got {network!r}"
        )
    disk = spec.options.get("boot_disk_size_gb")
    if disk is not None and (isinstance(disk, bool) or not isinstance(disk, int) or disk < 100):
        raise ValueError(
            f"spec.options['boot_disk_size_gb'] must be a whole number of at least 100, got {disk!r}"
        )
    disk_type = spec.options.get("boot_disk_type")
    if disk_type is not None and disk_type not in _DISK_TYPES:
        raise ValueError(
            f"spec.options['boot_disk_type'] must be one of {', '.join(_DISK_TYPES)}, got {disk_type!r}"
        )


def fuse_path(uri: str) -> str:
    """Where Vertex's Cloud Storage FUSE mount shows ``gs://bucket/path``: ``/gcs/bucket/path``."""
    return "/gcs/" + uri[len("gs://") :] if uri.startswith("gs://") else uri


def _is_gs(uri: str) -> bool:
    return uri.startswith("gs://") and len(uri) > len("gs://") and not uri[5:].startswith("/")


def _label_value(text: str) -> str:
    return _LABEL_VALUE_NOT_ALLOWED.sub("_", text.lower())[:63]


def _label_key(text: str) -> str:
    key = _label_value(text)
    return key if key[:1].isalpha() else f"k{key}"[:63]
