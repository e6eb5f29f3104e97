"""The data contract: the file's format as pydantic models, and the checks a contract compiles to.

A contract is plain data (YAML or JSON). :class:`ContractFile` and the models of its columns, table
and checks validate it: strict types, unknown keys refused, and errors that name the file, the line,
the key and the value. A valid file becomes a :class:`Contract`, the list of :class:`Check` s that
``compile`` turns into GX expectations. This module needs only PyYAML and pydantic, so it is cheap
to import. The format is documented field by field in ``docs/validation.md``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    StringConstraints,
    model_validator,
)
from pydantic_core import core_schema

from airflow_trainkit.config_model import StrictModel, build, dotted, problem_at
from airflow_trainkit.durations import Seconds, format_duration

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import GetCoreSchemaHandler

COLUMN_TYPES = ("integer", "float", "number", "string", "boolean", "datetime")
SEVERITIES = ("error", "warning")

Path_ = tuple[Any, ...]


class ContractError(ValueError):
    """A contract that cannot be read or used: ``file:line: key: what is wrong``, one line per problem."""

    def __init__(
        self, message: str, *, source: str | None = None, line: int | None = None, key: str | None = None
    ) -> None:
        where = (source or "") + (f":{line}" if line is not None and source else "")
        prefix = "".join(f"{part}: " for part in (where, key) if part)
        super().__init__(prefix + message)
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
    """A column the contract lists: its declared type (``None`` if it declares none) and its checks."""

    name: str
    type: str | None
    description: str | None
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Contract:
    """A valid data contract, as checks. Build one with :func:`load_contract` or :func:`parse_contract`."""

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
        """The listed columns' names, in file order (what ``no_extra_columns`` allows)."""
        return [column.name for column in self.columns]


# -- value types ------------------------------------------------------------------------------------
Severity = Literal["error", "warning"]
ColumnType = Literal["integer", "float", "number", "string", "boolean", "datetime"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]


def _bound(value: Any) -> Any:
    numeric = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if numeric or isinstance(value, dt.date):  # a datetime is a date too
        return value
    raise ValueError("must be a number, or a date or time for a datetime column")


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        raise ValueError(
            "must be a plain value (text, a number, a boolean or a date), not a mapping or a list"
        )
    return value


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"not a valid regular expression: {err}") from None
    return pattern


def _one_or_many(value: Any) -> Any:
    if value is None:  # ``lineage:`` with nothing after it
        return []
    return [value] if isinstance(value, str) else value


Bound = Annotated[int | float | dt.date, PlainValidator(_bound)]
Values = Annotated[list[Annotated[Any, PlainValidator(_plain)]], Field(min_length=1)]
Regex = Annotated[str, StringConstraints(min_length=1), AfterValidator(_compiles)]


@dataclass(frozen=True)
class ShortForm:
    """A check written as its value alone (``unique: true``) or as a mapping with ``value``
    (``unique: {value: true, severity: warning}``); either way the field holds the check's model.

    :param value_type: the type of ``value``.
    :param shape: the short form's kind of YAML value (``bool``, ``str``, ``float``, ``list``), the
        union member pydantic puts into an error's location, which ``config_model`` leaves out.
    """

    value_type: Any
    shape: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """A union of the mapping (the model) and the value alone, told apart by the input's shape."""
        short = core_schema.no_info_after_validator_function(
            lambda value: source(value=value), handler.generate_schema(self.value_type)
        )
        return core_schema.tagged_union_schema(
            {"dict": handler(source), self.shape: short},
            discriminator=lambda value: "dict" if isinstance(value, dict) else self.shape,
        )


# -- the checks, as written -------------------------------------------------------------------------
class CheckSpec(StrictModel):
    """What every check may say besides its value: its severity (default: its column's, or the contract's)."""

    kind: ClassVar[str]
    severity: Severity | None = None

    def compile(self, check_id: str, column: str | None, inherited: str) -> Check | None:
        """The check, or ``None`` when the value asks for none (``nullable: true``, ``unique: false``)."""
        if not self.wanted():
            return None
        return Check(check_id, self.kind, column, self.severity or inherited, self.params(), self.share())

    def wanted(self) -> bool:
        """Whether the value asks for a check at all."""
        return True

    def params(self) -> dict[str, Any]:
        """The check's arguments (:attr:`Check.params`)."""
        return {}

    def share(self) -> float | None:
        """The share of non-null rows that must pass (row-wise checks only)."""
        return None


class RowWiseSpec(CheckSpec):
    """A check of every non-null value, which may let a share of them fail (``mostly: 0.99``)."""

    mostly: Share | None = None

    def share(self) -> float | None:
        """``mostly``: the share of non-null rows that must pass; ``None`` means all."""
        return self.mostly


class TypeSpec(CheckSpec):
    """``type``: the column's declared type."""

    kind = "type"
    value: ColumnType

    def params(self) -> dict[str, Any]:
        """``{"type": ...}``."""
        return {"type": self.value}


