"""What a finished search leaves for people: a report folder (result, trials, Optuna's plots) and
an MLflow parent run with one child run per trial.

Plots use Optuna's matplotlib backend: its plotly image export needs a browser binary.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from typing import TYPE_CHECKING, Any

from airflow_trainkit.tuning.records import SearchRecord, TrialRecord, TrialState

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

    from airflow_trainkit.tuning.settings import TuneSettings
    from airflow_trainkit.tuning.space import SearchSpace

log = logging.getLogger(__name__)
SEARCH_TAG = "trainkit.search"
_MLFLOW_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAILED: "FAILED",
    TrialState.RUNNING: "RUNNING",
}


def plots(study: optuna.Study, *, pruning: bool) -> dict[str, bytes]:
    """Optuna's optimization history, parameter importances and (with pruning) intermediate values, as PNG.

    A plot Optuna cannot draw for this study (importances need two complete trials and a parameter
    that varied) is left out with a log line; the report never fails over a picture.
    """
    import matplotlib  # heavy: only when a search ends

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    drawers: dict[str, Any] = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        "param_importances.png": optuna_plots.plot_param_importances,
    }
    if pruning:
        drawers["intermediate_values.png"] = optuna_plots.plot_intermediate_values
    images: dict[str, bytes] = {}
    for name, draw in drawers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
                axes = draw(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(8, 5)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            plt.close(figure)
            images[name] = buffer.getvalue()
        except Exception as err:
            log.info("No %s for this search: %s", name, err)
    return images


def trial_rows(record: SearchRecord) -> list[dict[str, Any]]:
    """One small dict per trial: number, state, params, value, job, cost, message."""
    return [
        {
            "number": t.number,
            "state": t.state.value,
            "params": t.params,
            "value": t.value,
            "backend": t.backend,
            "job_id": (t.job or {}).get("job_name"),
            "quote": t.quote,
            "cost": t.spent,
            "rounds_read": t.rounds_read,
            "message": t.message,
        }
        for t in record.trials
    ]


def report_files(
    record: SearchRecord, settings: TuneSettings, space: SearchSpace, result: dict[str, Any]
) -> dict[str, bytes]:
    """The report folder's files: ``result.json``, ``trials.json`` and the plots."""
    from airflow_trainkit.tuning.study import rebuild

    files = plots(rebuild(record, settings, space), pruning=settings.pruning is not None)
    files["result.json"] = (json.dumps(result, indent=2, sort_keys=True, default=str) + "\n").encode()
    files["trials.json"] = (json.dumps(trial_rows(record), indent=2, default=str) + "\n").encode()
    return files


def write_report(uri: str, files: dict[str, bytes]) -> str:
    """Write the report folder whole or not at all."""
    from airflow_trainkit import storage

    return storage.write_folder_atomic(uri, files)


def log_to_mlflow(
    client: MlflowClient,
    experiment_id: str,
    *,
    search_id: str,
    run_name: str,
    record: SearchRecord,
    settings: TuneSettings,
    result: dict[str, Any],
    files: dict[str, bytes],
) -> str:
    """A parent run for the search and a child run per trial; the parent's id.

    Idempotent per search: a finished parent run tagged ``search_id`` is returned as it is; one a
    crash left unfinished is marked FAILED and logged again.
    """
    quoted = search_id.replace("'", "")
    found = client.search_runs([experiment_id], filter_string=f"tags.`{SEARCH_TAG}` = '{quoted}'")
    for run in found:
        if run.data.tags.get("mlflow.parentRunId"):
            continue  # a trial's run (children carry the search's tag too)
        if run.info.status == "FINISHED":
            log.info("Search already logged to MLflow run %s", run.info.run_id)
            return str(run.info.run_id)
        client.set_terminated(run.info.run_id, "FAILED")
    parent = client.create_run(experiment_id, run_name=run_name, tags={SEARCH_TAG: search_id})
    parent_id = parent.info.run_id
    try:
        _log_parent(client, parent_id, settings, result, files)
        for trial in record.trials:
            _log_trial(client, experiment_id, parent_id, search_id, trial, settings)
    except BaseException:
        client.set_terminated(parent_id, "FAILED")
        raise
    client.set_terminated(parent_id, "FINISHED")
    return str(parent_id)


def _log_parent(
    client: MlflowClient, run_id: str, settings: TuneSettings, result: dict[str, Any], files: dict[str, bytes]
) -> None:
    import tempfile
    from pathlib import Path

    params = {
        "objective": settings.objective,
        "direction": settings.direction,
        "n_trials": settings.n_trials,
        "parallel": settings.parallel,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "budget": settings.budget,
        "trial_hours": settings.trial_hours,
        "pruning": settings.pruning.metric if settings.pruning else None,
        "backend": result["search"]["backend"],
    }
    for key, value in params.items():
        client.log_param(run_id, key, value)
    for key, value in result["params"].items():
        client.log_param(run_id, f"best.{key}", value)
    client.log_metric(run_id, f"best_{settings.objective}", float(result["objective"]["value"]))
    client.log_metric(run_id, "money_spent", float(result["money"]["spent"]))
    for state, count in result["trials"].items():
        client.log_metric(run_id, f"trials_{state}", float(count))
    client.set_tag(run_id, "trainkit.best_job_id", str(result.get("job_id")))
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            path = Path(folder) / name
            path.write_bytes(data)
            client.log_artifact(run_id, str(path))


def _log_trial(
    client: MlflowClient,
    experiment_id: str,
    parent_id: str,
    search_id: str,
    trial: TrialRecord,
    settings: TuneSettings,
) -> None:
    tags = {
        "mlflow.parentRunId": parent_id,
        SEARCH_TAG: search_id,
        "trainkit.trial": str(trial.number),
        "trainkit.trial_state": trial.state.value,
        "trainkit.job_id": str((trial.job or {}).get("job_name")),
        "trainkit.backend": trial.backend,
    }
    if trial.message:
        tags["trainkit.message"] = trial.message[:5000]
    run = client.create_run(experiment_id, run_name=f"trial-{trial.number}", tags=tags)
    run_id = run.info.run_id
    for key, value in trial.params.items():
        client.log_param(run_id, key, value)
    if trial.value is not None:
        client.log_metric(run_id, settings.objective, trial.value)
    if trial.spent is not None:
        client.log_metric(run_id, "cost", trial.spent)
    for step, value in sorted(trial.intermediate.items(), key=lambda item: int(item[0])):
        if settings.pruning is not None:
            client.log_metric(run_id, settings.pruning.metric, value, step=int(step))
    client.set_terminated(run_id, _MLFLOW_STATUS[trial.state])
