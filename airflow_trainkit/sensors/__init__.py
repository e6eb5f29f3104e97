"""airflow-trainkit sensors."""
