"""``trainkit contract ...``: infer a draft contract, check a contract file, validate a dataset."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# What `trainkit contract validate` exits with (docs/validation.md has the same table).
VALIDATE_EXIT_CODES = """exit codes:
  0  the data keeps the contract (no check of severity error failed)
  1  the data cannot be read
  2  a bad argument, or a contract that cannot be found, read or compiled
  3  the data breaks the contract (a check of severity error failed)"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``trainkit contract infer | check | validate`` to the ``trainkit`` command."""
    parser = subparsers.add_parser("contract", help="data contracts: infer, check, validate")
    commands = parser.add_subparsers(dest="contract_command", required=True)

    infer = commands.add_parser("infer", help="draft a contract from a trusted CSV/Parquet dataset")
    infer.add_argument("data_uri", help="the dataset: a path, file://, s3://, gs://, abfs:// URI")
    infer.add_argument("-o", "--output", help="where to write the YAML (default: print it)")
    infer.add_argument("--dataset", help="the dataset's name (default: the file's name)")
    infer.add_argument("--owner", help="who owns the data")
    infer.add_argument("--force", action="store_true", help="overwrite an existing output file")
    infer.set_defaults(func=_infer)

    check = commands.add_parser("check", help="parse a contract and compile it to a GX suite")
    check.add_argument("contract", help="contract file (YAML/JSON), GX suite or checkpoint JSON")
    check.set_defaults(func=_check)

    run = commands.add_parser(
        "validate",
        help="validate a dataset against a contract and write the report",
        description="Validate a dataset against a contract; print the summary as JSON.",
        epilog=VALIDATE_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("data_uri")
    run.add_argument("contract")
    run.add_argument("--report", help="report folder (default: none written)")
    run.set_defaults(func=_validate)


def _infer(args: argparse.Namespace) -> int:
    from airflow_trainkit.contracts.engine import load_frame
    from airflow_trainkit.contracts.infer import infer_contract_yaml

    output = Path(args.output) if args.output else None
    if output and output.exists() and not args.force:
        raise ValueError(f"--output {str(output)!r} exists; pass --force to overwrite it")
    dataset = args.dataset or Path(args.data_uri.rstrip("/")).name.split(".")[0] or "dataset"
    try:
        frame = load_frame(args.data_uri)
    except OSError as err:
        print(f"trainkit: {err}", file=sys.stderr)
        return 1
    text = infer_contract_yaml(frame, dataset=dataset, owner=args.owner, source=args.data_uri)
    if output is None:
        print(text, end="")
        return 0
    from airflow_trainkit.storage import write_bytes_atomic

    write_bytes_atomic(str(output), text.encode())
    print(f"wrote {output}: {len(frame.columns)} columns from {len(frame)} rows; review it before use")
    return 0


def _check(args: argparse.Namespace) -> int:
    from airflow_trainkit.contracts.compile import SuiteSource, compile_suite, resolve_contract

    source = resolve_contract(args.contract)
    suite = compile_suite(source)
    name = source.name if isinstance(source, SuiteSource) else source.dataset
    print(f"{args.contract}: contract {name!r} is valid: {len(suite.expectations)} checks")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from airflow_trainkit.contracts.engine import validate

    try:
        outcome = validate(args.data_uri, args.contract, report_uri=args.report)
    except OSError as err:
        print(f"trainkit: {err}", file=sys.stderr)
        return 1
    print(json.dumps(outcome.summary, indent=2, default=str))
    return 0 if outcome.success else 3
