"""The data contract: dataclasses, and a parser whose errors name the file, the line and the key.

A contract is plain data (YAML or JSON). This module only needs PyYAML, so it is cheap to import.
The format is documented field by field in ``docs/validation.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COLUMN_TYPES = ("integer", "float", "number", "string", "boolean", "datetime")
SEVERITIES = ("error", "warning")

_TOP_KEYS = {
    "dataset",
    "owner",
    "description",
    "source",
    "lineage",
    "version",
    "severity",
    "columns",
    "table",
}
_COLUMN_KEYS = {
    "name",
    "type",
    "description",
    "severity",
    "nullable",
    "unique",
    "allowed_values",
    "range",
    "regex",
    "max_null_share",
}
_TABLE_KEYS = {"row_count", "max_null_share", "freshness", "no_extra_columns"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Path_ = tuple[Any, ...]


class ContractError(ValueError):
    """A contract that cannot be read: names the file, the line and the key, and what was expected."""

    def __init__(
        self, message: str, *, source: str | None = None, line: int | None = None, key: str | None = None
    ):
        where = source or "<contract>"
        if line is not None:
            where += f", line {line}"
        if key:
            where += f", key {key}"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.key = key
        self.reason = message


@dataclass(frozen=True)
class Check:
    """One check of a contract; compiles to exactly one GX expectation.

    :param id: stable name, ``columns.<column>.<kind>`` or ``table.<kind>[.<column>]``.
    :param kind: exists, type, not_null, unique, allowed_values, range, regex, max_null_share,
        row_count, freshness, no_extra_columns.
    :param params: the kind's arguments (e.g. ``{"min": 0, "max": 5}`` for a range).
    :param mostly: share of non-null rows that must pass, for row-wise checks; ``None`` means all.
    """

    id: str
    kind: str
    column: str | None
    severity: str
    params: dict[str, Any] = field(default_factory=dict)
    mostly: float | None = None


@dataclass(frozen=True)
class Column:
    name: str
    type: str | None
    description: str | None
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Contract:
    """A parsed data contract. Build one with :func:`load_contract` or :func:`parse_contract`."""

    dataset: str
    severity: str = "error"
    owner: str | None = None
    description: str | None = None
    source: str | None = None
    lineage: tuple[str, ...] = ()
    version: str | None = None
    columns: tuple[Column, ...] = ()
    table_checks: tuple[Check, ...] = ()
    origin: str | None = None

    @property
    def checks(self) -> list[Check]:
        """Every check, column checks first, in file order."""
        return [check for column in self.columns for check in column.checks] + list(self.table_checks)

    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def load_contract(path: str | Path) -> Contract:
    """Read and parse a contract file (``.yaml``, ``.yml`` or ``.json``).

    :raises ContractError: the file is missing, is not valid YAML/JSON, or breaks the format.
    """
    source = str(path)
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError("contract file not found", source=source) from None
    except OSError as err:
        raise ContractError(f"cannot read contract file: {err.strerror or err}", source=source) from err
    return parse_contract(text, source=source)


def parse_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML (or JSON) into plain data, and the 1-based line of every key path."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ContractError(f"not valid YAML: {err.problem or err}", source=source, line=line) from None
        except yaml.YAMLError as err:
            raise ContractError(f"not valid YAML: {err}", source=source) from None
        lines: dict[Path_, int] = {}
        if node is None:
            return None, lines
        return _build(loader, node, (), lines, source), lines
    finally:
        loader.dispose()


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ContractError(
                    "a key must be a plain name", source=source, line=key_node.start_mark.line + 1
                )
            key = loader.construct_object(key_node)
            if key in out:
                raise ContractError(
                    f"duplicate key {key!r}",
                    source=source,
                    line=key_node.start_mark.line + 1,
                    key=_dotted((*path, key)),
                )
            out[key] = _build(loader, value_node, (*path, key), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node)
    except yaml.YAMLError as err:
        raise ContractError(
            f"cannot read value: {err}", source=source, line=lines[path], key=_dotted(path)
        ) from None


def parse_contract(text: str, *, source: str = "<contract>") -> Contract:
    """Parse the text of a contract (YAML or JSON)."""
    data, lines = parse_yaml_with_lines(text, source)
    return contract_from_dict(data, source=source, lines=lines)


def contract_from_dict(
    data: Any, *, source: str = "<contract>", lines: dict[Path_, int] | None = None
) -> Contract:
    """Build a contract from already-parsed data; ``lines`` maps key paths to lines for error messages."""
    return _Parser(source, lines or {}).contract(data)


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: a number of seconds or a string like ``90s``, ``30m``, ``36h``, ``2d``, ``1w``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 36h or 2d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 36h or 2d, got {value!r}")
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Parser:
    def __init__(self, source: str, lines: dict[Path_, int]):
        self.source = source
        self.lines = lines

    def fail(self, path: Path_, message: str) -> ContractError:
        line = None
        for i in range(len(path), -1, -1):  # the key's own line, or the nearest enclosing one
            if path[:i] in self.lines:
                line = self.lines[path[:i]]
                break
        return ContractError(message, source=self.source, line=line, key=_dotted(path) or None)

    # -- generic value readers -------------------------------------------------------------------
    def mapping(self, value: Any, path: Path_, allowed: set[str], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping ({what}), got {_kind(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key), f"unknown {what} key {key!r}; expected one of: {', '.join(sorted(allowed))}"
                )
        return value

    def text(self, value: Any, path: Path_, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                raise self.fail(path, "is required: expected a non-empty string")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        text = str(value).strip()
        if required and not text:
            raise self.fail(path, "expected a non-empty string")
        return text

    def required_text(self, value: Any, path: Path_) -> str:
        return self.text(value, path, required=True) or ""

    def number(
        self, value: Any, path: Path_, *, low: float | None = None, high: float | None = None
    ) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(path, f"expected a number between {low} and {high}, got {value!r}")
        return value

    def flag(self, value: Any, path: Path_) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def severity(self, value: Any, path: Path_, default: str) -> str:
        if value is None:
            return default
        if value not in SEVERITIES:
            raise self.fail(path, f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
        return str(value)

    def long_form(
        self, value: Any, path: Path_, default_severity: str, extra: set[str], *, mostly: bool
    ) -> tuple[Any, str, float | None, dict[str, Any]]:
        """A check written as its value, or as ``{value: ..., severity: ..., mostly: ...}``.

        Returns (value, severity, mostly, other keys); checks whose value is itself a mapping
        (range, row_count, freshness) pass their own keys in ``extra``.
        """
        allowed = {"severity"} | ({"mostly"} if mostly else set()) | (extra or {"value"})
        if not isinstance(value, dict):
            if extra:
                raise self.fail(
                    path, f"expected a mapping with keys {', '.join(sorted(allowed))}, got {_kind(value)}"
                )
            return value, default_severity, None, {}
        self.mapping(value, path, allowed, "check")
        severity = self.severity(value.get("severity"), (*path, "severity"), default_severity)
        share = None
        if value.get("mostly") is not None:
            share = float(self.number(value["mostly"], (*path, "mostly"), low=0.0, high=1.0))
        if not extra and "value" not in value:
            raise self.fail(path, "the long form of a check needs a 'value' key")
        others = {k: v for k, v in value.items() if k not in ("severity", "mostly")}
        return value.get("value"), severity, share, others

    # -- the contract ----------------------------------------------------------------------------
    def contract(self, data: Any) -> Contract:
        if data is None:
            raise self.fail(
                (), "the contract is empty: expected a mapping with at least 'dataset' and 'columns'"
            )
        top = self.mapping(data, (), _TOP_KEYS, "contract")
        dataset = self.required_text(top.get("dataset"), ("dataset",))
        severity = self.severity(top.get("severity"), ("severity",), "error")
        lineage_raw = top.get("lineage")
        if lineage_raw is None:
            lineage: tuple[str, ...] = ()
        elif isinstance(lineage_raw, list):
            lineage = tuple(self.required_text(item, ("lineage", i)) for i, item in enumerate(lineage_raw))
        else:
            lineage = (self.required_text(lineage_raw, ("lineage",)),)
        raw_columns = top.get("columns", [])
        if raw_columns is None:
            raw_columns = []
        if not isinstance(raw_columns, list):
            raise self.fail(("columns",), f"expected a list of columns, got {_kind(raw_columns)}")
        columns: list[Column] = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_columns):
            column = self.column(raw, ("columns", i), severity)
            if column.name in seen:
                raise self.fail(("columns", i, "name"), f"column {column.name!r} is listed twice")
            seen.add(column.name)
            columns.append(column)
        table_checks = self.table(top.get("table"), ("table",), severity, columns)
        if not columns and not top.get("table"):
            raise self.fail(
                ("columns",), "the contract has no checks: list at least one column or table check"
            )
        return Contract(
            dataset=dataset,
            severity=severity,
            owner=self.text(top.get("owner"), ("owner",)),
            description=self.text(top.get("description"), ("description",)),
            source=self.text(top.get("source"), ("source",)),
            lineage=lineage,
            version=self.text(top.get("version"), ("version",)),
            columns=tuple(columns),
            table_checks=tuple(table_checks),
            origin=self.source,
        )

    def column(self, raw: Any, path: Path_, default_severity: str) -> Column:
        spec = self.mapping(raw, path, _COLUMN_KEYS, "column")
        name = self.required_text(spec.get("name"), (*path, "name"))
        severity = self.severity(spec.get("severity"), (*path, "severity"), default_severity)
        prefix = f"columns.{name}"
        checks = [Check(f"{prefix}.exists", "exists", name, severity)]

        column_type = None
        if "type" in spec:
            value, sev, _, _ = self.long_form(spec["type"], (*path, "type"), severity, set(), mostly=False)
            if value not in COLUMN_TYPES:
                raise self.fail((*path, "type"), f"expected one of {', '.join(COLUMN_TYPES)}, got {value!r}")
            column_type = str(value)
            checks.append(Check(f"{prefix}.type", "type", name, sev, {"type": column_type}))
        if "nullable" in spec:
            value, sev, share, _ = self.long_form(
                spec["nullable"], (*path, "nullable"), severity, set(), mostly=True
            )
            if not self.flag(value, (*path, "nullable")):
                checks.append(Check(f"{prefix}.nullable", "not_null", name, sev, {}, share))
        if "unique" in spec:
            value, sev, share, _ = self.long_form(
                spec["unique"], (*path, "unique"), severity, set(), mostly=True
            )
            if self.flag(value, (*path, "unique")):
                checks.append(Check(f"{prefix}.unique", "unique", name, sev, {}, share))
        if "allowed_values" in spec:
            key = (*path, "allowed_values")
            value, sev, share, _ = self.long_form(spec["allowed_values"], key, severity, set(), mostly=True)
            if not isinstance(value, list) or not value:
                raise self.fail(key, f"expected a non-empty list of values, got {_kind(value)}")
            for i, item in enumerate(value):
                if isinstance(item, dict | list):
                    raise self.fail((*key, i), f"expected a plain value, got {_kind(item)}")
            checks.append(
                Check(f"{prefix}.allowed_values", "allowed_values", name, sev, {"values": value}, share)
            )
        if "range" in spec:
            key = (*path, "range")
            _, sev, share, bounds = self.long_form(spec["range"], key, severity, {"min", "max"}, mostly=True)
            params = {
                b: self.bound(bounds[b], (*key, b)) for b in ("min", "max") if bounds.get(b) is not None
            }
            if not params:
                raise self.fail(key, "a range needs 'min', 'max' or both")
            if "min" in params and "max" in params and _gt(params["min"], params["max"]):
                raise self.fail(key, f"min {params['min']!r} is greater than max {params['max']!r}")
            checks.append(Check(f"{prefix}.range", "range", name, sev, params, share))
        if "regex" in spec:
            key = (*path, "regex")
            value, sev, share, _ = self.long_form(spec["regex"], key, severity, set(), mostly=True)
            if not isinstance(value, str) or not value:
                raise self.fail(key, f"expected a regular expression string, got {_kind(value)}")
            try:
                re.compile(value)
            except re.error as err:
                raise self.fail(key, f"not a valid regular expression: {err}") from None
            checks.append(Check(f"{prefix}.regex", "regex", name, sev, {"regex": value}, share))
        if "max_null_share" in spec:
            key = (*path, "max_null_share")
            value, sev, _, _ = self.long_form(spec["max_null_share"], key, severity, set(), mostly=False)
            share = float(self.number(value, key, low=0.0, high=1.0))
            checks.append(Check(f"{prefix}.max_null_share", "max_null_share", name, sev, {"share": share}))
        description = self.text(spec.get("description"), (*path, "description"))
        return Column(name=name, type=column_type, description=description, checks=tuple(checks))

    def bound(self, value: Any, path: Path_) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value
        return self.number(value, path)

    def table(self, raw: Any, path: Path_, default_severity: str, columns: list[Column]) -> list[Check]:
        if raw is None:
            raw = {}
        spec = self.mapping(raw, path, _TABLE_KEYS, "table check")
        checks: list[Check] = []
        if "row_count" in spec:
            key = (*path, "row_count")
            _, sev, _, bounds = self.long_form(
                spec["row_count"], key, default_severity, {"min", "max"}, mostly=False
            )
            params = {
                b: int(self.number(bounds[b], (*key, b), low=0))
                for b in ("min", "max")
                if bounds.get(b) is not None
            }
            if not params:
                raise self.fail(key, "row_count needs 'min', 'max' or both")
            if params.get("min", 0) > params.get("max", math.inf):
                raise self.fail(key, f"min {params['min']} is greater than max {params['max']}")
            checks.append(Check("table.row_count", "row_count", None, sev, params))
        else:  # an empty dataset is never silently fine: it fails unless the contract allows zero rows
            checks.append(Check("table.not_empty", "row_count", None, default_severity, {"min": 1}))
        if "max_null_share" in spec:
            key = (*path, "max_null_share")
            value, sev, _, _ = self.long_form(
                spec["max_null_share"], key, default_severity, set(), mostly=False
            )
            share = float(self.number(value, key, low=0.0, high=1.0))
            for column in columns:
                own = {c.kind for c in column.checks}
                if "max_null_share" in own or "not_null" in own:
                    continue  # the column's own, stricter rule applies
                checks.append(
                    Check(
                        f"table.max_null_share.{column.name}",
                        "max_null_share",
                        column.name,
                        sev,
                        {"share": share},
                    )
                )
        if "freshness" in spec:
            key = (*path, "freshness")
            _, sev, _, params = self.long_form(
                spec["freshness"], key, default_severity, {"column", "max_age"}, mostly=False
            )
            column_name = self.required_text(params.get("column"), (*key, "column"))
            if params.get("max_age") is None:
                raise self.fail((*key, "max_age"), "is required: expected a duration such as 36h or 2d")
            try:
                seconds = parse_duration(params["max_age"])
            except ValueError as err:
                raise self.fail((*key, "max_age"), str(err)) from None
            checks.append(
                Check(
                    "table.freshness",
                    "freshness",
                    column_name,
                    sev,
                    {"max_age": str(params["max_age"]), "max_age_seconds": seconds},
                )
            )
        if "no_extra_columns" in spec:
            key = (*path, "no_extra_columns")
            value, sev, _, _ = self.long_form(
                spec["no_extra_columns"], key, default_severity, set(), mostly=False
            )
            if self.flag(value, key):
                if not columns:
                    raise self.fail(key, "no_extra_columns needs the contract to list its columns")
                checks.append(
                    Check(
                        "table.no_extra_columns",
                        "no_extra_columns",
                        None,
                        sev,
                        {"columns": [c.name for c in columns]},
                    )
                )
        return checks


def _gt(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return False


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"
