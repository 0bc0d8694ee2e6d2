"""SageMaker helpers (boto3, the `sagemaker` extra): S3 uploads, training jobs, real-time and
multi-model endpoints serving a pragmatiq Triton archive, invocation, cleanup.

boto3 is imported lazily, so importing this package works without it; each call that needs
AWS raises `MissingExtraError` naming `pip install "pragmatiq[sagemaker]"` when it is absent.
"""

from pragmatiq.serve.sagemaker.endpoints import (
    Deployment,
    add_model,
    create_endpoint,
    create_endpoint_config,
    create_model,
    delete_deployment,
    deploy,
    deploy_multi_model,
    model_environment,
    shm_bytes_for,
    wait_endpoint,
)
from pragmatiq.serve.sagemaker.invoke import (
    Embeddings,
    binary_body,
    invoke,
    invoke_request,
    json_body,
    parse_response,
)
from pragmatiq.serve.sagemaker.s3 import delete_prefix, parse_s3_uri, upload_directory, upload_file
from pragmatiq.serve.sagemaker.training import (
    create_training_job,
    describe_training_job,
    model_artifact,
    pack_source_dir,
    training_job_request,
    wait_training_job,
)

__all__ = [
    "Deployment", "Embeddings", "add_model", "binary_body", "create_endpoint",
    "create_endpoint_config", "create_model", "create_training_job", "delete_deployment",
    "delete_prefix", "deploy", "deploy_multi_model", "describe_training_job", "invoke",
    "invoke_request", "json_body", "model_artifact", "model_environment", "pack_source_dir",
    "parse_response", "parse_s3_uri", "shm_bytes_for", "training_job_request",
    "upload_directory", "upload_file", "wait_endpoint", "wait_training_job",
]
