"""boto3 clients and the one error test every delete needs.

boto3 is optional (the `sagemaker` extra): it is imported here, lazily, through
`pragmatiq._optional.require`, so `import pragmatiq.serve.sagemaker` never needs it.
"""

from __future__ import annotations

from typing import Any

from pragmatiq._optional import require


def client(service: str, region: str | None = None, *, session: Any = None) -> Any:
    """A boto3 client for `service` ("s3", "sagemaker", "sagemaker-runtime").

    `session` is a `boto3.Session` when the caller wants a profile or explicit credentials;
    otherwise the default credential chain and `AWS_DEFAULT_REGION` apply.
    """
    boto3 = require("boto3")
    if session is not None:
        return session.client(service, region_name=region)
    return boto3.client(service, region_name=region)


def is_not_found(exc: BaseException) -> bool:
    """True for the "it does not exist" errors of SageMaker and S3 deletes/describes.

    SageMaker answers a missing endpoint, endpoint config or model with a
    `ValidationException` whose message starts "Could not find"; S3 uses `NoSuchKey` /
    `NoSuchBucket` / 404.
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    err = response.get("Error", {})
    code, msg = str(err.get("Code", "")), str(err.get("Message", ""))
    if code in ("ResourceNotFound", "NoSuchKey", "NoSuchBucket", "404"):
        return True
    return code == "ValidationException" and "could not find" in msg.lower()


def client_error() -> type[Exception]:
    """botocore's `ClientError` class (imported lazily)."""
    require("botocore")
    from botocore.exceptions import ClientError

    return ClientError
