"""airflow-trainkit links."""
