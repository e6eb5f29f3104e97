"""``trainkit``: the command line. Each area adds its own sub-commands from its own module.

A module listed in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds a sub-parser
whose ``func`` default takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = [
    "airflow_trainkit.contracts.cli",
    "airflow_trainkit.demo.cli",
    "airflow_trainkit.local.cli",
    "airflow_trainkit.costs.cli",
    "airflow_trainkit.registry.cli",
]


def build_parser() -> argparse.ArgumentParser:
    """The ``trainkit`` parser, with the sub-commands of every module in ``COMMAND_MODULES``."""
    parser = argparse.ArgumentParser(prog="trainkit", description="airflow-trainkit command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``trainkit`` command and return its exit code; a ``ValueError`` is printed, exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"trainkit: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`trainkit ... | head`): stop quietly. Python would report the pipe
        # again when it flushes stdout at exit, so point stdout at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
