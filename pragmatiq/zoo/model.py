"""`PragmaModel`: event, profile and history encoders over one packed batch (DESIGN §5).

Shapes: U users, E events, T event tokens, P profile tokens, M masked positions, d width.
Everything inside is flat with int32 `cu_*` offsets; the model inserts `[EVT]` before every
event and `[USR]` before every profile, and slot 0 of each history is the profile state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pragmatiq.kernels import TimeRoPE, segment_ids
from pragmatiq.zoo.config import ModelConfig
from pragmatiq.zoo.dedup import gather_segments, segment_hashes, token_codes, unique_segments
from pragmatiq.zoo.dropout import Dropout
from pragmatiq.zoo.event_cache import POSITION_SPAN
from pragmatiq.zoo.layers import Attention, Encoder, sinusoid
from pragmatiq.zoo.parts import part_bounds, parts_apply


@dataclass
class EncoderOutput:
    user_emb: torch.Tensor  # (U, d) history-encoder state of slot 0 (the user embedding)
    token_states: torch.Tensor | None  # (T, d) event-encoder state of every event token
    event_states: torch.Tensor | None  # (E, d) history-encoder state of every event
    user_states: torch.Tensor  # (U, d) same tensor as user_emb
    # token_states and event_states are None from `forward(batch, heads_only=True)`; from
    # `forward(batch, token_rows=idx)` token_states is (M, d), the states of tokens idx (M,) alone
    token_rows: torch.Tensor | None = None


def _insert_heads(body: torch.Tensor, head: torch.Tensor, cu: torch.Tensor, exportable: bool,
                  order: torch.Tensor | None = None):
    """Put one head row in front of every segment of `body`.

    body (N, ...) segmented by cu (S+1,), head (S, ...) -> packed (N+S, ...), new cu (S+1,) int32,
    head_pos (S,) int64 and body_pos (N,) int64 (row of every head/body row in the packed tensor).
    `order` (S,) int64: the segments' order in the packed tensor (None: as they come); every
    row-wise layer is indifferent to it, and head_pos/body_pos find the rows wherever they are.
    Unique indices only, so the scatter exports cleanly.
    """
    s = cu.shape[0] - 1
    seg = segment_ids(cu, body.shape[0], exportable, like=body)  # (N,)
    if order is None:
        new_cu = cu + torch.arange(s + 1, device=cu.device, dtype=cu.dtype)  # (S+1,)
        head_pos = new_cu[:-1].to(torch.int64)  # (S,)
        body_pos = torch.arange(body.shape[0], device=body.device) + seg + 1  # (N,)
    else:
        lengths = (cu[1:] - cu[:-1]).to(torch.int64) + 1  # (S,) with the head
        new_cu = torch.cat([lengths.new_zeros(1), lengths[order].cumsum(0)]).to(cu.dtype)  # (S+1,)
        head_pos = torch.empty_like(order).index_copy_(0, order, new_cu[:-1].to(torch.int64))  # (S,)
        body_pos = head_pos[seg] + 1 + torch.arange(body.shape[0], device=body.device) - cu[:-1].to(torch.int64)[seg]
    out = body.new_zeros((body.shape[0] + s,) + tuple(body.shape[1:]))
    out = out.index_copy(0, torch.cat([head_pos, body_pos]), torch.cat([head, body]))
    return out, new_cu, head_pos, body_pos


def _max_len(cu: torch.Tensor) -> int:
    return int((cu[1:] - cu[:-1]).max()) if cu.shape[0] > 1 else 0


class PragmaModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        c = self.config = config
        d = c.d_model
        self.tok_embed = nn.Embedding(c.vocab_size, d)  # E, tied to the MLM output
        enc = dict(d=d, n_heads=c.n_heads, ffn_mult=c.ffn_mult, dropout=c.dropout,
                   attn_dropout=c.attn_dropout, backend=c.attn_backend)
        self.event_encoder = Encoder(c.n_layers_event, **enc)
        self.profile_encoder = Encoder(c.n_layers_profile, **enc)
        self.history_encoder = Encoder(c.n_layers_history, **enc)
        self.calendar = nn.Sequential(nn.Linear(6 + 2 * c.recency_freqs, d), nn.GELU(), nn.Linear(d, d))
        self.rope = TimeRoPE(c.head_dim, c.rope_base)
        self.drop = Dropout(c.dropout)
        self.head = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.LayerNorm(d))  # 3-view MLM head
        self.head_bias = nn.Parameter(torch.zeros(c.vocab_size))
        if c.user_head:  # user view alone -> the same tied logits (train/loss.py, user_loss_sum)
            self.user_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        if c.d_text:
            self.text_in = nn.Linear(c.d_text, d)  # frozen text vector -> added to the sentinel token
            self.text_out = nn.Linear(d, c.d_text)  # token state -> MSE target space
        self.exportable = False
        # inference: encode each distinct event once (see zoo/dedup.py); off only to measure it
        self.distinct_events = True
        # inference: an EventStateCache that `embed` reads and fills when set (zoo/event_cache.py)
        self.event_cache = None
        # CPU training: threads that encode parts of a batch's events side by side (zoo/parts.py)
        self.event_workers = 1
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ switches and counts
    def set_exportable(self, flag: bool = True) -> "PragmaModel":
        """Switch every attention layer (and the segment-id helpers) to the dense traceable form."""
        self.exportable = flag
        for m in self.modules():
            if isinstance(m, Attention):
                m.exportable = flag
        return self

    def num_parameters(self, exclude_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.tok_embed.weight.numel() if exclude_embedding else n

    # ------------------------------------------------------------------ encoders
    def _tokens(self, key_ids, value_ids, positions) -> torch.Tensor:
        """(N,) ids -> (N, d): E[key] + E[value] + sinusoid(position)."""
        x = self.tok_embed(key_ids) + self.tok_embed(value_ids)
        return x + sinusoid(positions, self.config.d_model).to(x.dtype)

    def _special(self, token_id: int, n: int) -> torch.Tensor:
        return self.tok_embed.weight[token_id][None, :].expand(n, -1)  # (n, d)

    def _calendar(self, hour, dow, dom, tau) -> torch.Tensor:
        """(E,) ints and tau (E,) -> (E, d) MLP(sin/cos of hour, day-of-week, day-of-month and,
        with `recency_freqs` R, of tau at frequencies 2^-1, 2^-3, ..., 2^-(2R-1) per tau unit)."""
        two_pi = 2 * math.pi
        a = torch.stack([hour.float() * (two_pi / 24), dow.float() * (two_pi / 7),
                         (dom.float() - 1) * (two_pi / 31)], dim=-1)  # (E, 3)
        if r := self.config.recency_freqs:
            # tau = 8 ln(1 + dt/8) spans ~0..130; the slowest frequency stays monotone over it
            omega = torch.tensor([2.0 ** -(2 * k + 1) for k in range(r)], device=tau.device)  # (R,)
            a = torch.cat([a, tau.float()[:, None] * omega], dim=-1)  # (E, 3+R)
        return self.calendar(torch.cat([a.sin(), a.cos()], dim=-1))  # (E, d)

    def _events(self, key_ids, value_ids, positions, cu_tokens, max_tokens, heads: bool,
                text_token_index=None, text_vectors=None, token_rows=None, in_part: bool = False):
        """Event tokens (T,) in events cu_tokens (E+1,) -> (token states (T, d), or (M, d) at
        token_rows (M,) int64 alone, or None with `heads`; [EVT] states (E, d))."""
        if not in_part and self._event_parts(key_ids, text_token_index, heads):
            return self._events_in_parts(key_ids, value_ids, positions, cu_tokens, max_tokens, token_rows)
        x_tok = self._tokens(key_ids, value_ids, positions)  # (T, d)
        if text_token_index is not None:
            # .to: under autocast the projection comes out in bf16, and index_add wants x_tok's dtype
            x_tok = x_tok.index_add(0, text_token_index, self.text_in(text_vectors.to(x_tok.dtype)).to(x_tok.dtype))
        evt = self._special(self.config.evt_id, cu_tokens.shape[0] - 1)  # (E, d)
        # shortest events first, so that events of one length sit in one run that attention takes
        # as a dense block (kernels/varlen.py); the traced form keeps the plain order
        order = None if self.exportable else torch.argsort(cu_tokens[1:] - cu_tokens[:-1], stable=True)  # (E,)
        x, cu_seq, evt_pos, tok_pos = _insert_heads(x_tok, evt, cu_tokens, self.exportable, order)  # (T+E, d)
        if heads:
            h = self.event_encoder(self.drop(x), cu_seq, max_tokens + 1, heads_only=True)  # (E, d) in layout order
            return None, h if order is None else h[torch.argsort(order)]  # (E, d)
        if token_rows is not None and not self.exportable:
            # the last block at the [EVT] rows and those tokens' rows alone
            n_evt = evt_pos.shape[0]
            h = self.event_encoder(self.drop(x), cu_seq, max_tokens + 1,
                                   rows=torch.cat([evt_pos, tok_pos[token_rows]]))  # (E+M, d)
            return h[n_evt:], h[:n_evt]  # (M, d), (E, d)
        h = self.event_encoder(self.drop(x), cu_seq, max_tokens + 1)  # (T+E, d)
        if token_rows is not None:
            return h[tok_pos[token_rows]], h[evt_pos]  # (M, d), (E, d)
        return h[tok_pos], h[evt_pos]  # (T, d), (E, d)

    def _event_parts(self, key_ids, text_token_index, heads: bool) -> bool:
        """Whether this event-encoder call runs in parts on CPU worker threads: training with
        grad on a CPU, several workers, no text vectors, no attention dropout (its masks come
        from the default generator) and not in the exportable form."""
        return (self.event_workers > 1 and self.training and not heads and torch.is_grad_enabled()
                and key_ids.device.type == "cpu" and text_token_index is None and not self.exportable
                and self.config.attn_dropout == 0 and not torch.is_autocast_enabled("cpu"))

    def _events_in_parts(self, key_ids, value_ids, positions, cu_tokens, max_tokens, token_rows=None):
        """`_events` over `event_workers` contiguous parts of the events, one thread each ->
        (token states (T, d) or (M, d) at token_rows, [EVT] states (E, d)), the same function of
        the same rows."""
        cu = cu_tokens.to(torch.int64)
        bounds = part_bounds(cu_tokens, self.event_workers)
        picks = None
        if token_rows is not None:  # each part's share of token_rows, as indices into token_rows
            picks = [torch.nonzero((token_rows >= cu[lo]) & (token_rows < cu[hi])).squeeze(1) for lo, hi in bounds]

        def run(i):
            lo, hi = bounds[i]
            t0, t1 = int(cu[lo]), int(cu[hi])
            cu_part = (cu_tokens[lo:hi + 1] - t0).to(torch.int32)  # (E_p+1,)
            rows = None if picks is None else token_rows[picks[i]] - t0  # (M_p,)
            return self._events(key_ids[t0:t1], value_ids[t0:t1], positions[t0:t1], cu_part, max_tokens,
                                heads=False, token_rows=rows, in_part=True)

        params = [p for m in (self.tok_embed, self.event_encoder) for p in m.parameters()]
        tokens, heads = parts_apply(run, range(len(bounds)), params, self.event_workers)
        if picks is not None:  # the parts hold token_rows in part order: back to token_rows' order
            tokens = tokens[torch.argsort(torch.cat(picks))]  # (M, d)
        return tokens, heads

    def _distinct_event_heads(self, key_ids, value_ids, positions, cu_tokens, codes, hashes,
                              first) -> torch.Tensor:
        """[EVT] states (E', d) of the events `first` (E',) of cu_tokens, with their `hashes` (E',),
        eval mode: those that `event_cache` holds are read from it, the rest encoded (and stored there)."""
        rows, cu_first, max_first = gather_segments(cu_tokens, first)  # (T',), (E'+1,)
        cache = self.event_cache
        if cache is None:
            return self._events(key_ids[rows], value_ids[rows], positions[rows], cu_first, max_first,
                                heads=True)[1]
        codes = codes[rows]  # (T',)
        held = cache.lookup(hashes, codes, cu_first).to(first.device)  # (E',) -1 where not held
        out = torch.empty(first.shape[0], self.config.d_model, device=first.device,
                          dtype=self.tok_embed.weight.dtype)  # (E', d)
        have = held >= 0
        if cache.n_events:
            out[have] = cache.states(held[have]).to(out.dtype)
        miss = torch.nonzero(~have).squeeze(1)  # (E'',)
        if miss.numel():
            sub, cu_miss, max_miss = gather_segments(cu_first, miss)
            r = rows[sub]
            _, fresh = self._events(key_ids[r], value_ids[r], positions[r], cu_miss, max_miss, heads=True)
            out[miss] = fresh
            cache.add(hashes[miss], codes[sub], cu_miss, fresh)
        return out

    def _encode(self, key_ids, value_ids, positions, cu_tokens, max_tokens, event_tau, event_hour,
                event_dow, event_dom, cu_events, max_events, profile_key_ids, profile_value_ids,
                profile_positions, profile_tau, cu_profile, max_profile, text_token_index=None,
                text_vectors=None, heads_only: bool = False, token_rows=None):
        c, ex = self.config, self.exportable
        # the encoders' last blocks can run at their head rows alone ([EVT], [USR], the user slot)
        # where only those are read: the profile encoder always, the event and history encoders
        # when only the user embedding is wanted; not in the exportable (traced) form
        heads = heads_only and not ex
        n_users = cu_events.shape[0] - 1  # U
        # --- event encoder: [EVT] + tokens per event, block-diagonal, no rotary
        texts = text_vectors is not None and text_token_index is not None and bool(c.d_text)
        codes = distinct = None
        if heads and self.distinct_events and not self.training and not texts:
            # eval: an event's [EVT] state depends on its tokens alone, so each distinct one is encoded once
            span = None if self.event_cache is None else POSITION_SPAN
            codes = token_codes(key_ids, value_ids, positions, c.vocab_size, span)  # (T,) or None
            hashes = None if codes is None else segment_hashes(codes, cu_tokens)  # (E,)
            distinct = None if codes is None else unique_segments(codes, cu_tokens, hashes)
        if distinct is not None:
            first, inverse = distinct  # (E',) int64, (E,) int64
            event_head = self._distinct_event_heads(key_ids, value_ids, positions, cu_tokens, codes,
                                                    hashes[first], first)[inverse]  # (E, d)
            token_states = None
        else:
            token_states, event_head = self._events(key_ids, value_ids, positions, cu_tokens, max_tokens,
                                                    heads, text_token_index if texts else None, text_vectors,
                                                    None if heads else token_rows)
        event_vec = event_head + self._calendar(event_hour, event_dow, event_dom, event_tau)  # (E, d)
        # --- profile encoder: [USR] + profile tokens, TimeRoPE on profile tau ([USR] at tau 0)
        x_p = self._tokens(profile_key_ids, profile_value_ids, profile_positions)  # (P, d)
        usr = self._special(c.usr_id, n_users)  # (U, d)
        x, cu_pseq, usr_pos, p_pos = _insert_heads(x_p, usr, cu_profile, ex)  # (P+U, d)
        tau_p = torch.zeros(x.shape[0], dtype=torch.float32, device=x.device).index_copy(
            0, p_pos, profile_tau.float())  # (P+U,)
        if ex:
            hp = self.profile_encoder(self.drop(x), cu_pseq, max_profile + 1, self.rope.cos_sin(tau_p))
            profile_state = hp[usr_pos]  # (U, d)
        else:
            profile_state = self.profile_encoder(self.drop(x), cu_pseq, max_profile + 1,
                                                 self.rope.cos_sin(tau_p), heads_only=True)  # (U, d)
        # --- history encoder: [profile state, event vectors...] per user, TimeRoPE on event tau
        x, cu_hseq, slot_pos, e_pos = _insert_heads(event_vec, profile_state, cu_events, ex)  # (E+U, d)
        tau_h = torch.zeros(x.shape[0], dtype=torch.float32, device=x.device).index_copy(
            0, e_pos, event_tau.float())  # (E+U,) profile slot at tau 0 (the cut point)
        if heads:
            event_states, user_states = None, self.history_encoder(
                x, cu_hseq, max_events + 1, self.rope.cos_sin(tau_h), heads_only=True)  # (U, d)
        else:
            hh = self.history_encoder(x, cu_hseq, max_events + 1, self.rope.cos_sin(tau_h))  # (E+U, d)
            event_states, user_states = hh[e_pos], hh[slot_pos]  # (E, d), (U, d)
        return EncoderOutput(user_emb=user_states, token_states=token_states, event_states=event_states,
                             user_states=user_states, token_rows=None if heads else token_rows)

    def forward(self, batch, heads_only: bool = False, token_rows=None) -> EncoderOutput:
        """PackedBatch -> EncoderOutput (see the dataclass for shapes). `heads_only`: compute what
        the user embedding needs and no more (token_states and event_states are then None).
        `token_rows` (M,) int64: the event tokens whose states are read (the MLM targets): the
        event encoder's last block computes those and the [EVT] rows alone."""
        b = batch
        return self._encode(b.key_ids, b.value_ids, b.positions, b.cu_tokens, b.max_tokens, b.event_tau,
                            b.event_hour, b.event_dow, b.event_dom, b.cu_events, b.max_events,
                            b.profile_key_ids, b.profile_value_ids, b.profile_positions, b.profile_tau,
                            b.cu_profile, b.max_profile, b.text_token_index, b.text_vectors,
                            heads_only=heads_only, token_rows=token_rows)

    def forward_tensors(self, key_ids, value_ids, positions, cu_tokens, event_tau, event_hour, event_dow,
                        event_dom, cu_events, profile_key_ids, profile_value_ids, profile_positions,
                        profile_tau, cu_profile) -> torch.Tensor:
        """Pure-tensor entry point for ONNX / torch.export -> user_emb (U, d).

        Python-int maxima are only needed by the varlen kernels; in exportable mode they are unused.
        """
        if self.exportable:
            mt = me = mp = 0
        else:
            mt, me, mp = _max_len(cu_tokens), _max_len(cu_events), _max_len(cu_profile)
        return self._encode(key_ids, value_ids, positions, cu_tokens, mt, event_tau, event_hour, event_dow,
                            event_dom, cu_events, me, profile_key_ids, profile_value_ids,
                            profile_positions, profile_tau, cu_profile, mp).user_emb

    def embed(self, batch) -> torch.Tensor:
        """PackedBatch -> (U, d) user embeddings (inference convenience, no grad)."""
        with torch.no_grad():
            return self(batch, heads_only=True).user_emb

    # ------------------------------------------------------------------ heads
    @staticmethod
    def token_owners(batch, token_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """token_index (M,) event-token rows -> (their events (M,), their users (M,)), int64."""
        e = segment_ids(batch.cu_tokens, batch.n_tokens)[token_index]  # (M,)
        return e, segment_ids(batch.cu_events, batch.n_events)[e]

    def _views(self, out: EncoderOutput, batch, token_index: torch.Tensor) -> torch.Tensor:
        """token_index (M,) -> (M, 3d) concat[token state, its event's state, its user's state]."""
        e, u = self.token_owners(batch, token_index)  # (M,), (M,)
        if out.token_rows is None:
            tokens = out.token_states[token_index]  # (M, d)
        elif out.token_rows is token_index or torch.equal(out.token_rows, token_index):
            tokens = out.token_states  # computed at these rows alone
        else:
            raise ValueError("the forward pass computed the token states of other rows (token_rows) "
                             "than the head asks for")
        return torch.cat([tokens, out.event_states[e], out.user_states[u]], dim=-1)

    def mlm_hidden(self, out: EncoderOutput, batch, token_index: torch.Tensor) -> torch.Tensor:
        """3-view MLM head before the tied output layer: token_index (M,) int64 -> (M, d).
        The logits are `mlm_hidden @ tok_embed.weight.T + head_bias` (see `mlm_logits`); training
        feeds this to a fused, chunked cross-entropy instead of materializing them."""
        return self.head(self._views(out, batch, token_index))  # (M, d)

    def mlm_logits(self, out: EncoderOutput, batch, token_index: torch.Tensor) -> torch.Tensor:
        """3-view MLM head at event-token positions token_index (M,) int64 -> (M, V) logits tied to E."""
        h = self.mlm_hidden(out, batch, token_index)  # (M, d)
        return F.linear(h, self.tok_embed.weight, self.head_bias)  # (M, V)

    def user_hidden(self, out: EncoderOutput) -> torch.Tensor:
        """User-view head before the tied output layer: (U, d) from the user states alone; the
        logits of every token of user u are `user_hidden[u] @ tok_embed.weight.T + head_bias`."""
        if not self.config.user_head:
            raise RuntimeError("user_hidden needs a model with the user-view head: create_model(..., user_head=True)")
        return self.user_head(out.user_states)  # (U, d)

    def text_prediction(self, out: EncoderOutput, batch, token_index: torch.Tensor) -> torch.Tensor:
        """Nemotron variant: token state of sentinels token_index (M,) -> (M, d_text) MSE prediction."""
        if not self.config.d_text:
            raise RuntimeError("text_prediction needs a Nemotron model: create_model(..., d_text=<width>)")
        if out.token_rows is not None:
            raise ValueError("text_prediction needs every token state: run the forward pass without token_rows")
        return self.text_out(out.token_states[token_index])  # (M, d_text)
