"""Encode users into token rows: the one implementation behind shards and the records path.

Vectorized over Arrow/NumPy columns: the work loops over *keys* (a few dozen), never over
events or fields. Shapes: U users, E events, F fields, T event tokens, P profile tokens.

A row (one per user) holds list columns: event tokens (key_ids, value_ids, positions), per
event (n_tokens, tau, hour, dow, dom) and profile tokens (ids, positions, tau); see rows.ROW_SCHEMA.
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
from pragmatiq.tokenizer.rows import columns_table, user_columns
from pragmatiq.tokenizer.text import encode_pieces
from pragmatiq.tokenizer.timefeat import calendar, tau
from pragmatiq.tokenizer.vocab import (LIFELONG_PREFIX, PRESENT, PROFILE_PREFIX, SOURCE_KEY, UNK,
                                       Vocab)

NO_CUT = np.iinfo(np.int64).max

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


def key_index(keys: pa.Array, vocab: Vocab) -> np.ndarray:
    """(F,) position of every key in `vocab.key_names`, -1 for a key the vocabulary lacks."""
    kidx = pc.index_in(keys, value_set=pa.array(vocab.key_names, pa.string()))
    return pc.fill_null(kidx, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def key_ids_of(kidx: np.ndarray, vocab: Vocab) -> np.ndarray:
    """(F,) `key_index` positions -> key ids, [UNK] for a key the vocabulary lacks."""
    return np.append(vocab.key_ids, UNK)[kidx]  # kidx -1 picks the [UNK] at the end


def group_by_code(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable grouping of F small codes in [-1, n_codes): -> (order (F,), bounds (n_codes+2,));
    the entries with code c are order[bounds[c+1]:bounds[c+2]] (c = -1 first). A radix sort."""
    shifted = codes + 1
    dtype = np.uint16 if n_codes < np.iinfo(np.uint16).max else np.int64
    order = np.argsort(shifted.astype(dtype), kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(shifted, minlength=n_codes + 1))]
    return order, bounds


