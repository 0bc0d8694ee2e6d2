"""The `records_json` request tensor -> records, with errors that name what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pragmatiq.tokenizer.records import RecordError
from pragmatiq.triton_models.records_io import parse_records_json

USER = {"user_id": "u1", "events": [{"ts": 1718200000000000, "source": "transaction",
                                     "fields": {"amount": "42.50"}}], "attributes": {}, "lifelong": []}


def _tensor(*texts) -> np.ndarray:
    return np.array([t.encode() if isinstance(t, str) else t for t in texts], dtype=np.object_)


def test_one_array_and_several_elements_concatenate_in_order():
    a, b = dict(USER, user_id="a"), dict(USER, user_id="b")
    assert [r["user_id"] for r in parse_records_json(_tensor(json.dumps([a, b])))] == ["a", "b"]
    assert [r["user_id"] for r in parse_records_json(_tensor(json.dumps([b]), json.dumps([a])))] == ["b", "a"]
    assert parse_records_json(np.array([[json.dumps([a])]], dtype=np.object_))[0]["user_id"] == "a"


@pytest.mark.parametrize("tensor, message", [
    (_tensor("{not json"), "records_json: not valid JSON"),
    (_tensor(b"\xff\xfe"), "records_json: not valid JSON"),
    (_tensor(json.dumps(USER)), "expected a JSON array of user records, got dict"),
    (_tensor("[]"), "holds no user records"),
    (np.array([], dtype=np.object_), "empty tensor"),
    (_tensor("[]", "42"), r"records_json\[1\]: expected a JSON array of user records, got int"),
])
def test_malformed_requests_are_named(tensor, message):
    with pytest.raises(RecordError, match=message):
        parse_records_json(tensor)


def test_limits_on_bytes_and_users():
    body = json.dumps([dict(USER, user_id=str(i)) for i in range(5)])
    with pytest.raises(RecordError, match="over this model's limit of 100 bytes"):
        parse_records_json(_tensor(body), max_bytes=100)
    with pytest.raises(RecordError, match="5 users is over this model's limit of 4"):
        parse_records_json(_tensor(body), max_users=4)
    assert len(parse_records_json(_tensor(body), max_users=5)) == 5
