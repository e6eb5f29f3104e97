"""Operators for training cost: quote a job on every backend (and pick the cheapest); refresh the prices."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from airflow_trainkit._compat import BaseOperator, mask_secret

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

PICK_MODES = (None, "cheapest")


class CompareTrainingCostsOperator(BaseOperator):
    """Quote one training job on every priced backend (see ``trainkit costs compare``); write a report.

    The backends quoted are those of the pricing registry: SageMaker, Vertex AI, on-prem, any backend
    installed through the ``airflow_trainkit.backends`` entry points, and quote-only price sources
    (Azure ML). Returns the quote table (``request``, ``quotes``, ``cheapest``, ``left_out``,
    ``warnings``, ``catalog``, ``report_uri``). With ``pick="cheapest"`` it also pushes the cheapest
    backend's name under the XCom key ``backend``, so a training task can take
    ``backend="{{ ti.xcom_pull('quote', key='backend') }}"``; the cheapest is chosen only among
    backends installed here, trainable, and whose capabilities accept the spec (``left_out`` says
    why each other one was not), and the task fails when there is none.

    :param spec: the ``TrainingJobSpec`` (or its dict) to price; accelerator or instance type (one,
        or one per backend), instance count and spot are used. (templated)
    :param hours: expected hours of training; or ``epochs`` and ``seconds_per_epoch``. (templated)
    :param regions: where to price: a geography (``us``, ``eu``, ``asia``) each backend maps to one
        of its regions, or backend -> region or geography. (templated)
    :param region_conn_ids: for backends not in ``regions``: ``True`` (default) reads the region from
        each backend's own connection (``aws_default``, ``google_cloud_default``), falling back to
        the backend's default region when it has none; backend -> connection id to read others;
        ``False`` for the default regions. (templated)
    :param vcpus: a CPU-only job (no accelerator): the vCPUs it needs. (templated)
    :param memory_gib: a CPU-only job: the memory it needs, in GiB. (templated)
    :param epochs: expected epochs. (templated)
    :param seconds_per_epoch: seconds one epoch takes. (templated)
    :param backends: backends to quote; default every priced one. (templated)
    :param pick: ``None`` or ``"cheapest"``.
    :param pick_from: backends the cheapest may be chosen from, e.g. those you have connections for;
        a name that is not installed or declared fails the task before anything else. (templated)
    :param onprem: on-prem cost settings: a list of dicts or a CSV path; default the settings file. (templated)
    :param catalog_path: a price catalog CSV instead of the one in force. (templated)
    :param max_age_days: flag prices older than this many days (default 90). (templated)
    :param report_uri: folder for the report (CSV, Markdown, PNG chart); default
        ``<trainkit home>/reports/costs/<dag>/<run>/<task>``. (templated)
    :param providers: deprecated alias of ``backends``. (templated)
    """

    template_fields: Sequence[str] = (
        "spec",
        "hours",
        "epochs",
        "seconds_per_epoch",
        "regions",
        "region_conn_ids",
        "vcpus",
        "memory_gib",
        "backends",
        "providers",
        "pick_from",
        "onprem",
        "catalog_path",
        "max_age_days",
        "report_uri",
    )
    template_fields_renderers = {"spec": "json", "onprem": "json"}
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        spec: Any,
        hours: float | str | None = None,
        epochs: float | str | None = None,
        seconds_per_epoch: float | str | None = None,
        backends: list[str] | None = None,
        pick: str | None = None,
        pick_from: list[str] | None = None,
        onprem: Any = None,
        catalog_path: str | None = None,
        max_age_days: int | str | None = None,
        report_uri: str | None = None,
        providers: list[str] | None = None,
        regions: str | dict[str, str] | None = None,
        region_conn_ids: bool | dict[str, str] = True,
        vcpus: float | str | None = None,
        memory_gib: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if providers is not None:
            warnings.warn(_RENAMED, DeprecationWarning, stacklevel=2)
        self.spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
        self.hours = hours
        self.regions = regions
        self.region_conn_ids = region_conn_ids
        self.vcpus = vcpus
        self.memory_gib = memory_gib
        self.epochs = epochs
        self.seconds_per_epoch = seconds_per_epoch
        self.backends = backends
        self.providers = providers
        self.pick = pick
        self.pick_from = pick_from
        self.onprem = onprem
        self.catalog_path = catalog_path
        self.max_age_days = max_age_days
        self.report_uri = report_uri

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.costs.catalog import load_catalog
        from airflow_trainkit.costs.quotes import format_quote_table, quote_job
        from airflow_trainkit.costs.report import write_report
        from airflow_trainkit.training.pricing import pricing_registry

        registry = pricing_registry()
        if self.pick_from is not None:  # a name that is not installed fails before anything is read
            registry.check_names("pick_from", self.pick_from)
        if self.pick not in PICK_MODES:
            raise ValueError(f"pick must be None or 'cheapest', got {self.pick!r}")
        backends = _renamed(self.backends, self.providers)
        if backends is not None:
            registry.check_names("backends", backends)
        catalog = load_catalog(self.catalog_path, onprem=self.onprem)
        table = quote_job(
            self.spec,
            hours=self.hours,
            epochs=self.epochs,
            seconds_per_epoch=self.seconds_per_epoch,
            backends=backends,
            pick_from=self.pick_from,
            catalog=catalog,
            max_age=int(self.max_age_days) if self.max_age_days not in (None, "") else None,
            registry=registry,
            regions=self.regions or None,
            region_conn_ids=self.region_conn_ids or None,
            vcpus=self.vcpus,
            memory_gib=self.memory_gib,
        )
        self.log.info("Quotes from %s:\n%s", catalog.path, format_quote_table(table))
        uri = self.report_uri or default_report_uri(context, "costs")
        result = table.to_dict()
        result["report_uri"] = write_report(table, uri)
        self.log.info("Cost report written to %s", result["report_uri"])
        for name, reason in table.left_out.items():
            self.log.info("Left out of the cheapest: %s: %s", name, reason)
        if table.cheapest_caveat:
            self.log.warning("Caveat: %s", table.cheapest_caveat)
        if self.pick == "cheapest":
            if table.cheapest is None:
                raise ValueError(
                    "pick='cheapest': no backend can train this job here with a current size; left out: "
                    + "; ".join(f"{name}: {reason}" for name, reason in table.left_out.items())
                )
            context["ti"].xcom_push(key="backend", value=table.cheapest.backend)
            self.log.info(
                "Cheapest: %s %s in %s at %.2f %s (%s figure)",
                table.cheapest.backend,
                table.cheapest.instance_type,
                table.cheapest.region,
                table.cheapest.total,
                table.cheapest.currency,
                table.cheapest.provenance,
            )
        return result


class RefreshPriceCatalogOperator(BaseOperator):
    """Fetch current prices from the AWS, Azure and Google price APIs and write a new price catalog.

    The new file is written whole or not at all and takes precedence over the shipped snapshot; an
    answer in an unexpected shape fails the task and leaves the previous catalog untouched.

    :param backends: backends whose pricing names a price API (``sagemaker``, ``vertex_ai``,
        ``azure_ml``, ...); default all of them. (templated)
    :param output_path: the catalog file to write; default ``<trainkit home>/costs/price_catalog.csv``. (templated)
    :param aws_conn_id: AWS connection for the Price List API (needs the amazon provider); ``None``
        for boto3's default credential chain.
    :param google_api_key_conn_id: a connection whose password is a Cloud Billing API key; ``None``
        for ``$TRAINKIT_GOOGLE_BILLING_API_KEY``.
    :param providers: deprecated alias of ``backends``. (templated)
    """

    template_fields: Sequence[str] = ("backends", "providers", "output_path")
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        backends: list[str] | None = None,
        output_path: str | None = None,
        aws_conn_id: str | None = None,
        google_api_key_conn_id: str | None = None,
        providers: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if providers is not None:
            warnings.warn(_RENAMED, DeprecationWarning, stacklevel=2)
        self.backends = backends
        self.providers = providers
        self.output_path = output_path
        self.aws_conn_id = aws_conn_id
        self.google_api_key_conn_id = google_api_key_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.costs.refresh import refresh_catalog, refreshable_backends

        refreshable = refreshable_backends()
        backends = _renamed(self.backends, self.providers) or list(refreshable)
        apis = {refreshable[name].pricing.price_api for name in backends if name in refreshable}
        client = None
        if self.aws_conn_id and "aws_price_list" in apis:
            # The amazon provider is an extra: imported only when an AWS connection is named.
            from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

            client = AwsBaseHook(
                aws_conn_id=self.aws_conn_id, client_type="pricing", region_name="us-east-1"
            ).get_conn()
        api_key = None
        if self.google_api_key_conn_id and "google_cloud_billing" in apis:
            from airflow_trainkit._compat import BaseHook

            api_key = BaseHook.get_connection(self.google_api_key_conn_id).password
            if api_key:
                mask_secret(api_key)
        summary = refresh_catalog(
            backends, path=self.output_path, pricing_client=client, google_api_key=api_key
        )
        for item in summary["backends"]:
            self.log.info(
                "%s: %s rows updated, old price kept for %s",
                item["backend"],
                len(item["updated"]),
                ", ".join(item["kept"]) or "none",
            )
        return summary


_RENAMED = "providers= is deprecated and goes in the next release; use backends="


def _renamed(backends: list[str] | None, providers: list[str] | None) -> list[str] | None:
    """``backends``, or the deprecated ``providers`` when only that is given."""
    if providers is None:
        return backends
    if backends is not None:
        raise ValueError("backends: give backends or the deprecated providers, not both")
    return providers


def default_report_uri(context: Context, area: str) -> str:
    """``<trainkit home>/reports/<area>/<dag>/<run>/<task>[-<map index>]``, safe for any file system."""
    from airflow_trainkit.home import reports_dir

    ti = context["ti"]

    def safe(value: Any) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip("_") or "_"

    task = safe(ti.task_id)
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        task = f"{task}-{map_index}"
    return str(reports_dir() / area / safe(ti.dag_id) / safe(ti.run_id) / task)
