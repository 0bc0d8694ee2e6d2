"""The SageMaker tutorial's notebook steps, run as a script (deploy/sagemaker/notebook.py)
with every S3 and SageMaker call pointed at moto.

AWS is SIMULATED here, end to end: moto accepts the training job without running it, the
endpoint goes InService without a container, and the invoke-endpoint answer is a realistic
KServe v2 body queued through moto's endpoint-results API (moto does not run models). The
real Triton SageMaker frontend is exercised by the serving tests, not here.
Instance types are ml.g4dn.xlarge because moto's dated list rejects ml.g5.* (the tutorial's).
"""

from __future__ import annotations

import io
import json
import runpy
import tarfile
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")
requests = pytest.importorskip("requests")

REGION = "us-east-1"
BUCKET = "your-pragmatiq-bucket"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "sagemaker" / "notebook.py"


def _fake_archive(path: Path) -> Path:
    """An archive in the single-model layout (model dirs at the root, no root config.pbtxt).

    Its contents do not matter to moto; the real archive comes from `pragmatiq-export
    --target sagemaker` and is tested against the real Triton frontend elsewhere.
    """
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"pragmatiq_embedder/config.pbtxt": b'name: "pragmatiq_embedder"\n',
                           "pragmatiq_embedder/1/.keep": b""}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_tutorial_notebook_against_moto(monkeypatch, tmp_path, capsys):
    for k, v in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    notebook = runpy.run_path(str(SCRIPT))
    archive = _fake_archive(tmp_path / "model.tar.gz")
    dim = 8
    response = {
        "model_name": "pragmatiq_embedder", "model_version": "1",
        "outputs": [
            {"name": "embeddings", "datatype": "FP32", "shape": [1, dim],
             "data": [0.125 * i for i in range(dim)]},
            {"name": "user_ids", "datatype": "BYTES", "shape": [1], "data": ["u1"]},
        ],
    }
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)  # aws s3 mb s3://YOUR-pragmatiq-bucket
        requests.post(  # moto's hook for what invoke-endpoint returns
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={"region": REGION, "results": [{
                "Body": json.dumps(response), "ContentType": "application/json",
                "InvokedProductionVariant": "main", "CustomAttributes": "",
            }]},
        ).raise_for_status()

        summary = notebook["main"]([
            "--bucket", BUCKET, "--role", ROLE,
            "--train-image",
            "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.4.0-gpu-py311",
            "--serve-image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/pragmatiq-triton:latest",
            "--archive", str(archive), "--data", str(tmp_path / "data"), "--n-users", "20",
            "--train-instance", "ml.g4dn.xlarge", "--serve-instance", "ml.g4dn.xlarge",
            "--poll-s", "0", "--delete-s3",
        ])

        sm = boto3.client("sagemaker", region_name=REGION)
        job = sm.describe_training_job(TrainingJobName="pragmatiq-pretrain")
        assert job["EnableManagedSpotTraining"] is True
        assert job["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/checkpoints/pragmatiq-pretrain"
        assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
        assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == \
            f"s3://{BUCKET}/data"
        # everything the tutorial created is gone again
        assert sm.list_endpoints()["Endpoints"] == []
        assert sm.list_endpoint_configs()["EndpointConfigs"] == []
        assert sm.list_models()["Models"] == []
        left = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert left == []

    assert summary["data_uri"] == f"s3://{BUCKET}/data"
    assert summary["model_data"] == f"s3://{BUCKET}/runs/pragmatiq-pretrain/output/model.tar.gz"
    assert summary["archive_uri"] == f"s3://{BUCKET}/triton/model.tar.gz"
    assert summary["status"] == "InService"
    assert summary["user_ids"] == ["u1"] and summary["shape"] == [1, dim]
    assert summary["deleted"]["endpoint"] == ["pragmatiq-embedder"]
    assert summary["deleted"]["model"] == ["pragmatiq-embedder"]
    assert json.loads(capsys.readouterr().out)["shape"] == [1, dim]
