"""Checks of a dataset before and while tokenizing it (the data contract, DESIGN §2).

What the tokenizer cannot encode faithfully is refused with one line naming the file, the
column, how many rows or users and the fix (the validator's own findings and fixes, from
`pragmatiq.data.validate`), never a traceback from deep inside or silently wrong tokens:

- `check_dataset`, up front: both files open as parquet, every contract column is there with a
  type the tokenizer reads, no nulls in `user_id`/`ts`/`as_of`, one profile row per user.
  Cheap: file schemas and parquet statistics (null counts), plus the profiles' user ids.
- `check_contiguous`: each user's events are one block, on the user_id codes the encoder
  computes anyway to cut the file into user-aligned chunks.
- `check_time_order`: time order within each user, per chunk in the encoding workers.
- `check_profiles_cover`: every user with events has a profile row (else a user id written two
  ways, say with a trailing space, would become two users: one history, one profile).
- `check_out_dir`: the token directory must not be (or hold) the dataset.
- `check_cut_coverage`: a label table that cuts histories must name users of the data.

The tokenizer converts a little more than the contract allows, exactly, and keeps accepting it
(`pragmatiq validate` still reports it): timestamps of any unit or timezone, large/view strings,
integer user ids, and `fields`/`attributes` as a struct of strings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data import schema
from pragmatiq.data.validate.dtypes import accepts, is_string_struct
from pragmatiq.data.validate.core import NO_PROFILE, membership_findings
from pragmatiq.data.validate.events import SORT_FIX
from pragmatiq.data.validate.report import ERROR, Finding
from pragmatiq.data.validate.scan import (Tally, column_findings, metadata_null_counts, null_finding,
                                          open_parquet, quote, row_examples, show)
from pragmatiq.data.validate.tables import duplicate_profiles

_FILES = {schema.EVENTS_FILE: (schema.EVENTS, "pragmatiq.data.schema.EVENTS", ("user_id", "ts")),
          schema.PROFILES_FILE: (schema.PROFILES, "pragmatiq.data.schema.PROFILES", ("user_id", "as_of"))}


def warn(message: str) -> None:
    """A warning line on stderr, as tokenize reports [UNK]s."""
    print(f"warning: {message}", file=sys.stderr)


def _plain_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def tokenizer_accepts(actual: pa.DataType, expected: pa.DataType, top: bool = True) -> bool:
    """Whether the tokenizer reads a column of type `actual` where the contract says `expected`
    exactly: the contract's types, plus timestamps of any unit, large/view strings and (top-level
    ids only) integers. Never a dictionary (pandas categorical), a string timestamp or epoch
    numbers (their unit is a guess), nor JSON text for a map."""
    if schema.is_timestamp_us(expected):
        return pa.types.is_timestamp(actual)
    if pa.types.is_string(expected):
        return _plain_string(actual) or (top and pa.types.is_integer(actual))
    if pa.types.is_map(expected):
        return is_string_struct(actual) or (pa.types.is_map(actual) and _plain_string(actual.key_type)
                                            and _plain_string(actual.item_type))
    if pa.types.is_list(expected):
        return pa.types.is_list(actual) and tokenizer_accepts(actual.value_type, expected.value_type, False)
    if pa.types.is_struct(expected):
        return (pa.types.is_struct(actual) and actual.num_fields == expected.num_fields
                and all(actual.field(i).name == expected.field(i).name
                        and tokenizer_accepts(actual.field(i).type, expected.field(i).type, False)
                        for i in range(expected.num_fields)))
    return accepts(actual, expected)


def _nulls(pf: pq.ParquetFile, rel: str, names: list[str]) -> list[Finding]:
    """Null errors for required scalar columns: parquet statistics first; the column is read
    only where they do not say, or to name example rows once nulls are known to be there."""
    known = metadata_null_counts(pf, names)
    todo = [n for n in names if known[n] != 0]
    if not todo:
        return []
    extra = ["user_id"] if "user_id" in pf.schema_arrow.names and "user_id" not in todo else []
    tallies, offset = {n: Tally() for n in todo}, 0
    for batch in pf.iter_batches(batch_size=1 << 17, columns=todo + extra):
        cols = dict(zip(batch.schema.names, batch.columns))
        for name in todo:
            if cols[name].null_count:
                tallies[name].add(cols[name].is_null(), lambda idx: row_examples(offset, idx, cols))
        offset += batch.num_rows
    return [f for n in todo for f in null_finding(rel, n, tallies[n].count, tallies[n].examples)]


def _profile_users(pf: pq.ParquetFile, rel: str) -> tuple[pa.Array, list[Finding]]:
    """The distinct profile user ids (as strings), and the error for users with several rows."""
    ids = pf.read(columns=["user_id"]).column("user_id").combine_chunks()
    if not pa.types.is_string(ids.type):
        ids = pc.cast(ids, pa.string())
    counts = pc.value_counts(ids.drop_null())
    return counts.field("values"), duplicate_profiles(counts, rel)


def check_dataset(data_dir: str | Path) -> pa.Array:
    """Refuse a dataset the tokenizer would misread (ValueError naming every problem found, with
    the fix); warn about empty files. -> the distinct profile user ids (strings)."""
    root = Path(data_dir)
    errors: list[Finding] = []
    profile_users = pa.array([], pa.string())
    for rel, (expected, schema_name, required) in _FILES.items():
        pf, found = open_parquet(root, rel, required=True)
        errors += [f for f in found if f.severity == ERROR and pf is None]  # 0 rows: a warning below
        if pf is None:
            continue
        if pf.metadata.num_rows == 0:
            warn(f"{root / rel} has no rows: users are encoded "
                 + ("from their profiles alone" if rel == schema.EVENTS_FILE else "without profiles"))
        plan, found = column_findings(pf, rel, expected, schema_name, accept=tokenizer_accepts)
        errors += found
        mistyped = {f.column for f in found}
        errors += _nulls(pf, rel, [n for n in required if n in plan and n not in mistyped])
        if rel == schema.PROFILES_FILE and "user_id" in plan and "user_id" not in mistyped:
            profile_users, found = _profile_users(pf, rel)
            errors += found
    if errors:
        lines = "; ".join(f.line(root, severity=False) for f in errors)
        raise ValueError(f"{lines} (`pragmatiq validate {root}` checks the whole data contract)")
    return profile_users


def runs_per_user(codes: np.ndarray, n_users: int) -> np.ndarray:
    """(N,) user codes of the rows, in file order (-1: no user) -> (U,) how many separate blocks
    of rows each user has (1 when its events are contiguous)."""
    if not len(codes):
        return np.zeros(n_users, np.int64)
    heads = codes[np.r_[True, codes[1:] != codes[:-1]]]  # (R,) the user of each run of rows
    return np.bincount(heads[heads >= 0], minlength=n_users)


def check_contiguous(codes: np.ndarray, users: pa.Array, path: str | Path) -> None:
    """Raise when a user's events are not one block: `codes` (N,) index `users` (U,)."""
    runs = runs_per_user(codes, len(users))
    split = np.flatnonzero(runs > 1)
    if not len(split):
        return
    ex = ", ".join(f"{quote(users[int(c)].as_py())} in {int(runs[c])} blocks" for c in split[:3])
    raise ValueError(
        f"{path}[user_id]: the events of {len(split):,} of {len(users):,} users are not contiguous "
        f"(e.g. {ex}), so each would be encoded as several users; the data contract (DESIGN §2) "
        f"wants each user's events in one block, in time order — fix: {SORT_FIX}")


