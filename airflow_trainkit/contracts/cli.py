"""``trainkit contract ...``: infer a draft contract, check a contract file, validate a dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
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

    run = commands.add_parser("validate", help="validate a dataset against a contract and write the report")
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