def encode_values(keys: pa.Array, values: pa.Array, vocab: Vocab, config: TokenizerConfig,
                  unk: UnkCounter, kidx: np.ndarray | None = None,
                  order: np.ndarray | None = None) -> Tokens:
    """F (key, value) string pairs -> tokens, one vectorized pass per distinct key.

    `kidx` (F,): the `key_index` of `keys`, when the caller has it already. `order` (F,): a
    permutation; entry i of the result is then pair order[i] (the strings are never permuted)."""
    f = len(keys)
    names = vocab.key_names
    kidx = key_index(keys, vocab) if kidx is None else kidx
    source_of = (lambda idx: idx) if order is None else (lambda idx: order[idx])  # noqa: E731
    kidx = kidx if order is None else kidx[order]
    key_id = key_ids_of(kidx, vocab)  # (F,)
    n_tok = np.ones(f, np.int64)
    entry_vid = np.full(f, UNK, np.int64)  # (F,) the value id of every one-token entry
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # text: (entries, n, piece ids)
    texts = np.full(f, None, dtype=object) if config.nemotron else None
    groups, bounds = group_by_code(kidx, len(names))
    unknown = groups[bounds[0]:bounds[1]]
    if len(unknown):
        for k, c in zip(*np.unique(keys.take(pa.array(source_of(unknown))).to_numpy(zero_copy_only=False),
                                   return_counts=True)):
            unk.add("unknown-key", str(k), c)
    for k in np.flatnonzero(np.diff(bounds[1:])):
        idx = groups[bounds[k + 1]:bounds[k + 2]]  # (F_k,) entries of key k, in entry order
        spec = vocab.keys[names[k]]
        vals = values.take(pa.array(source_of(idx)))
        if spec.kind == "numeric":
            x, ok = parse_numbers(vals)
            entry_vid[idx] = np.where(ok, spec.offset + bucketize(x, vocab.edges[spec.name]), UNK)
            unk.add("bad-number", spec.name, int((~ok).sum()))
        elif spec.kind == "categorical":
            j = pc.index_in(vals, value_set=vocab.value_set(spec.name))
            jn = pc.fill_null(j, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            entry_vid[idx] = np.where(jn >= 0, spec.offset + jn, UNK)
            miss = np.flatnonzero(jn < 0)
            if len(miss):
                unk.add("unseen-value", spec.name, len(miss), str(vals[int(miss[0])]))
        elif config.nemotron:
            strings = pc.fill_null(vals, "").to_numpy(zero_copy_only=False)
            empty = strings == ""
            entry_vid[idx] = np.where(empty, UNK, spec.offset)
            texts[idx[~empty]] = strings[~empty]
        else:
            n, ids = encode_pieces(vocab.bpe, vals, config.max_text_pieces, vocab.piece_cache)
            unk.add("empty-text", spec.name, int((n == 0).sum()))
            n_tok[idx] = np.maximum(n, 1)  # an empty text is one [UNK]
            pieces.append((idx, n, ids))
    # one token per entry, then the text entries' pieces written over their slots
    value_ids = np.repeat(entry_vid, n_tok)  # (T,)
    positions = np.zeros_like(value_ids)
    first = starts(n_tok)
    for idx, n, ids in pieces:
        within = ranks(n)
        slot = np.repeat(first[idx], n) + within
        value_ids[slot] = vocab.bpe_offset + ids
        positions[slot] = within
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


def _key_position(vocab: Vocab, key: str) -> int:
    """Position of `key` in `vocab.key_names`, -1 if absent."""
    return vocab.key_names.index(key) if key in vocab.keys else -1


def entry_order(erow: np.ndarray, key_id: np.ndarray, n_fields: np.ndarray) -> np.ndarray:
    """The entries of E events, E sources followed by F fields (`erow` (F,) their events, in
    event order; `key_id` (F,)), put in token order: per event its source, then its fields by
    key id (stable). -> (E+F,) entry index at every position."""
    e, f = len(n_fields), len(erow)
    fields = np.arange(f)
    if f > 1:
        code = erow * (int(key_id.max()) + 1) + key_id  # (F,)
        if not np.all(code[1:] >= code[:-1]):  # usually sorted already, or nearly: a merge sort
            fields = np.argsort(code, kind="stable")
    order = np.empty(e + f, np.int64)
    order[np.arange(e) + starts(n_fields)] = np.arange(e)  # a source after earlier events' fields
    order[np.arange(f) + erow + 1] = e + fields  # sorted field j: after the sources so far
    return order


def _ts_us(column) -> np.ndarray:
    """(N,) int64 µs since the epoch of a timestamp column of any unit (ns truncated to µs, as
    the validator's fix casts). Nulls become 0: the batch path refuses them up front
    (`inputs.check_dataset`), the records path checks every record."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("us", tz=col.type.tz), safe=False)
        col = col.view(pa.int64()) if hasattr(col, "view") else pc.cast(col, pa.int64())
    return pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False)


def encode_users(events: pa.Table, profiles: pa.Table, vocab: Vocab, config: TokenizerConfig,
                 cuts: dict[str, int] | None = None, unk: UnkCounter | None = None) -> pa.Table:
    """Encode the users of `events` (contiguous, time-ordered) followed by the users of
    `profiles` that have no events, into one row per user (rows.ROW_SCHEMA).

    `cuts` maps user_id -> cut time in µs since the epoch: only events with ts < cut are kept,
    tau is measured to the cut and lifelong milestones at or after it are dropped.
    """
    return columns_table(encode_columns(events, profiles, vocab, config, cuts, unk))


def encode_columns(events: pa.Table, profiles: pa.Table, vocab: Vocab, config: TokenizerConfig,
                   cuts: dict[str, int] | None = None, unk: UnkCounter | None = None) -> dict:
    """`encode_users` before the Arrow table: the U users' columns as NumPy, name -> (U,)
    values for a scalar column, name -> (counts (U,), flat values) for a list column."""
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
    kept = np.flatnonzero(keep)  # (E,) rows of the events kept
    eu, ts = eu[kept], ts[kept]
    n_events = np.bincount(eu, minlength=n_users)  # (U,)
    latest = np.full(n_users, NO_CUT, np.int64)
    if len(eu):
        bounds = np.r_[0, np.cumsum(n_events)]
        nonempty = n_events > 0
        latest[nonempty] = ts[bounds[1:][nonempty] - 1]  # events are time-ordered per user
    ref = np.where(cut != NO_CUT, cut, latest)
    event_tau = tau((ref[eu] - ts) / 1e6) if len(eu) else np.zeros(0, np.float32)
    hour, dow, dom = calendar(ts, config.calendar_tz)

    # ---- event tokens: per event its source, then its fields sorted by key id
    e = len(kept)
    sel = (lambda col: col) if e == len(keep) else (lambda col: col.take(pa.array(kept)))  # noqa: E731
    source = pc.fill_null(sel(pc.cast(events.column("source"), pa.string()).combine_chunks()), "")
    erow, fkeys, fvals = flatten_kv(sel(events.column("fields").combine_chunks()))
    fk = key_index(fkeys, vocab)
    n_fields = np.bincount(erow, minlength=e)  # (E,)
    order = entry_order(erow, key_ids_of(fk, vocab), n_fields)  # (E+F,) sources, then fields
    ent = encode_values(pa.concat_arrays([pa.repeat(pa.scalar(SOURCE_KEY, pa.string()), e), fkeys]),
                        pa.concat_arrays([source, fvals]), vocab, config, unk,
                        kidx=np.r_[np.full(e, _key_position(vocab, SOURCE_KEY)), fk], order=order)
    tok_event = np.repeat(np.repeat(np.arange(e), 1 + n_fields), ent.n_tok)  # (T0,) sorted
    tok_key, tok_val, tok_pos = np.repeat(ent.key_id, ent.n_tok), ent.value_ids, ent.positions
    tok_text = np.repeat(ent.texts, ent.n_tok) if config.nemotron else None
    within = ranks(np.bincount(tok_event, minlength=e))  # tok_event is sorted
    tkeep = within < config.max_event_tokens
    tok_event, tok_key = tok_event[tkeep], tok_key[tkeep]
    tok_val, tok_pos = tok_val[tkeep], tok_pos[tkeep]
    event_ntok = np.bincount(tok_event, minlength=e)  # (E,)
    tok_user = eu[tok_event]
    n_tokens = np.bincount(tok_user, minlength=n_users)
    text_cols = None
    if config.nemotron:
        tok_text = tok_text[tkeep]
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

    return user_columns(user_list, n_events, n_tokens, n_profile,
                 (tok_key, tok_val, tok_pos), (event_ntok, event_tau, hour, dow, dom),
                 (p_key, p_val, p_pos, p_tau), text_cols)