def check_time_order(uid: pa.Array, ts: pa.Array, offset: int, path: str | Path) -> None:
    """Raise when timestamps go backwards within a user: `uid`, `ts` (N,) are rows offset.. of
    the events file (whole users)."""
    n = len(uid)
    if n < 2:
        return
    back = pc.and_(pc.equal(uid.slice(1), uid.slice(0, n - 1)), pc.less(ts.slice(1), ts.slice(0, n - 1)))
    if not pc.any(back).as_py():
        return
    i = pc.indices_nonzero(back)[0].as_py()
    raise ValueError(
        f"{path}[ts]: timestamps go backwards within a user's events (e.g. row {offset + i + 1:,}, "
        f"user_id={quote(uid[i].as_py())}: {show(ts[i + 1])} after {show(ts[i])}); the data contract (DESIGN §2) "
        f"wants each user's events in time order (the most recent ones are kept, times are measured "
        f"to the latest) — fix: {SORT_FIX}")


def check_profiles_cover(event_users: pa.Array, profile_users: pa.Array, data_dir: Path) -> None:
    """Refuse users with events but no profile row, as `validate` does."""
    found = membership_findings(schema.EVENTS_FILE, "user_id", event_users, profile_users, ERROR, *NO_PROFILE)
    if found:
        raise ValueError(f"{found[0].line(data_dir, severity=False)} (`pragmatiq validate {data_dir}` checks the "
                         "whole data contract)")


