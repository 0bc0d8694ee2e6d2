"""Shared fixtures: a small synthetic book and its token directory, built once per session."""

import datetime as dt

import pyarrow.parquet as pq
import pytest

from pragmatiq import api


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    api.synthesize({"n_users": 200, "seed": 3}, out=out, n_workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tok(book, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    api.tokenize(book, out, n_workers=1, progress=False)
    return out


def _us(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def records_of(book, users=None):
    """The book's users as serving records (the tutorial's JSON shape)."""
    events = pq.read_table(book / "events.parquet").to_pylist()
    profiles = {r["user_id"]: r for r in pq.read_table(book / "profiles.parquet").to_pylist()}
    by_user: dict = {}
    for e in events:
        by_user.setdefault(e["user_id"], []).append(
            {"ts": _us(e["ts"]), "source": e["source"], "fields": dict(e["fields"])})
    users = users if users is not None else list(profiles)
    return [
        {
            "user_id": u,
            "events": by_user.get(u, []),
            "attributes": dict(profiles[u]["attributes"]),
            "lifelong": [{"key": m["key"], "ts": _us(m["ts"])} for m in profiles[u]["lifelong"]],
            "as_of": _us(profiles[u]["as_of"]),
        }
        for u in users
    ]
