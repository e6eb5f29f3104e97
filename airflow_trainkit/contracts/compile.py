"""Turn a contract, an existing GX suite (JSON) or a GX checkpoint into a GX 1.x ExpectationSuite.

Every expectation carries ``meta.trainkit_check`` (the check's id) and a GX severity (``critical``
for ``error``, ``warning`` for ``warning``), so results can be mapped back to the contract.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_trainkit.contracts.model import (
    Check,
    Contract,
    ContractError,
    contract_from_dict,
    parse_yaml_with_lines,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from great_expectations.core import ExpectationSuite

ENGINES = ("pandas", "sql")
CHECK_META_KEY = "trainkit_check"
_GX_SEVERITY = {"error": "critical", "warning": "warning"}

# Names GX compares a column's type against. Pandas: numpy dtypes, pandas extension dtypes, and
# Python types for object columns (checked value by value). SQL: SQLAlchemy type names, which GX
# resolves in the dialect's type module and checks with isinstance (so INTEGER also covers BIGINT).
_PANDAS_INT = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
_PANDAS_INT += [
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
    "UInt8Dtype",
    "UInt16Dtype",
    "UInt32Dtype",
    "UInt64Dtype",
]
_PANDAS_FLOAT = ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype"]
TYPE_NAMES: dict[str, dict[str, list[str]]] = {
    "pandas": {
        "integer": _PANDAS_INT,
        "float": _PANDAS_FLOAT,
        "number": _PANDAS_INT + _PANDAS_FLOAT,
        "string": ["str", "StringDtype"],
        "boolean": ["bool", "BooleanDtype"],
        "datetime": [
            "datetime64",
            "datetime64[ns]",
            "datetime64[us]",
            "datetime64[ms]",
            "datetime64[s]",
            "DatetimeTZDtype",
        ],
    },
    "sql": {
        "integer": ["INTEGER", "BIGINT", "SMALLINT", "INT"],
        "float": ["FLOAT", "REAL", "DOUBLE", "DOUBLE_PRECISION", "NUMERIC", "DECIMAL"],
        "number": [
            "INTEGER",
            "BIGINT",
            "SMALLINT",
            "INT",
            "FLOAT",
            "REAL",
            "DOUBLE",
            "DOUBLE_PRECISION",
            "NUMERIC",
            "DECIMAL",
        ],
        "string": ["VARCHAR", "TEXT", "CHAR", "NVARCHAR", "NCHAR", "STRING", "CLOB"],
        "boolean": ["BOOLEAN"],
        "datetime": ["DATETIME", "TIMESTAMP", "DATE"],
    },
}


@dataclass(frozen=True)
class SuiteSource:
    """Expectations taken from an existing GX suite or checkpoint, as GX JSON dicts."""

    name: str
    expectations: tuple[dict[str, Any], ...]
    origin: str


def resolve_contract(contract: Any) -> Contract | SuiteSource:
    """Whatever the user passed as ``contract``, as a :class:`Contract` or a :class:`SuiteSource`.

    Accepted: a path to a contract (``.yaml``/``.yml``/``.json``), to a GX suite JSON or to a GX
    checkpoint JSON inside a GX project folder; a dict of any of those; a ``Contract``; a GX
    ``ExpectationSuite`` object.
    """
    if isinstance(contract, Contract | SuiteSource):
        return contract
    if isinstance(contract, dict):
        return _from_data(contract, "<dict>", {}, None)
    if isinstance(contract, str | Path):
        path = Path(contract).expanduser()
        source = str(contract)
        if not str(contract).strip():
            raise ContractError(
                "no contract given: expected a path to a contract, GX suite or checkpoint file"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ContractError("contract file not found", source=source) from None
        except OSError as err:
            raise ContractError(f"cannot read contract file: {err.strerror or err}", source=source) from err
        data, lines = parse_yaml_with_lines(text, source)
        return _from_data(data, source, lines, path)
    if hasattr(contract, "expectations") and hasattr(contract, "to_json_dict"):  # a GX ExpectationSuite
        return _suite_from_json(contract.to_json_dict(), f"<suite {getattr(contract, 'name', '?')}>")
    raise ContractError(
        f"expected a contract path, a dict, a Contract or a GX ExpectationSuite, got {type(contract).__name__}"
    )


def _from_data(data: Any, source: str, lines: dict[Any, int], path: Path | None) -> Contract | SuiteSource:
    if isinstance(data, dict) and "expectations" in data and "columns" not in data and "dataset" not in data:
        return _suite_from_json(data, source)
    if isinstance(data, dict) and "validation_definitions" in data and "dataset" not in data:
        if path is None:
            raise ContractError(
                "a GX checkpoint must be passed as a file inside its GX project", source=source
            )
        return _suite_from_checkpoint(data, path)
    return contract_from_dict(data, source=source, lines=lines)


def _suite_from_json(data: dict[str, Any], source: str) -> SuiteSource:
    expectations = data.get("expectations")
    if not isinstance(expectations, list):
        raise ContractError("a GX suite needs an 'expectations' list", source=source, key="expectations")
    for i, item in enumerate(expectations):
        if not isinstance(item, dict) or not isinstance(
            item.get("type") or item.get("expectation_type"), str
        ):
            raise ContractError("expected a mapping with a 'type'", source=source, key=f"expectations[{i}]")
    name = str(data.get("name") or data.get("expectation_suite_name") or Path(source).stem or "suite")
    return SuiteSource(name=name, expectations=tuple(expectations), origin=source)


def _suite_from_checkpoint(data: dict[str, Any], path: Path) -> SuiteSource:
    """Collect the suites a file-backed GX checkpoint validates (``<project>/checkpoints/x.json``)."""
    root = path.resolve().parent.parent
    expectations: list[dict[str, Any]] = []
    for i, ref in enumerate(data.get("validation_definitions") or []):
        key = f"validation_definitions[{i}]"
        vd_name = ref.get("name") if isinstance(ref, dict) else None
        if not vd_name:
            raise ContractError("expected a mapping with a 'name'", source=str(path), key=key)
        vd_file = root / "validation_definitions" / f"{vd_name}.json"
        vd = _read_json(vd_file, str(path), key)
        suite_name = (vd.get("suite") or {}).get("name")
        if not suite_name:
            raise ContractError("validation definition names no suite", source=str(vd_file), key="suite.name")
        suite_file = root / "expectations" / f"{suite_name}.json"
        suite = _suite_from_json(_read_json(suite_file, str(vd_file), "suite.name"), str(suite_file))
        for j, item in enumerate(suite.expectations):  # name each check after its own suite
            meta = dict(item.get("meta") or {})
            meta.setdefault(
                CHECK_META_KEY, f"{suite.name}[{j}].{item.get('type') or item.get('expectation_type')}"
            )
            expectations.append({**item, "meta": meta})
    if not expectations:
        raise ContractError(
            "the checkpoint validates no expectations", source=str(path), key="validation_definitions"
        )
    return SuiteSource(
        name=str(data.get("name") or path.stem), expectations=tuple(expectations), origin=str(path)
    )


def _read_json(file: Path, referrer: str, key: str) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"refers to {file}, which does not exist", source=referrer, key=key) from None
    except (OSError, ValueError) as err:
        raise ContractError(f"cannot read {file}: {err}", source=referrer, key=key) from err
    if not isinstance(data, dict):
        raise ContractError("expected a JSON object", source=str(file))
    return data


def compile_suite(
    source: Contract | SuiteSource,
    *,
    engine: str = "pandas",
    now: dt.datetime | None = None,
    tz_aware_columns: frozenset[str] = frozenset(),
) -> ExpectationSuite:
    """Build the GX 1.x ``ExpectationSuite`` for a contract (or rebuild an imported suite).

    :param engine: ``pandas`` or ``sql``: type checks name pandas dtypes or SQLAlchemy types.
    :param now: the time freshness is measured from (default: now, UTC).
    :param tz_aware_columns: pandas datetime columns with a time zone, so the freshness bound matches.
    """
    import great_expectations as gx  # heavy: compiling a suite is a run-time step, never DAG parse

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if isinstance(source, SuiteSource):
        return gx.ExpectationSuite(name=source.name, expectations=_imported(source))
    now = now or dt.datetime.now(dt.UTC)
    # Passed to the constructor: add_expectation() would need an active data context.
    expectations = [
        expectation_for(check, engine=engine, now=now, tz_aware_columns=tz_aware_columns)
        for check in source.checks
    ]
    return gx.ExpectationSuite(
        name=source.dataset,
        expectations=expectations,
        meta={"trainkit_contract": source.origin, "owner": source.owner, "version": source.version},
    )


@dataclass(frozen=True)
class _Target:
    """What an expectation's arguments depend on besides the check: the engine, the time, the data."""

    engine: str
    now: dt.datetime
    tz_aware_columns: frozenset[str]


