"""Static provider metadata: Airflow reads it through the ``apache_airflow_provider`` entry point.

A literal dict with no imports, so ``airflow providers list`` costs nothing.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata: connection types, hooks, operators, sensors, triggers and extra links."""
    return {
        "package-name": "airflow-trainkit",
        "name": "Trainkit",
        "description": "ML training pipelines: data contracts, one training spec for SageMaker, Vertex AI, "
        "Azure ML and on-prem GPUs, MLflow promotion, drift checks and training cost comparison.",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "Trainkit training",
                "external-doc-url": "https://github.com/airflow-trainkit/airflow-trainkit/blob/main/docs/training-spec.md",
                "tags": ["software"],
            },
            {
                "integration-name": "Trainkit data validation",
                "external-doc-url": "https://github.com/airflow-trainkit/airflow-trainkit/blob/main/docs/validation.md",
                "tags": ["software"],
            },
            {
                "integration-name": "Trainkit model registry",
                "external-doc-url": "https://github.com/airflow-trainkit/airflow-trainkit/blob/main/docs/registry.md",
                "tags": ["software"],
            },
            {
                "integration-name": "Trainkit drift",
                "external-doc-url": "https://github.com/airflow-trainkit/airflow-trainkit/blob/main/docs/drift.md",
                "tags": ["software"],
            },
            {
                "integration-name": "Trainkit costs",
                "external-doc-url": "https://github.com/airflow-trainkit/airflow-trainkit/blob/main/docs/costs.md",
                "tags": ["software"],
            },
            {
                "integration-name": "Trainkit tuning",
                "external-doc-url": "https://github.com/airflow-trainkit/airflow-trainkit/blob/main/docs/tuning.md",
                "tags": ["software"],
            },
        ],
        "operators": [
            {
                "integration-name": "Trainkit training",
                "python-modules": ["airflow_trainkit.operators.training"],
            },
            {
                "integration-name": "Trainkit data validation",
                "python-modules": ["airflow_trainkit.operators.validation"],
            },
            {
                "integration-name": "Trainkit model registry",
                "python-modules": ["airflow_trainkit.operators.registry"],
            },
            {
                "integration-name": "Trainkit drift",
                "python-modules": ["airflow_trainkit.operators.drift"],
            },
            {
                "integration-name": "Trainkit costs",
                "python-modules": ["airflow_trainkit.operators.costs"],
            },
            {
                "integration-name": "Trainkit tuning",
                "python-modules": ["airflow_trainkit.operators.tuning"],
            },
        ],
        "sensors": [
            {
                "integration-name": "Trainkit training",
                "python-modules": ["airflow_trainkit.sensors.training"],
            },
            {
                "integration-name": "Trainkit model registry",
                "python-modules": ["airflow_trainkit.sensors.registry"],
            },
        ],
        "triggers": [
            {
                "integration-name": "Trainkit training",
                "python-modules": ["airflow_trainkit.triggers.training"],
            },
            {
                "integration-name": "Trainkit model registry",
                "python-modules": ["airflow_trainkit.triggers.registry"],
            },
            {
                "integration-name": "Trainkit tuning",
                "python-modules": ["airflow_trainkit.triggers.tuning"],
            },
        ],
        "hooks": [
            {
                "integration-name": "Trainkit training",
                "python-modules": ["airflow_trainkit.hooks.onprem", "airflow_trainkit.hooks.ray"],
            },
            {
                "integration-name": "Trainkit model registry",
                "python-modules": ["airflow_trainkit.hooks.mlflow"],
            },
        ],
        "connection-types": [
            {
                "connection-type": "trainkit_onprem",
                "hook-class-name": "airflow_trainkit.hooks.onprem.OnPremGpuHook",
            },
            {
                "connection-type": "trainkit_ray",
                "hook-class-name": "airflow_trainkit.hooks.ray.RayClusterHook",
            },
            {
                "connection-type": "trainkit_mlflow",
                "hook-class-name": "airflow_trainkit.hooks.mlflow.MlflowHook",
            },
        ],
        "extra-links": ["airflow_trainkit.links.training.TrainingJobConsoleLink"],
    }
