"""Compute backends, one module each; see ``airflow_trainkit.training.backend``."""
