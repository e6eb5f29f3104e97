"""``trainkit registry ...``: roll back a champion, show a model's aliases."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

CONNECTION_HELP = "trainkit_mlflow connection (default: trainkit_mlflow_default, else the embedded registry)"


class _OldConnIdFlag(argparse.Action):
    """``--conn-id``, the old name of ``--mlflow-conn-id``: still works for one release, with a note."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any = None) -> None:
        print("trainkit: --conn-id is deprecated; use --mlflow-conn-id", file=sys.stderr)
        namespace.mlflow_conn_id = values


def register(subparsers: Any) -> None:
    """Add ``trainkit registry rollback`` and ``trainkit registry aliases``."""
    parser = subparsers.add_parser("registry", help="MLflow model registry: aliases and rollback")
    commands = parser.add_subparsers(dest="registry_command", required=True)
    rollback = commands.add_parser("rollback", help="point @champion back at @previous-champion")
    aliases = commands.add_parser("aliases", help="print the model's aliases and their versions")
    for command, func in ((rollback, _rollback), (aliases, _aliases)):
        command.add_argument("model_name")
        command.add_argument("--mlflow-conn-id", default=None, help=CONNECTION_HELP)
        command.add_argument("--conn-id", action=_OldConnIdFlag, help=argparse.SUPPRESS)
        command.set_defaults(func=func)


def _rollback(args: argparse.Namespace) -> int:
    from airflow_trainkit.registry.promotion import rollback_champion

    print(json.dumps(rollback_champion(args.model_name, mlflow_conn_id=args.mlflow_conn_id), indent=2))
    return 0


def _aliases(args: argparse.Namespace) -> int:
    from airflow_trainkit.hooks.mlflow import MlflowHook
    from airflow_trainkit.registry.gate import require_model

    client = MlflowHook(conn_id=args.mlflow_conn_id).get_client()
    require_model(client, args.model_name)
    print(json.dumps(client.get_registered_model(args.model_name).aliases, indent=2, sort_keys=True))
    return 0
