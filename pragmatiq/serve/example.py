"""The tutorial's request: one user, one card payment, as the exact KServe v2 body it sends to
`pragmatiq_embedder` (locally over HTTP, or through SageMaker's /invocations)."""

from __future__ import annotations

import json

TUTORIAL_BODY = (
    '{"inputs":[{"name":"records_json","shape":[1],"datatype":"BYTES","data":["[{\\"user_id\\":\\"u1\\",'
    '\\"events\\":[{\\"ts\\":1718200000000000,\\"source\\":\\"transaction\\",\\"fields\\":{\\"amount\\":'
    '\\"42.50\\",\\"merchant\\":\\"TESCO\\"}}],\\"attributes\\":{\\"country\\":\\"GB\\"},\\"lifelong\\":[]}]"]}]}')


def tutorial_records() -> list[dict]:
    """The records inside TUTORIAL_BODY."""
    return json.loads(json.loads(TUTORIAL_BODY)["inputs"][0]["data"][0])


def request_body(records: list[dict]) -> str:
    """A request body of the same shape for any records."""
    return json.dumps({"inputs": [{"name": "records_json", "shape": [1], "datatype": "BYTES",
                                   "data": [json.dumps(records)]}]})