class NullableSpec(RowWiseSpec):
    """``nullable: false`` adds a not-null check; ``true`` adds none."""

    kind = "not_null"
    value: bool

    def wanted(self) -> bool:
        """Only ``nullable: false`` checks anything."""
        return not self.value


class UniqueSpec(RowWiseSpec):
    """``unique: true``: no value repeats."""

    kind = "unique"
    value: bool

    def wanted(self) -> bool:
        """Only ``unique: true`` checks anything."""
        return self.value


class AllowedValuesSpec(RowWiseSpec):
    """``allowed_values``: a non-empty list of plain values."""

    kind = "allowed_values"
    value: Values

    def params(self) -> dict[str, Any]:
        """``{"values": [...]}``."""
        return {"values": list(self.value)}


class RegexSpec(RowWiseSpec):
    """``regex``: every value matches the regular expression."""

    kind = "regex"
    value: Regex

    def params(self) -> dict[str, Any]:
        """``{"regex": ...}``."""
        return {"regex": self.value}


class NullShareSpec(CheckSpec):
    """``max_null_share``: at most this share of the values may be null."""

    kind = "max_null_share"
    value: Share

    def params(self) -> dict[str, Any]:
        """``{"share": ...}``."""
        return {"share": self.value}


class _Bounds(CheckSpec):
    """``min``, ``max`` or both, ``min`` not above ``max``."""

    min: Any = None
    max: Any = None

    @model_validator(mode="after")
    def _ordered(self) -> _Bounds:
        if self.min is None and self.max is None:
            raise ValueError(f"{self.kind} needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and _above(self.min, self.max):
            raise ValueError(f"min {self.min!r} is greater than max {self.max!r}")
        return self

    def params(self) -> dict[str, Any]:
        """The bounds given: ``{"min": ..., "max": ...}``."""
        return {key: value for key, value in (("min", self.min), ("max", self.max)) if value is not None}


class RangeSpec(_Bounds, RowWiseSpec):
    """``range: {min: .., max: ..}``: numbers, or dates and times for a datetime column."""

    kind = "range"
    min: Bound | None = None
    max: Bound | None = None


class RowCountSpec(_Bounds):
    """``row_count: {min: .., max: ..}``: whole numbers of rows."""

    kind = "row_count"
    min: Count | None = None
    max: Count | None = None


class FreshnessSpec(CheckSpec):
    """``freshness: {column: .., max_age: ..}``: the newest value of ``column`` is at most ``max_age`` old."""

    kind = "freshness"
    column: Name
    max_age: Seconds

    def params(self) -> dict[str, Any]:
        """The age as written again (``36h``) and in seconds."""
        return {"max_age": format_duration(self.max_age), "max_age_seconds": self.max_age}


class ExtraColumnsSpec(CheckSpec):
    """``no_extra_columns: true``: the data has no column the contract does not list."""

    kind = "no_extra_columns"
    value: bool


# -- columns, table, contract ----------------------------------------------------------------------
class ColumnSpec(StrictModel):
    """One entry of ``columns``: the name, and the checks of that column."""

    name: Name
    description: Text | None = None
    severity: Severity | None = None
    type: Annotated[TypeSpec, ShortForm(ColumnType, "str")] | None = None
    nullable: Annotated[NullableSpec, ShortForm(bool, "bool")] | None = None
    unique: Annotated[UniqueSpec, ShortForm(bool, "bool")] | None = None
    allowed_values: Annotated[AllowedValuesSpec, ShortForm(Values, "list")] | None = None
    range: RangeSpec | None = None
    regex: Annotated[RegexSpec, ShortForm(Regex, "str")] | None = None
    max_null_share: Annotated[NullShareSpec, ShortForm(Share, "float")] | None = None

    CHECKS: ClassVar[tuple[str, ...]] = (
        "type",
        "nullable",
        "unique",
        "allowed_values",
        "range",
        "regex",
        "max_null_share",
    )

    def compile(self, inherited: str) -> Column:
        """The column with its checks: ``exists`` first, then one per key, in the order of ``CHECKS``."""
        severity = self.severity or inherited
        checks = [Check(f"columns.{self.name}.exists", "exists", self.name, severity)]
        for key in self.CHECKS:
            spec: CheckSpec | None = getattr(self, key)
            check = spec.compile(f"columns.{self.name}.{key}", self.name, severity) if spec else None
            if check is not None:
                checks.append(check)
        declared = self.type.value if self.type else None
        return Column(name=self.name, type=declared, description=self.description, checks=tuple(checks))


class TableSpec(StrictModel):
    """``table``: the checks of the table as a whole."""

    row_count: RowCountSpec | None = None
    max_null_share: Annotated[NullShareSpec, ShortForm(Share, "float")] | None = None
    freshness: FreshnessSpec | None = None
    no_extra_columns: Annotated[ExtraColumnsSpec, ShortForm(bool, "bool")] | None = None

    def compile(self, severity: str, columns: Sequence[Column]) -> list[Check]:
        """The table's checks; without ``row_count``, an empty dataset fails ``table.not_empty``."""
        checks = [
            self.row_count.compile("table.row_count", None, severity)
            if self.row_count
            else Check("table.not_empty", "row_count", None, severity, {"min": 1})
        ]
        checks += self._null_shares(severity, columns)
        if self.freshness:
            checks.append(self.freshness.compile("table.freshness", self.freshness.column, severity))
        extra = self.no_extra_columns
        if extra and extra.value:
            names = [column.name for column in columns]
            checks.append(
                Check(
                    "table.no_extra_columns", extra.kind, None, extra.severity or severity, {"columns": names}
                )
            )
        return [check for check in checks if check is not None]

    def _null_shares(self, severity: str, columns: Sequence[Column]) -> list[Check | None]:
        """``max_null_share`` for every column without a null rule of its own (its own is stricter)."""
        if self.max_null_share is None:
            return []
        own = ("max_null_share", "not_null")
        return [
            self.max_null_share.compile(f"table.max_null_share.{column.name}", column.name, severity)
            for column in columns
            if not any(check.kind in own for check in column.checks)
        ]


class ContractFile(StrictModel):
    """A contract file as written: the top-level keys (``docs/validation.md``, "Top-level keys")."""

    dataset: Name
    owner: Text | None = None
    description: Text | None = None
    source: Text | None = None
    lineage: Annotated[list[Name], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    version: Text | None = None
    severity: Severity = "error"
    columns: list[ColumnSpec] | None = None
    table: TableSpec | None = None

    @model_validator(mode="after")
    def _has_checks(self) -> ContractFile:
        _no_column_twice(self.columns or [])
        if not self.columns and not (self.table and self.table.model_fields_set):
            raise problem_at(
                ("columns",), "the contract has no checks: list at least one column or table check"
            )
        if (
            self.table
            and self.table.no_extra_columns
            and self.table.no_extra_columns.value
            and not self.columns
        ):
            raise problem_at(
                ("table", "no_extra_columns"), "no_extra_columns needs the contract to list its columns"
            )
        return self

    def contract(self, origin: str | None = None) -> Contract:
        """The contract's checks; ``origin`` is where it was read from (the file), for the report."""
        columns = tuple(column.compile(self.severity) for column in self.columns or ())
        return Contract(
            dataset=self.dataset,
            severity=self.severity,
            owner=self.owner,
            description=self.description,
            source=self.source,
            lineage=tuple(self.lineage),
            version=self.version,
            columns=columns,
            table_checks=tuple((self.table or TableSpec()).compile(self.severity, columns)),
            origin=origin,
        )


def _no_column_twice(columns: Sequence[ColumnSpec]) -> None:
    first: dict[str, int] = {}
    for i, column in enumerate(columns):
        if column.name in first:
            message = f"column {column.name!r} is listed twice (first as columns[{first[column.name]}])"
            raise problem_at(("columns", i, "name"), message)
        first[column.name] = i


def _above(low: Any, high: Any) -> bool:
    try:
        return bool(low > high)
    except TypeError:  # a number and a date: the type check will say which is wrong
        return False


# -- reading ------------------------------------------------------------------------------------------
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


def parse_contract(text: str, *, source: str = "<contract>") -> Contract:
    """Parse the text of a contract (YAML or JSON)."""
    data, lines = parse_yaml_with_lines(text, source)
    return contract_from_dict(data, source=source, lines=lines)


def contract_from_dict(
    data: Any, *, source: str = "<contract>", lines: dict[Path_, int] | None = None
) -> Contract:
    """Build a contract from already-parsed data; ``lines`` maps key paths to lines for error messages.

    :raises ContractError: listing every problem, each as ``source:line: key: message, got value``.
    """
    if not isinstance(data, dict):
        problem = "is empty" if data is None else f"is a {type(data).__name__}"
        raise ContractError(
            f"the contract {problem}: expected a mapping with at least 'dataset' and 'columns'", source=source
        )
    try:
        spec = build(ContractFile, data, source=source, lines=lines)
    except ValueError as err:
        raise ContractError(str(err)) from None
    return spec.contract(origin=source)


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
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ContractError("a key must be a plain name", source=source, line=line)
            key = loader.construct_object(key_node)
            if key in out:
                raise ContractError(
                    f"duplicate key {key!r}", source=source, line=line, key=dotted((*path, key))
                )
            out[key] = _build(loader, value_node, (*path, key), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node)
    except yaml.YAMLError as err:
        raise ContractError(
            f"cannot read value: {err}", source=source, line=lines[path], key=dotted(path)
        ) from None
