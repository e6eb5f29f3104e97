"""airflow-trainkit trainers.

``BUILTIN_TRAINER_FILES`` is what the built-in trainer imports of trainkit, relative to the package:
the backends whose hosts have neither Airflow nor trainkit (SageMaker, Vertex-style containers, SSH
GPU hosts, Ray clusters) ship these files with each job. A test runs the shipped set with Airflow
blocked, so a missing module fails it.
"""

BUILTIN_TRAINER_FILES = (
    "__init__.py",
    "storage.py",
    "trainers/__init__.py",
    "trainers/contract.py",
    "trainers/xgboost.py",
    "trainers/xgboost_booster.py",
    "trainers/xgboost_config.py",
    "trainers/xgboost_data.py",
)