def _column(check: Check, _: _Target) -> dict[str, Any]:
    return {"column": check.column or ""}


def _type_list(check: Check, target: _Target) -> dict[str, Any]:
    return {"column": check.column or "", "type_list": TYPE_NAMES[target.engine][check.params["type"]]}


def _between(check: Check, target: _Target) -> dict[str, Any]:
    aware = check.column in target.tz_aware_columns
    return {
        "column": check.column or "",
        "min_value": _bound(check.params.get("min"), aware),
        "max_value": _bound(check.params.get("max"), aware),
    }


def _non_null_share(check: Check, _: _Target) -> dict[str, Any]:
    return {
        "column": check.column or "",
        "min_value": round(1.0 - check.params["share"], 12),
        "max_value": 1.0,
    }


def _newest_since(check: Check, target: _Target) -> dict[str, Any]:
    oldest = target.now.astimezone(dt.UTC) - dt.timedelta(seconds=check.params["max_age_seconds"])
    if check.column not in target.tz_aware_columns:
        oldest = oldest.replace(tzinfo=None)  # naive timestamps are read as UTC
    return {"column": check.column or "", "min_value": oldest}


# check kind -> (GX expectation class, its arguments): the table of docs/validation.md.
_EXPECTATIONS: dict[str, tuple[str, Callable[[Check, _Target], dict[str, Any]]]] = {
    "exists": ("ExpectColumnToExist", _column),
    "type": ("ExpectColumnValuesToBeInTypeList", _type_list),
    "not_null": ("ExpectColumnValuesToNotBeNull", _column),
    "unique": ("ExpectColumnValuesToBeUnique", _column),
    "allowed_values": (
        "ExpectColumnValuesToBeInSet",
        lambda check, _: {"column": check.column or "", "value_set": check.params["values"]},
    ),
    "range": ("ExpectColumnValuesToBeBetween", _between),
    "regex": (
        "ExpectColumnValuesToMatchRegex",
        lambda check, _: {"column": check.column or "", "regex": check.params["regex"]},
    ),
    "max_null_share": ("ExpectColumnProportionOfNonNullValuesToBeBetween", _non_null_share),
    "row_count": (
        "ExpectTableRowCountToBeBetween",
        lambda check, _: {"min_value": check.params.get("min"), "max_value": check.params.get("max")},
    ),
    "freshness": ("ExpectColumnMaxToBeBetween", _newest_since),
    "no_extra_columns": (
        "ExpectTableColumnsToMatchSet",
        lambda check, _: {"column_set": check.params["columns"], "exact_match": True},
    ),
}


