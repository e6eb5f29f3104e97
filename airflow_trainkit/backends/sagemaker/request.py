"""The ``CreateTrainingJob`` request for a TrainingJobSpec, and the checks SageMaker would make on it.

Role, instance type, spot and max-wait, checkpoints, channels, hyperparameters and tags live here.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from airflow_trainkit.backends.sagemaker.source import script_source

if TYPE_CHECKING:
    from airflow_trainkit.training.identity import JobIdentity
    from airflow_trainkit.training.spec import TrainingJobSpec

log = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_VOLUME_SIZE_GB = 30
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# Options this backend reads from ``spec.options``; anything else is refused by name.
KNOWN_OPTIONS = ("role_arn", "source_dir", "entry_point", "volume_size_gb", "input_content_types")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CHANNEL = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")
# SageMaker tag keys and values: unicode letters, digits, spaces and _ . : / = + - @
_TAG_NOT_ALLOWED = re.compile(r"[^\w\s.:/=+\-@]")


class SageMakerRequestBuilder:
    """Checking a spec and building its request; mixed into :class:`SageMakerBackend`.

    The backend supplies the connection this needs: ``aws_conn_id``, ``region`` (only in script mode)
    and ``_connection_extra()`` (only when the spec names no role).
    """

    if TYPE_CHECKING:

        @property
        def aws_conn_id(self) -> str:
            """The AWS connection whose extra may name the execution role."""
            ...

        @property
        def region(self) -> str:
            """The connection's region (script mode passes it to the framework container)."""
            ...

        def _connection_extra(self) -> dict[str, Any]: ...

    def validate(self, spec: TrainingJobSpec) -> None:
        """Refuse what SageMaker would refuse, before any API call; ``ValueError`` names the field."""
        _validate_known_options(spec)
        _validate_image_and_storage(spec)
        _validate_inputs(spec)
        _validate_env(spec)
        self._validate_sizes(spec)
        if spec.instance_count > 1 and spec.spot and not spec.checkpoint_uri:
            log.warning("A multi-instance spot job without checkpoints restarts from scratch on interruption")
        self.instance_type(spec)
        self.role_arn(spec)
        _validate_option_values(spec)
        script_source(spec)

    def _validate_sizes(self, spec: TrainingJobSpec) -> None:
        """SageMaker's length limits on hyperparameters and the command."""
        for key, value in self.hyperparameters(spec).items():
            if len(key) > 256 or len(value) > 2500:
                raise ValueError(
                    f"spec.hyperparameters[{key!r}]: SageMaker allows keys of 256 and values of 2500 characters"
                )
        if len(spec.command) > 100 or any(len(part) > 256 for part in spec.command):
            raise ValueError(
                "spec.command: SageMaker allows at most 100 parts of at most 256 characters each"
            )

    def instance_type(self, spec: TrainingJobSpec) -> str:
        """The explicit SageMaker instance type, else the accelerator's row of the shared table, else CPU."""
        from airflow_trainkit.training.instances import instance_for

        chosen = spec.instance_type_for("sagemaker")
        if chosen is None and spec.parsed_accelerator is not None:
            try:
                chosen = instance_for("sagemaker", spec.parsed_accelerator).instance_type
            except ValueError as err:
                raise ValueError(f"spec.accelerator {spec.accelerator!r}: {err}") from None
        chosen = chosen or DEFAULT_INSTANCE_TYPE
        if chosen not in _training_instance_types():
            raise ValueError(f"spec.instance_type: {chosen!r} is not a SageMaker training instance type")
        return chosen

    def role_arn(self, spec: TrainingJobSpec) -> str:
        """The job's execution role: ``spec.options['role_arn']``, else the connection's extra."""
        role = spec.options.get("role_arn")
        source = "spec.options['role_arn']"
        if not role:
            extra = self._connection_extra()
            role = extra.get("execution_role_arn") or extra.get("role_arn")
            source = f"connection {self.aws_conn_id!r} extra 'execution_role_arn'"
        if not role:
            raise ValueError(
                "spec.options['role_arn'] is required for SageMaker (got None): the IAM execution role "
                f"the job runs as; or set 'execution_role_arn' in the extra of connection {self.aws_conn_id!r}"
            )
        if not isinstance(role, str) or not _ROLE_ARN.match(role):
            raise ValueError(f"{source}: not an IAM role ARN: {role!r}")
        return role

    @staticmethod
    def hyperparameters(spec: TrainingJobSpec, *, json_encoded: bool = False) -> dict[str, str]:
        """The spec's hyperparameters as SageMaker's string map (JSON-encoded for script mode)."""
        out = {}
        for key, value in spec.hyperparameters.items():
            if json_encoded:
                out[key] = json.dumps(value)
            elif isinstance(value, bool):
                out[key] = "true" if value else "false"
            else:
                out[key] = str(value)
        return out

    def build_request(
        self,
        spec: TrainingJobSpec,
        job_id: str,
        *,
        identity: JobIdentity | None = None,
        submit_directory: str | None = None,
        entry_point: str | None = None,
    ) -> dict[str, Any]:
        """The ``CreateTrainingJob`` parameters for ``spec`` under the name ``job_id``.

        :param submit_directory: S3 URI of an uploaded ``sourcedir.tar.gz`` (script mode).
        :param entry_point: the program inside it that the framework container runs.
        """
        algorithm: dict[str, Any] = {"TrainingImage": spec.image, "TrainingInputMode": "File"}
        if submit_directory:
            hyperparameters = self.hyperparameters(spec, json_encoded=True)
            hyperparameters.update(
                {
                    "sagemaker_program": json.dumps(entry_point),
                    "sagemaker_submit_directory": json.dumps(submit_directory),
                    "sagemaker_region": json.dumps(self.region),
                    "sagemaker_container_log_level": "20",
                }
            )
        else:
            hyperparameters = self.hyperparameters(spec)
            algorithm["ContainerEntrypoint"] = spec.command[:1]
            if spec.command[1:]:
                algorithm["ContainerArguments"] = spec.command[1:]
        content_types = spec.options.get("input_content_types", {})
        channels = []
        for name, uri in spec.inputs.items():
            channel: dict[str, Any] = {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            if name in content_types:
                channel["ContentType"] = content_types[name]
            channels.append(channel)
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": spec.max_runtime}
        request: dict[str, Any] = {
            "TrainingJobName": job_id,
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.role_arn(spec),
            "OutputDataConfig": {"S3OutputPath": spec.output_uri},
            "ResourceConfig": {
                "InstanceType": self.instance_type(spec),
                "InstanceCount": spec.instance_count,
                "VolumeSizeInGB": spec.options.get("volume_size_gb", DEFAULT_VOLUME_SIZE_GB),
            },
            "StoppingCondition": stopping,
            "Tags": self.tags(spec, identity),
        }
        if hyperparameters:
            request["HyperParameters"] = hyperparameters
        if channels:
            request["InputDataConfig"] = channels
        if spec.env:
            request["Environment"] = dict(spec.env)
        if spec.spot:
            request["EnableManagedSpotTraining"] = True
            # The spec refuses max_wait < max_runtime; without one, the job may wait no longer than
            # it may run, which keeps the operator's deadline (spec.deadline_seconds) true.
            stopping["MaxWaitTimeInSeconds"] = max(spec.max_wait or spec.max_runtime, spec.max_runtime)
        if spec.checkpoint_uri:
            request["CheckpointConfig"] = {"S3Uri": spec.checkpoint_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
        return request

    @staticmethod
    def tags(spec: TrainingJobSpec, identity: JobIdentity | None) -> list[dict[str, str]]:
        """The spec's tags plus the Airflow identity, cleaned to SageMaker's tag characters."""
        tags = dict(spec.tags)
        if identity is not None:
            tags.update(
                {
                    "airflow-dag-id": identity.dag_id,
                    "airflow-run-id": identity.run_id,
                    "airflow-task-id": identity.task_id,
                    "airflow-map-index": str(identity.map_index),
                }
            )
        tags["trainkit"] = "true"
        return [{"Key": _tag_text(k, 128) or "_", "Value": _tag_text(v, 256)} for k, v in tags.items()][:50]


def _validate_known_options(spec: TrainingJobSpec) -> None:
    """``spec.options`` holds only the options this backend reads."""
    unknown = sorted(set(spec.options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ValueError(
            f"spec.options: unknown SageMaker option(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(KNOWN_OPTIONS)}"
        )


def _validate_image_and_storage(spec: TrainingJobSpec) -> None:
    """An image, and S3 output and checkpoint locations (the spec itself holds max_wait >= max_runtime)."""
    if not spec.image:
        raise ValueError(
            "spec.image is required for SageMaker (got None): the ECR URI of the training container"
        )
    if not spec.output_uri or not _is_s3(spec.output_uri):
        raise ValueError(f"spec.output_uri must be an s3:// URI for SageMaker, got {spec.output_uri!r}")
    if spec.checkpoint_uri is not None and not _is_s3(spec.checkpoint_uri):
        raise ValueError(
            f"spec.checkpoint_uri must be an s3:// URI for SageMaker, got {spec.checkpoint_uri!r}"
        )


def _validate_inputs(spec: TrainingJobSpec) -> None:
    """Each input: a channel name SageMaker accepts and an S3 URI."""
    for channel, uri in spec.inputs.items():
        if not _CHANNEL.match(channel):
            raise ValueError(
                f"spec.inputs: channel name {channel!r} must be 1-64 letters, digits, '.', '-' or '_'"
            )
        if not _is_s3(uri):
            raise ValueError(f"spec.inputs[{channel!r}] must be an s3:// URI for SageMaker, got {uri!r}")


def _validate_env(spec: TrainingJobSpec) -> None:
    """Each environment variable: a name SageMaker accepts and a value of at most 1024 characters."""
    for key, value in spec.env.items():
        if not _ENV_KEY.match(key):
            raise ValueError(
                f"spec.env: SageMaker environment names must match [a-zA-Z_][a-zA-Z0-9_]*, got {key!r}"
            )
        if len(value) > 1024:
            raise ValueError(f"spec.env[{key!r}]: SageMaker allows at most 1024 characters")


def _validate_option_values(spec: TrainingJobSpec) -> None:
    """The volume size in whole GB, and content types only for channels the spec has."""
    volume = spec.options.get("volume_size_gb", DEFAULT_VOLUME_SIZE_GB)
    if isinstance(volume, bool) or not isinstance(volume, int) or volume < 1:
        raise ValueError(f"spec.options['volume_size_gb'] must be a whole number of GB, got {volume!r}")
    content_types = spec.options.get("input_content_types", {})
    if not isinstance(content_types, dict) or not set(content_types) <= set(spec.inputs):
        raise ValueError(
            "spec.options['input_content_types'] must map channels of spec.inputs to content types, "
            f"got {content_types!r}"
        )


def _training_instance_types() -> frozenset[str]:
    # botocore ships the service model; its enum is SageMaker's own list of training instances.
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TrainingInstanceType").enum)


def _is_s3(uri: str) -> bool:
    return uri.startswith("s3://") and len(uri) > len("s3://") and not uri[5:].startswith("/")


def _tag_text(text: str, limit: int) -> str:
    return _TAG_NOT_ALLOWED.sub("_", text)[:limit]
