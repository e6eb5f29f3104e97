"""Apache Airflow provider for ML training pipelines."""
