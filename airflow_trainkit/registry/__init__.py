"""The MLflow registry core: registration with lineage, the promotion gate, rollback."""
