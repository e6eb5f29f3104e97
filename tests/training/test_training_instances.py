from __future__ import annotations

import pytest

from airflow_trainkit.training.instances import (
    instance_for,
    instance_table,
    instances_for,
    lookup_instance,
    parse_instance_table,
    table_providers,
)
from airflow_trainkit.training.spec import KNOWN_GPUS, Accelerator


@pytest.mark.parametrize(
    ("provider", "accelerator", "instance_type"),
    [
        ("sagemaker", "T4:1", "ml.g4dn.xlarge"),
        ("sagemaker", "A10G:1", "ml.g5.xlarge"),
        ("sagemaker", "L4:1", "ml.g6.xlarge"),
        ("sagemaker", "V100:1", "ml.p3.2xlarge"),
        ("sagemaker", "A100:8", "ml.p4d.24xlarge"),
        ("azure_ml", "T4:1", "Standard_NC4as_T4_v3"),
        ("azure_ml", "V100:1", "Standard_NC6s_v3"),
        ("azure_ml", "A100:8", "Standard_ND96asr_v4"),
        ("vertex_ai", "L4:1", "g2-standard-8"),
        ("vertex_ai", "A100:8", "a2-highgpu-8g"),
    ],
)
def test_known_instances(provider: str, accelerator: str, instance_type: str) -> None:
    choice = instance_for(provider, accelerator)
    assert choice.instance_type == instance_type
    assert choice.provider == provider
    assert choice.accelerator == accelerator


def test_vertex_names_machine_and_accelerator() -> None:
    choice = instance_for("vertex_ai", Accelerator("T4", 1))
    assert (choice.instance_type, choice.accelerator_type, choice.accelerator_count) == (
        "n1-standard-8",
        "NVIDIA_TESLA_T4",
        1,
    )
    assert instance_for("vertex_ai", "A100:8").accelerator_type == "NVIDIA_TESLA_A100"


def test_any_gpu_takes_first_row_of_that_count() -> None:
    assert instance_for("sagemaker", "gpu:1").instance_type == "ml.g4dn.xlarge"
    models = {row.gpu_model for row in instances_for("sagemaker", "gpu:1")}
    assert {"T4", "A10G", "L4", "V100"} <= models


def test_missing_gpu_names_accelerator_provider_and_offer() -> None:
    with pytest.raises(ValueError, match=r"no azure_ml instance with A10G:1; azure_ml offers no A10G"):
        instance_for("azure_ml", "A10G:1")
    with pytest.raises(ValueError, match=r"no sagemaker instance with T4:2; sagemaker offers T4:1, T4:4"):
        instance_for("sagemaker", "T4:2")


def test_unknown_provider_and_no_gpu() -> None:
    with pytest.raises(ValueError, match=r"'onprem' has no instance table"):
        instance_for("onprem", "T4:1")
    with pytest.raises(ValueError, match="asks for no GPU"):
        instance_for("sagemaker", "cpu")
    with pytest.raises(ValueError, match="unknown accelerator 'X9:1'"):
        instance_for("sagemaker", "X9:1")


def test_table_is_well_formed() -> None:
    rows = instance_table()
    assert set(table_providers()) == {"sagemaker", "vertex_ai", "azure_ml"}
    assert all(row.gpu_model in KNOWN_GPUS for row in rows)
    keys = [(r.provider, r.gpu_model, r.gpu_count) for r in rows]
    assert len(keys) == len(set(keys)), "one instance per provider and GPU request"
    for row in rows:
        if row.provider == "vertex_ai":
            assert row.accelerator_type and row.accelerator_count == row.gpu_count
        else:
            assert row.accelerator_type is None
    assert lookup_instance("sagemaker", "ml.p3.2xlarge") == instance_for("sagemaker", "V100:1")
    assert lookup_instance("sagemaker", "ml.nope") is None


def test_sagemaker_rows_are_valid_training_instance_types() -> None:
    botocore_session = pytest.importorskip("botocore.session")
    model = botocore_session.get_session().get_service_model("sagemaker")
    allowed = set(model.shape_for("TrainingInstanceType").enum)
    for row in instance_table():
        if row.provider == "sagemaker":
            assert row.instance_type in allowed, row


def test_bad_table_names_row_and_column() -> None:
    header = "provider,gpu_model,gpu_count,instance_type,accelerator_type,accelerator_count\n"
    with pytest.raises(ValueError, match=r"t\.csv: row 2, column gpu_count: not a whole number: 'one'"):
        parse_instance_table(header + "sagemaker,T4,one,ml.g4dn.xlarge,,\n", source="t.csv")
    with pytest.raises(ValueError, match=r"t\.csv: row 2, column gpu_model: unknown GPU 'X1'"):
        parse_instance_table(header + "sagemaker,X1,1,ml.g4dn.xlarge,,\n", source="t.csv")
    with pytest.raises(ValueError, match=r"t\.csv: missing column\(s\) accelerator_count"):
        parse_instance_table("provider,gpu_model,gpu_count,instance_type,accelerator_type\n", source="t.csv")
