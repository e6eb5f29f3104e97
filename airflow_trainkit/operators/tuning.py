"""``TuneModelOperator``: a hyperparameter search whose trials are training jobs of any backend."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import AirflowException, BaseOperator
from airflow_trainkit.durations import parse_duration
from airflow_trainkit.operators.training import (
    EXECUTION_TIMEOUT,
    EXECUTION_TIMEOUT_GRACE_SECONDS,
    resolve_deferrable,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.tuning.search import Finished, Search, Waiting

# The trigger's backstop past the search's last deadline, when no execution_timeout caps it.
DEFERRAL_SLACK_SECONDS = 600.0


class TuneModelOperator(BaseOperator):
    """Search hyperparameters with Optuna; every trial is a training job on ``backend``.

    The task defers while trials run: one trigger watches every trial in flight and wakes the task
    when a trial ends, passes its deadline, or (with ``pruning``) wrote new per-round metrics. On
    each resume the task tells the sampler what happened, asks for new trials within ``parallel``
    and ``budget``, starts them and defers again. A retry re-attaches to the trials in flight and
    never reruns a finished one; a kill, a deferral timeout or the execution timeout stops every
    trial in flight. Returns the best trial's training result (``RegisterModelOperator`` takes it
    as it takes ``TrainModelOperator``'s) with the search's summary.

    :param spec: the trial template, a ``TrainingJobSpec`` or its dict; each trial's values are merged
        into its ``hyperparameters``. (templated)
    :param search_space: hyperparameter -> range, see :mod:`airflow_trainkit.tuning.space`. (templated)
    :param objective: the key of the trial's ``metrics.json`` to optimize, e.g. ``"auc_roc"``. (templated)
    :param direction: ``"maximize"`` (default) or ``"minimize"``. (templated)
    :param n_trials: how many trials at most. (templated)
    :param parallel: trials in flight at once (at most ``n_trials``). (templated)
    :param backend: a backend name, or ``"cheapest"``: the trials go to the backend with the lowest
        quote among ``pick_from`` that accepts the spec. (templated)
    :param pick_from: the backends ``"cheapest"`` chooses from; default every priced backend. (templated)
    :param budget: money the search may spend, in the price catalog's currency; new trials are not
        asked once what was spent plus the quotes of the trials in flight and of one more trial would
        pass it. (templated)
    :param trial_hours: how long one trial is expected to run, the basis of its quote: hours, or a
        duration such as ``"20m"``; required with ``budget`` or ``"cheapest"``. (templated)
    :param sampler: ``"tpe"`` (default), ``"random"`` or ``"grid"`` (float ranges need a ``step``). (templated)
    :param seed: the sampler's seed, for a reproducible search. (templated)
    :param pruning: stop hopeless trials early: ``{"metric": "validation-auc"}`` and optionally
        ``direction``, ``warmup_rounds``, ``startup_trials``, ``check_every``; needs a backend that
        reports progress (on-prem, Ray). (templated)
    :param backend_conn_id: the backend's connection, or backend -> connection. (templated)
    :param onprem_costs: on-prem cost settings (a list of dicts or a CSV path) for quotes and costs. (templated)
    :param quote_options: more arguments of the quote (``regions``, ``vcpus``, ``memory_gib``). (templated)
    :param report_uri: where the report folder goes; default under ``<trainkit home>/reports/tuning``. (templated)
    :param track_in_mlflow: log a parent run with a child run per trial (needs the ``mlflow`` extra).
    :param mlflow_conn_id: a ``trainkit_mlflow`` connection; ``None`` for the default or the embedded
        registry. (templated)
    :param experiment: the MLflow experiment; the connection's by default. (templated)
    :param deferrable: wait in the triggerer; ``None`` (default): ``True`` unless the deployment
        sets ``[operators] default_deferrable``.
    :param poll_interval: time between status calls (seconds or a duration); the backend's default if
        ``None``. (templated)
    """

    template_fields: Sequence[str] = (
        "spec",
        "search_space",
        "objective",
        "direction",
        "n_trials",
        "parallel",
        "backend",
        "pick_from",
        "budget",
        "trial_hours",
        "sampler",
        "seed",
        "pruning",
        "backend_conn_id",
        "onprem_costs",
        "quote_options",
        "report_uri",
        "mlflow_conn_id",
        "experiment",
        "poll_interval",
    )
    template_fields_renderers = {"spec": "json", "search_space": "json", "pruning": "json"}
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        spec: Any,
        search_space: dict[str, Any] | str,
        objective: str,
        direction: str = "maximize",
        n_trials: int = 10,
        parallel: int = 1,
        backend: str = "onprem",
        pick_from: list[str] | None = None,
        budget: float | None = None,
        trial_hours: float | str | None = None,
        sampler: str = "tpe",
        seed: int | None = None,
        pruning: dict[str, Any] | None = None,
        backend_conn_id: str | dict[str, str] | None = None,
        onprem_costs: Any = None,
        quote_options: dict[str, Any] | None = None,
        report_uri: str | None = None,
        track_in_mlflow: bool = True,
        mlflow_conn_id: str | None = None,
        experiment: str | None = None,
        deferrable: bool | None = None,
        poll_interval: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
        self.search_space = search_space
        self.objective = objective
        self.direction = direction
        self.n_trials = n_trials
        self.parallel = parallel
        self.backend = backend
        self.pick_from = pick_from
        self.budget = budget
        self.trial_hours = trial_hours
        self.sampler = sampler
        self.seed = seed
        self.pruning = pruning
        self.backend_conn_id = backend_conn_id
        self.onprem_costs = onprem_costs
        self.quote_options = quote_options
        self.report_uri = report_uri
        self.track_in_mlflow = track_in_mlflow
        self.mlflow_conn_id = mlflow_conn_id
        self.experiment = experiment
        self.deferrable = resolve_deferrable(deferrable)
        self.poll_interval = poll_interval
        self._killed = False

    # -- the lifecycle -------------------------------------------------------------------------

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        search = self._search(context)
        search.begin()
        return self._advance(context, search, check_progress=False)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Called when the trigger fires: settle what it saw, start new trials, defer again or finish."""
        from airflow_trainkit.triggers.tuning import read_tuning_event

        search = self._search(context)
        search.begin()
        try:
            outcome = read_tuning_event(event)
        except ValueError as problem:
            search.stop_running(reason=f"the trigger's event was malformed: {problem}")
            raise
        if outcome.status == "timeout":
            self._fail_on_execution_timeout(search)
        if outcome.status == "error":
            search.stop_running(reason=f"the search stopped: {outcome.message}")
            raise AirflowException(f"Watching the search's trials failed: {outcome.message}")
        return self._advance(context, search, check_progress=outcome.status == "progress")

    @override
    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # "__fail__": a deferral timeout or a crashed trigger; no on_kill runs for those.
        if next_method == "__fail__":
            search = self._search(context)
            record = search.store.load()
            if record is not None and not record.finished:
                search.begin()
                search.stop_running(reason="deferral timed out or the trigger failed")
        return super().resume_execution(next_method, next_kwargs, context)

    @override
    def on_kill(self) -> None:
        # Inside the SIGTERM handler: only raise the flag; the wait loop stops the trials.
        self._killed = True

    # -- steps ---------------------------------------------------------------------------------

    def _advance(self, context: Context, search: Search, *, check_progress: bool) -> dict[str, Any]:
        from airflow_trainkit._compat import TaskDeferred
        from airflow_trainkit.training.lifecycle import execution_deadline, retry_left
        from airflow_trainkit.tuning.search import Finished, ObjectiveMissing, SearchFailed

        cap = execution_deadline(context, self.execution_timeout)
        if cap is not None and time.time() >= cap:
            self._fail_on_execution_timeout(search)
        try:
            outcome = search.step(check_progress=check_progress)
            while not isinstance(outcome, Finished):
                if self.deferrable:
                    self._defer(context, search, outcome, cap)
                outcome = self._wait_here(search, outcome, cap)
        except (TaskDeferred, ObjectiveMissing, SearchFailed):
            raise  # deferred; or failed with nothing left in flight
        except BaseException:
            # A deferrable search's retry re-attaches to its trials; otherwise (a blocking wait, an
            # error on the last try) they must not run on with nobody watching.
            if not self._killed and (not self.deferrable or not retry_left(context)):
                search.stop_running(reason="the search's task failed")
            raise
        return self._finish(context, search, outcome)

    def _defer(self, context: Context, search: Search, waiting: Waiting, cap: float | None) -> None:
        from airflow_trainkit.triggers.tuning import TuningTrigger

        deadlines = [float(t.job["deadline"]) for t in waiting.trials if t.job and t.job.get("deadline")]
        latest = max(deadlines, default=time.time() + DEFERRAL_SLACK_SECONDS)
        slack = DEFERRAL_SLACK_SECONDS
        if cap is not None and cap < latest:
            latest, slack = cap, 2 * self._interval(search) + EXECUTION_TIMEOUT_GRACE_SECONDS
        pruning = search.settings.pruning
        self.defer(
            trigger=TuningTrigger(
                trials=[
                    {
                        "job": t.job,
                        "conn_id": search.conn_ids.get(t.backend),
                        "rounds_seen": t.rounds_read,
                    }
                    for t in waiting.trials
                    if t.job
                ],
                deadline=cap,
                deadline_reason=EXECUTION_TIMEOUT,
                poll_interval=self._interval(search),
                progress_after=waiting.watch_progress_after,
                progress_metric=pruning.metric if pruning else None,
                identity=search.identity.to_dict(),
            ),
            method_name="execute_complete",
            # A backstop behind the trigger's own deadlines; resume_execution stops the trials.
            timeout=timedelta(seconds=max(latest - time.time(), 0) + slack),
        )

    def _wait_here(self, search: Search, waiting: Waiting, cap: float | None) -> Waiting | Finished:
        """The non-deferrable wait: one step per poll interval in the worker, until something changes."""
        interval = self._interval(search)
        end = time.monotonic() + interval
        while time.monotonic() < end:
            if self._killed:
                self._on_killed(search)
            time.sleep(min(1.0, interval))
        if cap is not None and time.time() >= cap:
            self._fail_on_execution_timeout(search)
        due = waiting.watch_progress_after is not None and time.time() >= waiting.watch_progress_after
        return search.step(check_progress=due)

    def _on_killed(self, search: Search) -> None:
        from airflow_trainkit._compat import task_state_now
        from airflow_trainkit.triggers.training import WILL_RUN_AGAIN

        ident = search.identity
        try:
            state = task_state_now(ident.dag_id, ident.run_id, ident.task_id, ident.map_index)
        except Exception:
            state = "unknown"
        if state in WILL_RUN_AGAIN:
            self.log.info("Task killed and will run again (%s): leaving the trials to re-attach to", state)
        else:
            search.stop_running(reason="the Airflow task was killed")
        raise AirflowException("Task was killed while its search's trials ran")

    def _fail_on_execution_timeout(self, search: Search) -> None:
        from airflow_trainkit._compat import AirflowTaskTimeout

        search.stop_running(reason=f"execution_timeout ({self.execution_timeout}) passed")
        message = (
            f"execution_timeout ({self.execution_timeout}) passed; every trial in flight was asked to stop"
        )
        self.log.error("%s", message)
        raise AirflowTaskTimeout(message)

    def _finish(self, context: Context, search: Search, finished: Finished) -> dict[str, Any]:
        from airflow_trainkit.operators.costs import default_report_uri
        from airflow_trainkit.tuning import report

        result = dict(finished.result)
        record = search.record
        if record is None:  # cannot happen: step() ran
            raise RuntimeError("the search has no record")
        uri = self.report_uri or default_report_uri(context, "tuning")
        result["report_uri"] = uri
        files = report.report_files(record, search.settings, search.space, result)
        report.write_report(uri, files)
        if self.track_in_mlflow:
            result["mlflow_run_id"] = self._log_to_mlflow(search, result, files)
        search.mark_finished()
        self.log.info(
            "Best trial %d: %s=%s with %s; %s trial(s) complete, %s pruned, %s failed; spent %s %s",
            result["best_trial"],
            result["objective"]["name"],
            result["objective"]["value"],
            result["params"],
            result["trials"]["complete"],
            result["trials"]["pruned"],
            result["trials"]["failed"],
            result["money"]["spent"],
            result["money"]["currency"] or "",
        )
        return result

    def _log_to_mlflow(self, search: Search, result: dict[str, Any], files: dict[str, bytes]) -> str:
        from airflow_trainkit.hooks.mlflow import MlflowHook
        from airflow_trainkit.tuning import report

        hook = MlflowHook(conn_id=self.mlflow_conn_id)
        ident = search.identity
        record = search.record
        generation = record.generation if record else 1
        return report.log_to_mlflow(
            hook.get_client(),
            hook.experiment_id(self.experiment),
            search_id=f"{ident.dag_id}/{ident.run_id}/{ident.task_id}/{ident.map_index}/s{generation}",
            run_name=f"tune-{ident.task_id}-s{generation}",
            record=search.record,  # type: ignore[arg-type]
            settings=search.settings,
            result=result,
            files=files,
        )

    # -- inputs --------------------------------------------------------------------------------

    def _search(self, context: Context) -> Search:
        """Every input checked (a ``ValueError`` naming the field and value), as a :class:`Search`."""
        from airflow_trainkit.training.identity import JobIdentity
        from airflow_trainkit.training.spec import TrainingJobSpec
        from airflow_trainkit.tuning.records import SearchStore
        from airflow_trainkit.tuning.search import Search
        from airflow_trainkit.tuning.settings import TuneSettings
        from airflow_trainkit.tuning.space import SearchSpace

        store = context.get("task_state_store")
        if store is None:
            raise AirflowException(
                "TuneModelOperator keeps its trials in the task state store, which needs Airflow 3.3 or later"
            )
        settings = TuneSettings.parse(
            objective=self.objective,
            direction=self.direction,
            n_trials=_whole(self.n_trials),
            parallel=_whole(self.parallel),
            budget=_money(self.budget),
            trial_hours=self.trial_hours,
            sampler=self.sampler,
            seed=_whole(self.seed),
            pruning=self.pruning or None,
        )
        space = SearchSpace.parse(self.search_space)
        spec = TrainingJobSpec.parse(self.spec)
        clash = sorted(set(space.names) & set(spec.hyperparameters))
        if clash:
            self.log.info("The search varies %s, which the spec also sets: each trial's value wins", clash)
        if self.track_in_mlflow:
            _require_mlflow()
        return Search(
            spec=spec,
            space=space,
            settings=settings,
            identity=JobIdentity.from_context(context),
            store=SearchStore(store),
            backend=_backend_name(self.backend),
            pick_from=self.pick_from or None,
            conn_ids=self._conn_ids(),
            onprem=self.onprem_costs,
            quote_options=self.quote_options or None,
            poll_interval=self._poll_seconds(),
            log=self.log,
        )

    def _conn_ids(self) -> dict[str, str | None]:
        conn = self.backend_conn_id
        if conn is None or conn == "":
            return {}
        if isinstance(conn, dict):
            return {str(k): (str(v) if v else None) for k, v in conn.items()}
        if not isinstance(conn, str):
            raise ValueError(f"backend_conn_id: a connection id or backend -> connection id, got {conn!r}")
        if self.backend == "cheapest":
            raise ValueError(
                f"backend_conn_id: with backend='cheapest' give one connection per backend "
                f"({{'sagemaker': 'aws_training', ...}}), got {conn!r}"
            )
        return {self.backend: conn}

    def _poll_seconds(self) -> float | None:
        if self.poll_interval is None or self.poll_interval == "":
            return None
        return parse_duration(self.poll_interval, field="poll_interval")

    def _interval(self, search: Search) -> float:
        record = search.record
        name = record.backend if record else search.backend_name
        return self._poll_seconds() or search.backend(name).poll_interval


def _whole(value: Any) -> Any:
    """A rendered template's ``"8"`` (or 8.0) as 8; anything else as given, for the settings model
    to judge."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _money(value: Any) -> Any:
    """A rendered template's ``"12.5"`` as 12.5; ``""`` as no budget."""
    if isinstance(value, str):
        if not value.strip() or value.strip().lower() == "none":
            return None
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"budget: must be an amount of money (a number), got {value!r}") from None
    return value


def _backend_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"backend: a backend name or 'cheapest', got {value!r}")
    name = value.strip()
    if name != "cheapest":
        from airflow_trainkit.training.backend import get_backend

        get_backend(name)  # an unknown name fails here, listing the known ones
    return name


def _require_mlflow() -> None:
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise ValueError(
            "track_in_mlflow: MLflow is not installed (pip install 'airflow-trainkit[mlflow]'), got True; "
            "set track_in_mlflow=False to search without it"
        )