def expectation_for(
    check: Check, *, engine: str, now: dt.datetime, tz_aware_columns: frozenset[str] = frozenset()
) -> Any:
    """The one GX expectation that evaluates ``check``."""
    import great_expectations.expectations as gxe  # heavy: see compile_suite

    if check.kind not in _EXPECTATIONS:
        raise ValueError(f"unknown check kind {check.kind!r} in check {check.id!r}")
    name, arguments = _EXPECTATIONS[check.kind]
    common: dict[str, Any] = {"meta": {CHECK_META_KEY: check.id}, "severity": _GX_SEVERITY[check.severity]}
    if check.mostly is not None:
        common["mostly"] = check.mostly
    return getattr(gxe, name)(**arguments(check, _Target(engine, now, tz_aware_columns)), **common)


def _bound(value: Any, aware: bool) -> Any:
    """Dates become datetimes at midnight; datetimes match the column's time-zone awareness (UTC)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        if aware and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        if not aware and value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _imported(source: SuiteSource) -> list[Any]:
    from great_expectations.expectations.expectation_configuration import (  # heavy: see compile_suite
        ExpectationConfiguration,
    )
    from great_expectations.expectations.metadata_types import FailureSeverity

    out = []
    for i, raw in enumerate(source.expectations):
        meta = dict(raw.get("meta") or {})
        meta.setdefault(
            CHECK_META_KEY, f"{source.name}[{i}].{raw.get('type') or raw.get('expectation_type')}"
        )
        kwargs = {k: v for k, v in (raw.get("kwargs") or {}).items() if k != "batch_id"}
        try:
            config = ExpectationConfiguration(
                type=raw.get("type") or raw["expectation_type"],
                kwargs=kwargs,
                meta=meta,
                severity=FailureSeverity(raw.get("severity") or "critical"),
            )
            out.append(config.to_domain_obj())
        except Exception as err:  # GX raises several unrelated classes for a bad expectation
            raise ContractError(
                f"not a valid GX expectation: {err}", source=source.origin, key=f"expectations[{i}]"
            ) from err
    return out


def severity_of(gx_severity: str | None) -> str:
    """Our severity for a GX one: ``critical`` fails (error); ``warning`` and ``info`` report."""
    return "error" if (gx_severity or "critical") == "critical" else "warning"
