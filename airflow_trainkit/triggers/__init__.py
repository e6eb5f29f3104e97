"""airflow-trainkit triggers."""