def check_out_dir(data_dir: Path, out_dir: Path) -> None:
    """Refuse an output directory whose writing would damage the dataset."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output directory {out_dir} is a file; pass a directory for the token shards")
    if out_dir.resolve() == data_dir.resolve():
        raise ValueError(f"output directory {out_dir} is the data directory itself: the token files would replace "
                         "the dataset's manifest.json and mix with its parquet files; write them to a directory of "
                         f"their own, e.g. --out {data_dir.name}-tokens")
    if out_dir.resolve() == (data_dir / schema.LABELS_DIR).resolve():
        raise ValueError(f"output directory {out_dir} is the dataset's label directory: its index.parquet and "
                         "band-*.parquet would be read as label tables; write the tokens to a directory of their "
                         f"own, e.g. --out {data_dir.name}-tokens")
    held = [n for n in (schema.EVENTS_FILE, schema.PROFILES_FILE) if (out_dir / n).exists()]
    if held:
        raise ValueError(f"output directory {out_dir} holds a dataset ({', '.join(held)}): tokenizing into it "
                         "would replace its manifest.json; write the tokens to a directory of their own")


def _users(n: int, one: str, many: str, what: str = "") -> str:
    """`3 users have`, `1 user has`."""
    return f"{n:,} {what}user{'' if n == 1 else 's'} {one if n == 1 else many}"


def check_cut_coverage(cut_map: dict[str, int], cuts, book_users: pa.Array, data_dir: Path, *,
                       quiet: bool = False) -> int:
    """How many users of the book get a cut; refuses a label table that matches none of them
    (every history would be encoded whole) and, unless `quiet`, warns about partial coverage."""
    label = str(cuts) if isinstance(cuts, (str, os.PathLike)) else "the cuts"
    labelled = pa.array(list(cut_map), pa.string())
    if not len(labelled):
        raise ValueError(f"{label} has no rows: no history would be cut at eval_ts")
    in_book = pc.is_in(labelled, value_set=book_users)
    n_cut = int(pc.sum(in_book).as_py() or 0)
    if n_cut == 0:
        ex = ", ".join(quote(u) for u in labelled.slice(0, 3).to_pylist())
        book_ex = ", ".join(quote(u) for u in book_users.slice(0, 3).to_pylist())
        raise ValueError(f"none of the {len(labelled):,} users in {label} (e.g. {ex}) is in {data_dir} (its users "
                         f"are e.g. {book_ex}): no history would be cut at eval_ts; is the label table from "
                         "another dataset, or are its user_ids written differently?")
    uncut = book_users.filter(pc.invert(pc.is_in(book_users, value_set=labelled)))
    missing = labelled.filter(pc.invert(in_book))
    if (len(uncut) or len(missing)) and not quiet:
        parts = [f"histories cut at eval_ts for {n_cut:,} of the {len(book_users):,} users of {data_dir}"]
        if len(uncut):
            ex = ", ".join(quote(u) for u in uncut.slice(0, 3).to_pylist())
            parts.append(f"{_users(len(uncut), 'has', 'have')} no row there and keep their whole history "
                         f"(e.g. {ex})")
        if len(missing):
            ex = ", ".join(quote(u) for u in missing.slice(0, 3).to_pylist())
            parts.append(f"{_users(len(missing), 'is', 'are', 'labelled ')} not in the data (e.g. {ex})")
        warn(f"{label}: " + "; ".join(parts))
    return n_cut
