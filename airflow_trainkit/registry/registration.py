"""Register a training result in MLflow: one run with lineage, one logged model, one model version.

Nothing here knows Airflow's scheduling; the operator passes the task's ids in ``lineage``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

TAG_PREFIX = "trainkit."
JOB_TAG = "trainkit.job_id"
CHALLENGER = "challenger"
MODEL_FILE = "model.json"
META_FILE = "model_meta.json"
_REQUIRED = ("backend", "job_id", "output_uri")
_PARAM_KEYS = ("backend", "instance_type", "instance_count", "spot", "accelerator", "attempt", "output_uri")


def check_training_result(result: Any) -> dict[str, Any]:
    """The training result, checked; ``ValueError`` names what is missing."""
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            raise ValueError(
                f"training_result must be the dict TrainModelOperator returns, got the string {result[:80]!r}"
                " (use render_template_as_native_obj=True or pass train.output)"
            ) from None
    if not isinstance(result, dict):
        raise ValueError(f"training_result must be a dict, got {type(result).__name__}")
    missing = [key for key in _REQUIRED if not result.get(key)]
    if missing:
        raise ValueError(f"training_result has no {', '.join(missing)}: {sorted(result)}")
    metrics = result.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(
            f"training_result of job {result['job_id']!r} has no metrics (metrics={metrics!r}); "
            "the trainer must write metrics.json so the gate has something to judge"
        )
    return result


def check_fingerprint(fingerprint: Any) -> dict[str, Any] | None:
    """The data fingerprint (``None`` or a dict); ``ValueError`` for anything else."""
    if fingerprint is None:
        return None
    if not isinstance(fingerprint, dict):
        raise ValueError(f"data_fingerprint must be a dict, got {type(fingerprint).__name__}")
    return fingerprint


def lineage_tags(
    result: dict[str, Any],
    *,
    data_fingerprint: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    task: str | None = None,
) -> dict[str, str]:
    """The ``trainkit.*`` tags a run and its model version carry."""
    tags: dict[str, Any] = {
        "backend": result.get("backend"),
        "job_id": result.get("job_id"),
        "console_url": result.get("console_url"),
        "output_uri": result.get("output_uri"),
        "billable_seconds": result.get("billable_seconds"),
        "task": task,
    }
    cost = result.get("cost")
    if isinstance(cost, dict):
        tags["cost_amount"] = cost.get("amount")
        tags["cost_currency"] = cost.get("currency")
    for key, value in (data_fingerprint or {}).items():
        tags[f"data.{key}"] = value
    for key, value in (lineage or {}).items():
        tags[key] = value
    return {f"{TAG_PREFIX}{key}": str(value)[:5000] for key, value in tags.items() if value is not None}


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics MLflow can log as metrics (numbers, not bools); the rest are logged as params."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[str(key)] = float(value)
    return out


def find_version(client: MlflowClient, model_name: str, job_id: str) -> Any | None:
    """The version already registered for this training job, if any (newest first)."""
    escaped = job_id.replace("'", "\\'")
    found = client.search_model_versions(f"name = '{_quote(model_name)}' and tags.`{JOB_TAG}` = '{escaped}'")
    ready = [v for v in found if str(v.status) in ("READY", "ModelVersionStatus.READY")] or list(found)
    return max(ready, key=lambda v: int(v.version)) if ready else None


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def register_training_result(
    client: MlflowClient,
    *,
    experiment_id: str,
    model_name: str,
    result: dict[str, Any],
    data_fingerprint: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    alias: str = CHALLENGER,
    storage_conn_id: str | None = None,
) -> dict[str, Any]:
    """Register ``result`` as a new version of ``model_name`` and point ``alias`` at it.

    Idempotent per training job: a version tagged with the job id is returned as it is.
    Whole or nothing: a failure while logging marks the run FAILED and registers nothing; a
    failure after the version was created deletes that version.

    :param storage_conn_id: the Airflow connection the output folder is read with (object storage);
        ``None`` for the filesystem's own defaults.
    :raises OSError: the output folder cannot be read; nothing is registered.

    :returns: ``{"model_name", "version", "alias", "run_id", "model_uri", "source", "reused", ...}``.
    """
    result = check_training_result(result)
    job_id = str(result["job_id"])
    existing = find_version(client, model_name, job_id)
    if existing is not None:
        log.info(
            "Model %s already has version %s for job %s; not registering again",
            model_name,
            existing.version,
            job_id,
        )
        latest = max(int(v.version) for v in client.search_model_versions(f"name = '{_quote(model_name)}'"))
        if int(existing.version) == latest and alias not in (existing.aliases or []):
            client.set_registered_model_alias(model_name, alias, existing.version)
        return _summary(client, model_name, existing, alias, reused=True)

    try:
        meta = _read_meta(result["output_uri"], storage_conn_id)
    except OSError as err:
        raise OSError(
            f"cannot read the output of training job {job_id!r} at {result['output_uri']!r}: {err}; "
            "give RegisterModelOperator a storage_conn_id that can read it"
        ) from None
    task = (meta or {}).get("task")
    tags = lineage_tags(result, data_fingerprint=data_fingerprint, lineage=lineage, task=task)
    run = client.create_run(experiment_id, run_name=f"{model_name}-{job_id}"[:250], tags=tags)
    run_id = run.info.run_id
    try:
        _log_params_and_metrics(client, run_id, result, meta)
        source, model_id = _log_model(client, experiment_id, run_id, result, meta, tags, storage_conn_id)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        log.error("Logging to run %s failed; run marked FAILED, no version registered", run_id)
        raise
    client.set_terminated(run_id, "FINISHED")

    _ensure_registered_model(client, model_name)
    version = client.create_model_version(
        model_name,
        source,
        run_id=run_id,
        tags=tags,
        model_id=model_id,
        description=f"Trained by {result['backend']} job {job_id}",
    )
    try:
        version = _wait_ready(client, model_name, version)
        client.set_registered_model_alias(model_name, alias, version.version)
    except BaseException:
        log.error("Registration of %s version %s failed; deleting that version", model_name, version.version)
        try:
            client.delete_model_version(model_name, version.version)
        finally:
            client.set_terminated(run_id, "FAILED")
        raise
    log.info("Registered %s version %s (run %s) as @%s", model_name, version.version, run_id, alias)
    return _summary(client, model_name, version, alias, reused=False)


def _summary(client: MlflowClient, name: str, version: Any, alias: str, *, reused: bool) -> dict[str, Any]:
    return {
        "model_name": name,
        "version": str(version.version),
        "alias": alias,
        "run_id": version.run_id,
        "model_uri": f"models:/{name}/{version.version}",
        "alias_uri": f"models:/{name}@{alias}",
        "source": version.source,
        "job_id": (version.tags or {}).get(JOB_TAG),
        "tracking_uri": client.tracking_uri,
        "reused": reused,
    }


def _read_meta(output_uri: str, conn_id: str | None = None) -> dict[str, Any] | None:
    """``model_meta.json`` of the built-in trainer, normalised, or ``None`` for other frameworks.

    Accepts ``features`` or ``feature_names`` (a list) and ``feature_types`` as a list or a
    ``{name: type}`` dict; the result always has ``features`` and ``feature_types`` lists.
    """
    from airflow_trainkit import storage

    uri = storage.join_uri(output_uri, META_FILE)
    if not storage.exists(uri, conn_id=conn_id):
        return None
    meta = json.loads(storage.read_bytes(uri, conn_id=conn_id))
    features = meta.get("features") or meta.get("feature_names") if isinstance(meta, dict) else None
    if not isinstance(features, list) or not features:
        raise ValueError(f"{uri}: model_meta.json must hold a 'features' or 'feature_names' list")
    types = meta.get("feature_types") or []
    if isinstance(types, dict):
        types = [types.get(str(name), "float") for name in features]
    return {**meta, "features": [str(f) for f in features], "feature_types": [str(t) for t in types]}


def _log_params_and_metrics(
    client: MlflowClient, run_id: str, result: dict[str, Any], meta: dict[str, Any] | None
) -> None:
    import time

    from mlflow.entities import Metric, Param  # heavy: only when registering

    params = {key: result.get(key) for key in _PARAM_KEYS if result.get(key) is not None}
    if meta:
        params.update(task=meta.get("task"), target=meta.get("target"), n_features=len(meta["features"]))
    for key, value in (result.get("metrics") or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            params[f"metric_{key}"] = value
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in numeric_metrics(result["metrics"]).items()],
        params=[Param(str(k), str(v)[:6000]) for k, v in params.items() if v is not None],
    )


def _log_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    result: dict[str, Any],
    meta: dict[str, Any] | None,
    tags: dict[str, str],
    conn_id: str | None = None,
) -> tuple[str, str | None]:
    """Log the model; returns (version source, logged model id or None)."""
    from airflow_trainkit import storage

    output_uri = str(result["output_uri"])
    model_file = str((meta or {}).get("model_file") or MODEL_FILE)
    model_uri = storage.join_uri(output_uri, model_file)
    if meta is None or not storage.exists(model_uri, conn_id=conn_id):
        # Another framework's output: registered by reference, as it is.
        log.info("No built-in trainer output at %s; registering the artifact URI as is", output_uri)
        return output_uri, None

    # Heavy: only when a built-in trainer's model is registered.
    import mlflow.xgboost
    import xgboost
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus

    booster = xgboost.Booster()
    booster.load_model(bytearray(storage.read_bytes(model_uri, conn_id=conn_id)))
    signature, example = _signature(meta)
    logged = client.create_logged_model(
        experiment_id, name="model", source_run_id=run_id, tags=tags, model_type="xgboost"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="trainkit-model-") as tmp:
            folder = f"{tmp}/model"
            mlflow.xgboost.save_model(
                booster,
                folder,
                signature=signature,
                input_example=example,
                model_format="json",
                # Explicit: MLflow's inference loads the model in a subprocess (minutes on a busy host).
                pip_requirements=mlflow.xgboost.get_default_pip_requirements(),
            )
            for extra in ("metrics.json", META_FILE):
                uri = storage.join_uri(output_uri, extra)
                if storage.exists(uri, conn_id=conn_id):
                    with open(f"{folder}/trainkit_{extra}", "wb") as handle:
                        handle.write(storage.read_bytes(uri, conn_id=conn_id))
            _use_trainkit_pyfunc(folder)
            client.log_model_artifacts(logged.model_id, folder)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    # The artifact location, not ``models:/<id>``: MLflow's sqlite registry resolves a
    # ``models:/`` source through the process-global tracking URI, not this client's.
    return str(logged.artifact_location), logged.model_id


def _use_trainkit_pyfunc(folder: str) -> None:
    """Point the model's pyfunc flavor at our loader, which restores categorical columns."""
    from mlflow.models import Model

    model = Model.load(folder)
    model.flavors["python_function"]["loader_module"] = "airflow_trainkit.registry.xgboost_pyfunc"
    model.save(f"{folder}/MLmodel")


def _signature(meta: dict[str, Any]) -> tuple[Any, Any]:
    """A signature (and, for all-numeric inputs, an input example) from ``model_meta.json``."""
    import pandas as pd  # heavy: only when registering
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    features = [str(f) for f in meta["features"]]
    types = list(meta.get("feature_types") or [])
    categorical = {
        f for f, t in zip(features, types, strict=False) if str(t) in ("c", "category", "categorical")
    }
    inputs = Schema([ColSpec("string" if f in categorical else "double", f) for f in features])
    outputs = Schema([ColSpec("double")])
    example = None if categorical else pd.DataFrame([[0.0] * len(features)], columns=features)
    return ModelSignature(inputs=inputs, outputs=outputs), example


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException  # heavy: only when registering

    try:
        client.get_registered_model(name)
        return
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    try:
        client.create_registered_model(name, description="Registered by airflow-trainkit")
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _wait_ready(client: MlflowClient, name: str, version: Any, timeout: float = 300.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        status = str(version.status).rsplit(".", 1)[-1]
        if status == "READY":
            return version
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RuntimeError(
                f"model {name} version {version.version} ended in {status}: {version.status_message}"
            )
        time.sleep(1.0)
        version = client.get_model_version(name, version.version)
