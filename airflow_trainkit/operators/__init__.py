"""airflow-trainkit operators."""
