"""Operators for training cost: quote a job on every backend (and pick the cheapest); refresh the prices."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from airflow_trainkit._compat import BaseOperator, mask_secret
from airflow_trainkit.vocabulary import renamed_parameter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_trainkit.costs.quotes import QuoteTable

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
    :param epochs: expected epochs. (templated)
    :param seconds_per_epoch: seconds one epoch takes. (templated)
    :param backends: backends to quote; default every priced one. (templated)
    :param pick: ``None`` or ``"cheapest"``. (templated)
    :param pick_from_backends: backends the cheapest may be chosen from, e.g. those you have
        connections for; a name that is not installed or declared fails the task before anything
        else. (templated)
    :param onprem: on-prem cost settings: a list of dicts or a CSV path; default the settings file. (templated)
    :param catalog_path: a price catalog CSV instead of the one in force. (templated)
    :param max_price_age: flag prices older than this duration (``90d``, ``12w``, seconds); default
        ``$TRAINKIT_PRICE_MAX_AGE`` or 90 days. (templated)
    :param report_uri: folder for the report (CSV, Markdown, PNG chart); default
        ``<trainkit home>/reports/costs/<dag>/<run>/<task>``. (templated)
    :param regions: where to price: a geography (``us``, ``eu``, ``asia``) each backend maps to one
        of its regions, or backend -> region or geography. (templated)
    :param region_conn_ids: for backends not in ``regions``: ``True`` (default) reads the region from
        each backend's own connection (``aws_default``, ``google_cloud_default``), falling back to
        the backend's default region when it has none; backend -> connection id to read others;
        ``False`` for the default regions. (templated)
    :param vcpus: a CPU-only job (no accelerator): the vCPUs it needs. (templated)
    :param memory_gib: a CPU-only job: the memory it needs, in GiB. (templated)
    :param providers: deprecated alias of ``backends``.
    :param pick_from: deprecated alias of ``pick_from_backends``.
    :param max_age_days: deprecated: ``max_price_age`` in days (``30`` is ``"30d"``).
    """

    template_fields: Sequence[str] = (
        "spec",
        "hours",
        "epochs",
        "seconds_per_epoch",
        "backends",
        "pick",
        "pick_from_backends",
        "onprem",
        "catalog_path",
        "max_price_age",
        "report_uri",
        "regions",
        "region_conn_ids",
        "vcpus",
        "memory_gib",
    )
    template_fields_renderers = {"spec": "json", "onprem": "json", "regions": "json"}
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        spec: Any,
        hours: float | str | None = None,
        epochs: float | str | None = None,
        seconds_per_epoch: float | str | None = None,
        backends: list[str] | str | None = None,
        pick: str | None = None,
        pick_from_backends: list[str] | str | None = None,
        onprem: Any = None,
        catalog_path: str | None = None,
        max_price_age: str | float | None = None,
        report_uri: str | None = None,
        regions: str | dict[str, str] | None = None,
        region_conn_ids: bool | dict[str, str] | str = True,
        vcpus: float | str | None = None,
        memory_gib: float | str | None = None,
        providers: list[str] | None = None,
        pick_from: list[str] | None = None,
        max_age_days: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        self.spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
        self.hours = hours
        self.epochs = epochs
        self.seconds_per_epoch = seconds_per_epoch
        self.backends = renamed_parameter(name, "providers", "backends", providers, backends)
        self.pick = pick
        self.pick_from_backends = renamed_parameter(
            name, "pick_from", "pick_from_backends", pick_from, pick_from_backends
        )
        self.onprem = onprem
        self.catalog_path = catalog_path
        # "{{ params.days }}" renders to a number of days: as a duration it is "{{ params.days }}d".
        old_age = f"{max_age_days}d" if max_age_days not in (None, "") else None
        self.max_price_age = renamed_parameter(name, "max_age_days", "max_price_age", old_age, max_price_age)
        self.report_uri = report_uri
        self.regions = regions
        self.region_conn_ids = region_conn_ids
        self.vcpus = vcpus
        self.memory_gib = memory_gib

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.costs.catalog import load_catalog
        from airflow_trainkit.costs.quotes import format_quote_table, quote_job
        from airflow_trainkit.costs.report import write_report
        from airflow_trainkit.training.pricing import pricing_registry

        registry = pricing_registry()
        if self.pick_from_backends is not None:  # a name that is not installed fails before anything is read
            registry.check_names("pick_from_backends", self.pick_from_backends)
        if self.pick not in PICK_MODES:
            raise ValueError(f"pick must be None or 'cheapest', got {self.pick!r}")
        if self.backends is not None:
            registry.check_names("backends", self.backends)
        catalog = load_catalog(self.catalog_path or None, onprem=self.onprem)
        table = quote_job(
            self.spec,
            hours=self.hours,
            epochs=self.epochs,
            seconds_per_epoch=self.seconds_per_epoch,
            backends=self.backends,
            pick_from_backends=self.pick_from_backends,
            catalog=catalog,
            max_price_age=self.max_price_age,
            registry=registry,
            regions=self.regions or None,
            region_conn_ids=_region_conn_ids(self.region_conn_ids),
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
            self._push_cheapest(table, context)
        return result

    def _push_cheapest(self, table: QuoteTable, context: Context) -> None:
        """Push the cheapest backend under the XCom key ``backend``; fail when there is none."""
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


def _region_conn_ids(value: Any) -> bool | dict[str, str] | None:
    """``region_conn_ids`` as rendered: a mapping, or a boolean (a template renders ``"True"``/``"False"``).

    :raises ValueError: naming the field and the value for anything else.
    """
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if isinstance(value, bool) or value is None:
        return value or None
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return value or None
    raise ValueError(
        f"region_conn_ids must be true, false or a mapping of backend to connection id, got {value!r}"
    )


class RefreshPriceCatalogOperator(BaseOperator):
    """Fetch current prices from the AWS, Azure and Google price APIs and write a new price catalog.

    The new file is written whole or not at all and takes precedence over the shipped snapshot; an
    answer in an unexpected shape fails the task and leaves the previous catalog untouched.

    :param backends: backends whose pricing names a price API (``sagemaker``, ``vertex_ai``,
        ``azure_ml``, ...); default all of them. (templated)
    :param output_path: the catalog file to write; default ``<trainkit home>/costs/price_catalog.csv``. (templated)
    :param aws_conn_id: AWS connection for the Price List API (needs the amazon provider); ``None``
        for boto3's default credential chain. (templated)
    :param google_api_key_conn_id: a connection whose password is a Cloud Billing API key; ``None``
        for ``$TRAINKIT_GOOGLE_BILLING_API_KEY``. (templated)
    :param providers: deprecated alias of ``backends``.
    """

    template_fields: Sequence[str] = ("backends", "output_path", "aws_conn_id", "google_api_key_conn_id")
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        backends: list[str] | str | None = None,
        output_path: str | None = None,
        aws_conn_id: str | None = None,
        google_api_key_conn_id: str | None = None,
        providers: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.backends = renamed_parameter(type(self).__name__, "providers", "backends", providers, backends)
        self.output_path = output_path
        self.aws_conn_id = aws_conn_id
        self.google_api_key_conn_id = google_api_key_conn_id

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_trainkit.costs.refresh import refresh_catalog, refreshable_backends

        refreshable = refreshable_backends()
        backends = self.backends or list(refreshable)
        if isinstance(backends, str):
            backends = [backends]
        apis = {refreshable[name].pricing.price_api for name in backends if name in refreshable}
        client = self._pricing_client() if "aws_price_list" in apis else None
        api_key = self._google_api_key() if "google_cloud_billing" in apis else None
        summary = refresh_catalog(
            backends, path=self.output_path or None, pricing_client=client, google_api_key=api_key
        )
        for item in summary["backends"]:
            self.log.info(
                "%s: %s rows updated, old price kept for %s",
                item["backend"],
                len(item["updated"]),
                ", ".join(item["kept"]) or "none",
            )
        return summary

    def _pricing_client(self) -> Any:
        """The AWS Price List client of ``aws_conn_id``; ``None`` (boto3's default chain) when none is named."""
        if not self.aws_conn_id:
            return None
        # The amazon provider is an extra: imported only when an AWS connection is named.
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(
            aws_conn_id=self.aws_conn_id, client_type="pricing", region_name="us-east-1"
        ).get_conn()

    def _google_api_key(self) -> str | None:
        """The Cloud Billing API key in ``google_api_key_conn_id``'s password (masked in logs), or ``None``."""
        if not self.google_api_key_conn_id:
            return None
        from airflow_trainkit._compat import BaseHook

        api_key = BaseHook.get_connection(self.google_api_key_conn_id).password
        if api_key:
            mask_secret(api_key)
        return api_key or None


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
