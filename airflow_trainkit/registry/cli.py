"""``trainkit registry ...``: roll back a champion, show a model's aliases."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("registry", help="MLflow model registry: aliases and rollback")
    commands = parser.add_subparsers(dest="registry_command", required=True)
    rollback = commands.add_parser("rollback", help="point @champion back at @previous-champion")
    rollback.add_argument("model_name")
    rollback.add_argument("--conn-id", default=None, help="trainkit_mlflow connection (default: embedded)")
    rollback.set_defaults(func=_rollback)
    aliases = commands.add_parser("aliases", help="print the model's aliases and their versions")
    aliases.add_argument("model_name")
    aliases.add_argument("--conn-id", default=None)
    aliases.set_defaults(func=_aliases)


def _rollback(args: argparse.Namespace) -> int:
    from airflow_trainkit.operators.registry import rollback_champion

    print(json.dumps(rollback_champion(args.model_name, conn_id=args.conn_id), indent=2))
    return 0


def _aliases(args: argparse.Namespace) -> int:
    from airflow_trainkit.hooks.mlflow import MlflowHook
    from airflow_trainkit.registry.gate import require_model

    client = MlflowHook(conn_id=args.conn_id).get_client()
    require_model(client, args.model_name)
    print(json.dumps(client.get_registered_model(args.model_name).aliases, indent=2, sort_keys=True))
    return 0
