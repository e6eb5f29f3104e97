"""airflow-trainkit hooks."""
