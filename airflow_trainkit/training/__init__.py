"""The training core: one job spec, one backend interface, backends registered by name.

Light to import: nothing here imports Airflow's scheduling or a cloud SDK at module level.
"""

from airflow_trainkit.training.spec import Accelerator, TrainingJobSpec

__all__ = ["Accelerator", "TrainingJobSpec"]
