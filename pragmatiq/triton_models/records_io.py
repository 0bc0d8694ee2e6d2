"""Request bodies of the serving path: the `records_json` tensor -> a list of user records.

Pure functions shared by every python model, so they are tested without a server. Errors are
`RecordError`s whose message names the request part and what was expected.
"""

from __future__ import annotations

import json

import numpy as np

from pragmatiq.tokenizer.records import RecordError

DEFAULT_MAX_REQUEST_BYTES = 32 * 2**20
DEFAULT_MAX_USERS = 4096


def parse_records_json(tensor: np.ndarray, *, max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                       max_users: int = DEFAULT_MAX_USERS) -> list:
    """`records_json` BYTES (k,) -> records; each element is one JSON array of user records.

    Several elements are concatenated in order; an empty request is an error, as is one larger
    than `max_bytes` or holding more than `max_users` records."""
    flat = np.asarray(tensor, dtype=np.object_).reshape(-1)
    if flat.shape[0] == 0:
        raise RecordError("records_json: empty tensor; send one JSON array of user records")
    size = sum(len(x) for x in flat)
    if size > max_bytes:
        raise RecordError(f"records_json: {size:,} bytes is over this model's limit of {max_bytes:,} bytes;"
                          " split the users over several requests")
    records: list = []
    for k, raw in enumerate(flat):
        where = "records_json" if flat.shape[0] == 1 else f"records_json[{k}]"
        try:
            value = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(value, list):
            raise RecordError(f"{where}: expected a JSON array of user records, got {type(value).__name__}")
        records.extend(value)
    if not records:
        raise RecordError("records_json: the array holds no user records")
    if len(records) > max_users:
        raise RecordError(f"records_json: {len(records)} users is over this model's limit of {max_users};"
                          " split them over several requests")
    return records
