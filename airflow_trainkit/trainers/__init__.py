"""airflow-trainkit trainers."""
