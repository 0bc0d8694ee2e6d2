"""Encode users into token rows: the one implementation behind shards and the records path.

Vectorized over Arrow/NumPy columns: the work loops over *keys* (a few dozen), never over
events or fields. Shapes: U users, E events, F fields, T event tokens, P profile tokens.

A row (one per user) holds list columns: event tokens (key_ids, value_ids, positions), per
event (n_tokens, tau, hour, dow, dom) and profile tokens (ids, positions, tau); see ROW_SCHEMA.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.tokenizer.config import TokenizerConfig
from pragmatiq.tokenizer.fields import flatten_kv
from pragmatiq.tokenizer.segments import ranks, starts
from pragmatiq.tokenizer.numeric import bucketize, parse_numbers
from pragmatiq.tokenizer.text import encode_pieces
from pragmatiq.tokenizer.timefeat import calendar, tau
from pragmatiq.tokenizer.vocab import (LIFELONG_PREFIX, PRESENT, PROFILE_PREFIX, SOURCE_KEY, UNK,
                                       Vocab)

NO_CUT = np.iinfo(np.int64).max

_L = pa.list_
ROW_SCHEMA = pa.schema([
    ("user_id", pa.string()),
    ("n_events", pa.int32()),
    ("n_tokens", pa.int32()),
    ("n_profile", pa.int32()),
    ("cost", pa.int32()),
    ("key_ids", _L(pa.int32())),
    ("value_ids", _L(pa.int32())),
    ("positions", _L(pa.int8())),
    ("event_ntok", _L(pa.int8())),
    ("event_tau", _L(pa.float32())),
    ("event_hour", _L(pa.int8())),
    ("event_dow", _L(pa.int8())),
    ("event_dom", _L(pa.int8())),
    ("profile_key_ids", _L(pa.int32())),
    ("profile_value_ids", _L(pa.int32())),
    ("profile_positions", _L(pa.int8())),
    ("profile_tau", _L(pa.float32())),
])
TEXT_FIELDS = [("text_index", _L(pa.int32())), ("texts", _L(pa.string()))]


def row_schema(nemotron: bool) -> pa.Schema:
    return pa.schema(list(ROW_SCHEMA) + (TEXT_FIELDS if nemotron else []))


@dataclass
class UnkCounter:
    """[UNK] cases seen while encoding: (what, key) -> count, plus a few examples."""

    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def add(self, what: str, key: str, n: int, example: str | None = None) -> None:
        if n:
            self.counts[(what, key)] += int(n)
            if example is not None:
                self.examples.setdefault((what, key), example)

    def merge(self, other: "UnkCounter") -> None:
        self.counts.update(other.counts)
        for k, v in other.examples.items():
            self.examples.setdefault(k, v)

    def summary(self) -> dict[str, int]:
        return {f"{what}:{key}": n for (what, key), n in sorted(self.counts.items())}


@dataclass
class Tokens:
    """Encoded entries (fields or profile items) in entry order."""

    key_id: np.ndarray  # (F,) int64
    n_tok: np.ndarray  # (F,) int64 tokens per entry (>= 1)
    value_ids: np.ndarray  # (sum n_tok,) int64
    positions: np.ndarray  # (sum n_tok,) int64 piece index within the entry
    texts: np.ndarray | None = None  # (F,) object: raw string of Nemotron sentinels, else None


def encode_values(keys: pa.Array, values: pa.Array, vocab: Vocab, config: TokenizerConfig,
                  unk: UnkCounter) -> Tokens:
    """F (key, value) string pairs -> tokens, one vectorized pass per distinct key."""
    f = len(keys)
    names = np.asarray(vocab.key_names, dtype=object)
    kidx = pc.index_in(keys, value_set=pa.array(vocab.key_names, pa.string()))
    kidx = pc.fill_null(kidx, -1).to_numpy(zero_copy_only=False).astype(np.int64)  # (F,)
    key_id = np.full(f, UNK, np.int64)
    n_tok = np.ones(f, np.int64)
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (entries, vids, pos)
    texts = np.full(f, None, dtype=object) if config.nemotron else None
    unknown = np.flatnonzero(kidx < 0)
    if len(unknown):
        for k, c in zip(*np.unique(keys.take(pa.array(unknown)).to_numpy(zero_copy_only=False),
                                   return_counts=True)):
            unk.add("unknown-key", str(k), c)
        groups.append((unknown, np.full(len(unknown), UNK, np.int64), np.zeros(len(unknown), np.int64)))
    order = np.argsort(kidx, kind="stable")
    sorted_k = kidx[order]
    bounds = np.flatnonzero(np.r_[True, sorted_k[1:] != sorted_k[:-1], True]) if f else np.zeros(1, int)
    for a, b in zip(bounds[:-1], bounds[1:]):
        k = sorted_k[a]
        if k < 0:
            continue
        idx = order[a:b]
        spec = vocab.keys[names[k]]
        key_id[idx] = spec.key_id
        vals = values.take(pa.array(idx))
        if spec.kind == "numeric":
            x, ok = parse_numbers(vals)
            vids = np.where(ok, spec.offset + bucketize(x, vocab.edges[spec.name]), UNK)
            unk.add("bad-number", spec.name, int((~ok).sum()))
            groups.append((idx, vids, np.zeros(len(idx), np.int64)))
        elif spec.kind == "categorical":
            j = pc.index_in(vals, value_set=pa.array(spec.values or [], pa.string()))
            jn = pc.fill_null(j, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            vids = np.where(jn >= 0, spec.offset + jn, UNK)
            miss = np.flatnonzero(jn < 0)
            if len(miss):
                unk.add("unseen-value", spec.name, len(miss), str(vals[int(miss[0])]))
            groups.append((idx, vids, np.zeros(len(idx), np.int64)))
        elif config.nemotron:
            strings = pc.fill_null(vals, "").to_numpy(zero_copy_only=False)
            empty = strings == ""
            vids = np.where(empty, UNK, spec.offset)
            texts[idx[~empty]] = strings[~empty]
            groups.append((idx, vids, np.zeros(len(idx), np.int64)))
        else:
            n, ids = encode_pieces(vocab.bpe, vals, config.max_text_pieces)
            unk.add("empty-text", spec.name, int((n == 0).sum()))
            n_tok[idx] = np.maximum(n, 1)
            vids = np.full(int(n_tok[idx].sum()), UNK, np.int64)
            pos = np.zeros(len(vids), np.int64)
            first = starts(n_tok[idx])
            nz = n > 0
            within = ranks(n)
            slot = np.repeat(first[nz], n[nz]) + within
            vids[slot] = vocab.bpe_offset + ids
            pos[slot] = within
            groups.append((idx, vids, pos))
    # scatter each group's tokens into entry order
    first = starts(n_tok)
    value_ids = np.zeros(int(n_tok.sum()), np.int64)
    positions = np.zeros_like(value_ids)
    for idx, vids, pos in groups:
        n = n_tok[idx]
        within = ranks(n)
        slot = np.repeat(first[idx], n) + within
        value_ids[slot] = vids
        positions[slot] = pos
    return Tokens(key_id, n_tok, value_ids, positions, texts)


def _concat(a: Tokens, b: Tokens) -> Tokens:
    texts = None
    if a.texts is not None or b.texts is not None:
        ta = a.texts if a.texts is not None else np.full(len(a.key_id), None, object)
        tb = b.texts if b.texts is not None else np.full(len(b.key_id), None, object)
        texts = np.concatenate([ta, tb])
    return Tokens(np.concatenate([a.key_id, b.key_id]), np.concatenate([a.n_tok, b.n_tok]),
                  np.concatenate([a.value_ids, b.value_ids]),
                  np.concatenate([a.positions, b.positions]), texts)


def _reorder(t: Tokens, perm: np.ndarray) -> tuple[Tokens, np.ndarray]:
    """Entries permuted by `perm`; also returns the token gather index."""
    first = starts(t.n_tok)
    n = t.n_tok[perm]
    within = ranks(n)
    gather = np.repeat(first[perm], n) + within
    texts = t.texts[perm] if t.texts is not None else None
    return Tokens(t.key_id[perm], n, t.value_ids[gather], t.positions[gather], texts), gather


def _segment_rank(seg: np.ndarray, n_seg: int) -> np.ndarray:
    """Rank of every element within its segment, for elements sorted by segment."""
    counts = np.bincount(seg, minlength=n_seg)
    return np.arange(len(seg)) - np.repeat(starts(counts), counts)


def _ts_us(column) -> np.ndarray:
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("us", tz=col.type.tz))
        col = col.view(pa.int64()) if hasattr(col, "view") else pc.cast(col, pa.int64())
    return pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False)


def encode_users(events: pa.Table, profiles: pa.Table, vocab: Vocab, config: TokenizerConfig,
                 cuts: dict[str, int] | None = None, unk: UnkCounter | None = None) -> pa.Table:
    """Encode the users of `events` (contiguous, time-ordered) followed by the users of
    `profiles` that have no events, into one row per user (ROW_SCHEMA).

    `cuts` maps user_id -> cut time in µs since the epoch: only events with ts < cut are kept,
    tau is measured to the cut and lifelong milestones at or after it are dropped.
    """
    unk = unk if unk is not None else UnkCounter()
    ev_users = pc.cast(events.column("user_id"), pa.string()).combine_chunks()
    enc = pc.dictionary_encode(ev_users)
    users = enc.dictionary
    eu = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)  # (E0,) user of each event
    prof_users = pc.cast(profiles.column("user_id"), pa.string()).combine_chunks()
    extra = prof_users.filter(pc.invert(pc.is_in(prof_users, value_set=users)))
    users = pa.concat_arrays([users, extra]) if len(extra) else users
    n_users = len(users)
    user_list = users.to_pylist()
    cut = np.full(n_users, NO_CUT, np.int64)
    if cuts:
        cut = np.array([cuts.get(u, NO_CUT) for u in user_list], np.int64)  # per user, not per event

    # ---- events: cut, keep the most recent max_events per user
    ts = _ts_us(events.column("ts"))
    keep = ts < cut[eu]
    rank_from_end = np.zeros(len(eu), np.int64)
    if keep.any():
        kept_user = eu[keep]
        counts = np.bincount(kept_user, minlength=n_users)
        rank = _segment_rank(kept_user, n_users)
        rank_from_end[keep] = counts[kept_user] - 1 - rank
    keep &= rank_from_end < config.max_events
    kidx = np.flatnonzero(keep)
    eu, ts = eu[kidx], ts[kidx]
    n_events = np.bincount(eu, minlength=n_users)  # (U,)
    latest = np.full(n_users, NO_CUT, np.int64)
    if len(eu):
        bounds = np.r_[0, np.cumsum(n_events)]
        nonempty = n_events > 0
        latest[nonempty] = ts[bounds[1:][nonempty] - 1]  # events are time-ordered per user
    ref = np.where(cut != NO_CUT, cut, latest)
    event_tau = tau((ref[eu] - ts) / 1e6) if len(eu) else np.zeros(0, np.float32)
    hour, dow, dom = calendar(ts, config.calendar_tz)

    # ---- event tokens: source first, then fields sorted by key id
    sel = pa.array(kidx)
    source = pc.cast(events.column("source"), pa.string()).combine_chunks().take(sel)
    src = encode_values(pa.array([SOURCE_KEY] * len(source), pa.string()), pc.fill_null(source, ""),
                        vocab, config, unk)
    erow, fkeys, fvals = flatten_kv(events.column("fields").combine_chunks().take(sel))
    fld = encode_values(fkeys, fvals, vocab, config, unk)
    ent = _concat(src, fld)
    ent_event = np.concatenate([np.arange(len(kidx)), erow])
    ent_rank = np.concatenate([np.zeros(len(kidx), np.int64), 1 + fld.key_id])  # source first
    perm = np.lexsort((ent_rank, ent_event))
    ent, _ = _reorder(ent, perm)
    ent_event = ent_event[perm]
    tok_event = np.repeat(ent_event, ent.n_tok)  # (T0,)
    tok_key = np.repeat(ent.key_id, ent.n_tok)
    within = _segment_rank(tok_event, len(kidx))
    tkeep = within < config.max_event_tokens
    tok_event, tok_key = tok_event[tkeep], tok_key[tkeep]
    tok_val, tok_pos = ent.value_ids[tkeep], ent.positions[tkeep]
    event_ntok = np.bincount(tok_event, minlength=len(kidx))  # (E,)
    tok_user = eu[tok_event]
    n_tokens = np.bincount(tok_user, minlength=n_users)
    text_cols = None
    if config.nemotron:
        tok_text = np.repeat(ent.texts, ent.n_tok)[tkeep]
        is_text = np.flatnonzero(np.not_equal(tok_text, None))
        first_tok = starts(n_tokens)
        text_user = tok_user[is_text]
        text_cols = (is_text - first_tok[text_user], tok_text[is_text], np.bincount(text_user, minlength=n_users))

    # ---- profile: attributes by key at tau 0, then lifelong milestones at tau(ref - ts)
    puser = pc.index_in(prof_users, value_set=users).to_numpy(zero_copy_only=False).astype(np.int64)
    as_of = _ts_us(profiles.column("as_of"))
    prow, akeys, avals = flatten_kv(profiles.column("attributes"))
    attrs = encode_values(pc.binary_join_element_wise(PROFILE_PREFIX, akeys, ""), avals, vocab, config, unk)
    life = profiles.column("lifelong").combine_chunks()
    lrow = np.repeat(np.arange(len(life)), np.diff(life.offsets.to_numpy(zero_copy_only=False)))
    lflat = life.flatten()
    lts = _ts_us(lflat.field("ts")) if len(lflat) else np.zeros(0, np.int64)
    lkeys = pc.fill_null(lflat.field("key"), "") if len(lflat) else pa.array([], pa.string())
    lu = puser[lrow]
    lkeep = lts < cut[lu]
    lidx = np.flatnonzero(lkeep)
    lkeys_kept = lkeys.take(pa.array(lidx))
    lmarks = encode_values(pc.binary_join_element_wise(LIFELONG_PREFIX, lkeys_kept, ""),
                           pa.array([PRESENT] * len(lidx), pa.string()), vocab, config, unk)
    pref = np.minimum(as_of[lrow[lidx]], cut[lu[lidx]])
    items = _concat(attrs, lmarks)
    item_user = np.concatenate([puser[prow], lu[lidx]])
    item_tau = np.concatenate([np.zeros(len(prow), np.float32), tau((pref - lts[lidx]) / 1e6)])
    item_rank = np.concatenate([attrs.key_id, np.full(len(lidx), np.iinfo(np.int64).max // 2)])
    item_seq = np.arange(len(item_user))
    perm = np.lexsort((item_seq, item_rank, item_user))
    items, _ = _reorder(items, perm)
    item_user, item_tau = item_user[perm], item_tau[perm]
    # whole items only, up to max_profile_tokens per user
    cum = np.cumsum(items.n_tok)
    user_start = np.r_[0, cum][np.searchsorted(item_user, np.arange(n_users))]
    cum_in_user = cum - user_start[item_user]
    ikeep = cum_in_user <= config.max_profile_tokens
    n_tok_items = items.n_tok
    tkeep_p = np.repeat(ikeep, n_tok_items)
    p_user = np.repeat(item_user, n_tok_items)[tkeep_p]
    p_key = np.repeat(items.key_id, n_tok_items)[tkeep_p]
    p_val, p_pos = items.value_ids[tkeep_p], items.positions[tkeep_p]
    p_tau = np.repeat(item_tau, n_tok_items)[tkeep_p]
    n_profile = np.bincount(p_user, minlength=n_users)

    return _rows(user_list, n_events, n_tokens, n_profile,
                 (tok_key, tok_val, tok_pos), (event_ntok, event_tau, hour, dow, dom),
                 (p_key, p_val, p_pos, p_tau), text_cols)


def _lists(counts: np.ndarray, values: np.ndarray, typ: pa.DataType) -> pa.Array:
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, typ))


def _rows(user_list, n_events, n_tokens, n_profile, tok, ev, prof, text_cols) -> pa.Table:
    tok_key, tok_val, tok_pos = tok
    event_ntok, event_tau, hour, dow, dom = ev
    p_key, p_val, p_pos, p_tau = prof
    cost = n_tokens + 2 * n_events + n_profile + 2  # event tokens + [EVT]s, history, profile + [USR]
    cols = {
        "user_id": pa.array(user_list, pa.string()),
        "n_events": pa.array(n_events, pa.int32()),
        "n_tokens": pa.array(n_tokens, pa.int32()),
        "n_profile": pa.array(n_profile, pa.int32()),
        "cost": pa.array(cost, pa.int32()),
        "key_ids": _lists(n_tokens, tok_key, pa.int32()),
        "value_ids": _lists(n_tokens, tok_val, pa.int32()),
        "positions": _lists(n_tokens, tok_pos, pa.int8()),
        "event_ntok": _lists(n_events, event_ntok, pa.int8()),
        "event_tau": _lists(n_events, event_tau, pa.float32()),
        "event_hour": _lists(n_events, hour, pa.int8()),
        "event_dow": _lists(n_events, dow, pa.int8()),
        "event_dom": _lists(n_events, dom, pa.int8()),
        "profile_key_ids": _lists(n_profile, p_key, pa.int32()),
        "profile_value_ids": _lists(n_profile, p_val, pa.int32()),
        "profile_positions": _lists(n_profile, p_pos, pa.int8()),
        "profile_tau": _lists(n_profile, p_tau, pa.float32()),
    }
    if text_cols is not None:
        index, texts, counts = text_cols
        cols["text_index"] = _lists(counts, index, pa.int32())
        cols["texts"] = _lists(counts, texts, pa.string())
    return pa.table(cols, schema=row_schema(text_cols is not None))
