"""Batch-invariant attention over shared prompt contexts, plugged into `transformers` models.

The fast engine runs the model on a flat list of tokens (batch of one, explicit position ids,
no cache object): every token belongs to a sequence whose earlier keys and values this module
keeps. Attention is computed in two parts merged with one softmax: the sequence's *context*
(a cached exemplar prefix, or a whole prompt) and its *own* tokens (the suffix being prefilled,
or the tokens generated so far).

Every reduction a token's result depends on has a shape fixed by that token's own sequence, not
by what else is in the batch: matrix products put at least `MIN_ROWS` query rows in each call
(row results of the BLAS kernels do not depend on the row count from there on), sums run over
exact lengths or over context lengths padded to a multiple of `CONTEXT_PAD` with exact zeros.
So a sampled sequence gets bit-identical logits whatever it is batched with, and its samples
depend only on its request.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

IMPL_NAME = "slick_fast_rows"
MIN_ROWS = 16  # BLAS calls get at least this many rows (row results are invariant from ~12 on)
CONTEXT_PAD = 64  # stacked contexts are padded to a multiple of this length

Segment = tuple[torch.Tensor, torch.Tensor]  # (K, V), each [layers, kv_heads, length, head_dim]

_PLAN: contextvars.ContextVar[_Plan | None] = contextvars.ContextVar("slick_fast_plan", default=None)
_registered = False


def register() -> None:
    """Make `IMPL_NAME` a valid `attn_implementation` (idempotent)."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(IMPL_NAME, attention_forward)
        _registered = True


@contextlib.contextmanager
def planned(plan: _Plan) -> Iterator[None]:
    token = _PLAN.set(plan)
    try:
        yield
    finally:
        _PLAN.reset(token)


def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """`transformers` attention interface: query [1, H, N, D], key/value [1, KV, N, D]."""
    plan = _PLAN.get()
    if plan is None:
        raise RuntimeError(f"attention implementation {IMPL_NAME!r} is only usable inside the fast engine")
    if query.shape[0] != 1:
        raise RuntimeError("the fast engine runs flat token lists (batch size 1)")
    layer = plan.layer_index(module)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = plan.attend(layer, query[0], key[0], value[0], scale)  # [N, H, D]
    return out.unsqueeze(0), None


class _Plan:
    """What the tokens of one forward pass are and what each one attends to."""

    def __init__(self, num_layers: int, num_kv_heads: int) -> None:
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self._calls = 0

    def layer_index(self, module) -> int:
        idx = getattr(module, "layer_idx", None)
        if idx is None:
            idx = self._calls % self.num_layers
        self._calls += 1
        return idx

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class PrefillUnit:
    """`length` new tokens of one sequence, after its context segments.

    A segment is (K, V), each [layers, kv_heads, length, head_dim]; units that share a context
    pass the same tuple object.
    """

    start: int  # offset of the first token in the flat batch
    length: int
    context: tuple[Segment, ...] = ()


class PrefillPlan(_Plan):
    """Causal attention within each unit's new tokens plus full attention to the unit's context.

    All units are handled together: queries padded to the longest unit (at least MIN_ROWS rows
    per unit), keys padded to a multiple of CONTEXT_PAD with exact zeros. Every layer's new keys
    and values are captured so the engine can cache them.
    """

    def __init__(self, units: Sequence[PrefillUnit], num_layers: int) -> None:
        super().__init__(num_layers, 0)
        self.units = units
        self.captured: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers
        self.smax = max(u.length for u in units)
        self.skey = _round_up(self.smax)
        lengths = torch.tensor([u.length for u in units])
        pos = torch.arange(self.smax)
        self.valid = pos[None, :] < lengths[:, None]  # [U, Smax]
        starts = torch.tensor([u.start for u in units])
        self.tok_idx = torch.where(self.valid, starts[:, None] + pos[None, :], 0)
        self.flat_valid = self.tok_idx[self.valid]
        keys = torch.arange(self.skey)
        # own keys visible to query position s of unit u: key j <= s and j < length
        self.own_hidden = (keys[None, None, :] > pos[None, :, None]) | (keys[None, None, :] >= lengths[:, None, None])
        self.has_context = any(u.context for u in units)
        if self.has_context:
            distinct: dict[int, int] = {}
            contexts = []
            for u in units:
                if id(u.context) not in distinct:
                    distinct[id(u.context)] = len(contexts)
                    contexts.append(u.context)
            self.ctx_k, self.ctx_v, mask, _ = stack_contexts(contexts)
            self.ctx_idx = torch.tensor([distinct[id(u.context)] for u in units])
            self.ctx_bias = additive_mask(mask[self.ctx_idx], self.ctx_k.dtype)
        self._own_bias: torch.Tensor | None = None

    def attend(self, layer, q, k, v, scale):
        self.captured[layer] = (k, v)
        heads, n, dim = q.shape
        kvh = k.shape[0]
        g = heads // kvh
        units, smax = self.tok_idx.shape
        rows = max(smax, math.ceil(MIN_ROWS / g))
        qg = (q * scale).view(kvh, g, n, dim)[:, :, self.tok_idx]  # [KV, g, U, Smax, D]
        qu = q.new_zeros(units, kvh, rows, g, dim)
        qu[:, :, :smax] = qg.permute(2, 0, 3, 1, 4)
        qu = qu.view(units, kvh, rows * g, dim)
        ku = k.new_zeros(units, kvh, self.skey, dim)
        vu = v.new_zeros(units, kvh, self.skey, dim)
        ku[:, :, :smax] = k[:, self.tok_idx].transpose(0, 1)
        vu[:, :, :smax] = v[:, self.tok_idx].transpose(0, 1)
        if self._own_bias is None:  # the same for every layer
            hidden = torch.ones(units, rows, self.skey, dtype=torch.bool)
            hidden[:, :smax] = self.own_hidden
            hidden[:, smax:, 0] = False  # padding query rows see one key: no empty softmax
            hidden = hidden[:, None, :, None, :].expand(units, 1, rows, g, self.skey)
            self._own_bias = additive_mask(hidden.reshape(units, 1, rows * g, self.skey), q.dtype)
        s_own = (qu @ ku.transpose(-1, -2)).add_(self._own_bias)  # [U, KV, R*g, Skey]
        m = s_own.amax(-1)
        if self.has_context:
            kc, vc = self.ctx_k[:, layer][self.ctx_idx], self.ctx_v[:, layer][self.ctx_idx]
            s_ctx = (qu @ kc.transpose(-1, -2)).add_(self.ctx_bias)
            m = torch.maximum(m, s_ctx.amax(-1))
            e_ctx = torch.exp(s_ctx - m.unsqueeze(-1))
        e_own = torch.exp(s_own - m.unsqueeze(-1))
        num = e_own @ vu
        den = e_own.sum(-1)
        if self.has_context:
            num = e_ctx @ vc + num
            den = e_ctx.sum(-1) + den
        o = (num / den.unsqueeze(-1)).view(units, kvh, rows, g, dim)[:, :, :smax]  # [U, KV, Smax, g, D]
        o = o.permute(0, 2, 1, 3, 4)[self.valid]  # [valid, KV, g, D]
        out = q.new_empty(n, heads, dim)
        out[self.flat_valid] = o.reshape(-1, heads, dim)
        return out


def _round_up(n: int) -> int:
    return max(CONTEXT_PAD, -(-n // CONTEXT_PAD) * CONTEXT_PAD)


class DecodePlan(_Plan):
    """One new token per row; each row belongs to a unit (a prompt) whose context is stacked.

    `ctx_k`, `ctx_v`: [U, layers, KV, Lpad, D], zero-padded (`stack_contexts`); `pad_mask` [U, 1, 1, Lpad]
    is True on padding. Own keys/values of the rows (generated tokens) are carried from step to
    step: `own[layer]` holds the previous step's [R_prev, KV, t, D], `parents` maps each row to
    its previous row (None on the first step).
    """

    def __init__(
        self,
        ctx_k: torch.Tensor,
        ctx_v: torch.Tensor,
        pad_mask: torch.Tensor,
        unit_of_row: torch.Tensor,
        slot_of_row: torch.Tensor,
        own: list[tuple[torch.Tensor, torch.Tensor]] | None,
        parents: torch.Tensor | None,
        num_layers: int,
    ) -> None:
        super().__init__(num_layers, ctx_k.shape[2])
        self.ctx_k, self.ctx_v = ctx_k, ctx_v
        self.pad_bias = additive_mask(pad_mask, ctx_k.dtype)
        self.unit_of_row = unit_of_row
        self.slot_of_row = slot_of_row
        self.own = own
        self.parents = parents
        self.new_own: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers

    def attend(self, layer, q, k, v, scale):
        heads, n, dim = q.shape
        kvh = k.shape[0]
        g = heads // kvh
        kc, vc = self.ctx_k[:, layer], self.ctx_v[:, layer]
        units = kc.shape[0]
        rpad = max(int(self.slot_of_row.max()) + 1, math.ceil(MIN_ROWS / g))
        u_idx, j_idx = self.unit_of_row, self.slot_of_row

        qr = (q * scale).view(kvh, g, n, dim).permute(2, 0, 1, 3).contiguous()  # [N, KV, g, D]
        kn = k.transpose(0, 1).unsqueeze(2)  # [N, KV, 1, D]
        vn = v.transpose(0, 1).unsqueeze(2)
        if self.own is None:
            own_k, own_v = kn.contiguous(), vn.contiguous()
        else:
            prev_k, prev_v = self.own[layer]
            own_k = torch.cat([prev_k[self.parents], kn], dim=2)
            own_v = torch.cat([prev_v[self.parents], vn], dim=2)
        self.new_own[layer] = (own_k, own_v)
        s_own = qr @ own_k.transpose(-1, -2)  # [N, KV, g, t]

        qu = q.new_zeros(units, rpad, kvh, g, dim)
        qu[u_idx, j_idx] = qr
        qu = qu.permute(0, 2, 1, 3, 4).reshape(units, kvh, rpad * g, dim)
        s_ctx = (qu @ kc.transpose(-1, -2)).add_(self.pad_bias)  # [U, KV, Rpad*g, Lpad]
        m_ctx = s_ctx.amax(-1).view(units, kvh, rpad, g)[u_idx, :, j_idx]  # [N, KV, g]
        m = torch.maximum(m_ctx, s_own.amax(-1))
        m_u = q.new_zeros(units, kvh, rpad, g)
        m_u[u_idx, :, j_idx] = m
        e_ctx = torch.exp(s_ctx - m_u.view(units, kvh, rpad * g, 1))
        den_ctx = e_ctx.sum(-1).view(units, kvh, rpad, g)[u_idx, :, j_idx]
        num_ctx = (e_ctx @ vc).view(units, kvh, rpad, g, dim)[u_idx, :, j_idx]  # [N, KV, g, D]
        e_own = torch.exp(s_own - m.unsqueeze(-1))
        num = num_ctx + e_own @ own_v
        den = den_ctx + e_own.sum(-1)
        return (num / den.unsqueeze(-1)).view(n, heads, dim)


def additive_mask(hidden: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where a key is visible, -inf where `hidden`: adding it equals masked_fill, at a fraction of the cost."""
    return torch.zeros(hidden.shape, dtype=dtype).masked_fill_(hidden, float("-inf"))


def stack_contexts(contexts: Sequence[Sequence[Segment]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Stack unit contexts (each a sequence of segments, concatenated) for all layers at once.

    Returns K, V [U, layers, KV, Lpad, D] zero-padded to a multiple of CONTEXT_PAD, the padding
    mask [U, 1, 1, Lpad] and the context lengths.
    """
    lengths = [sum(seg[0].shape[2] for seg in segs) for segs in contexts]
    like = next(seg[0] for segs in contexts for seg in segs)
    layers, kvh, _, dim = like.shape
    lpad = _round_up(max(lengths))
    ks = like.new_zeros(len(contexts), layers, kvh, lpad, dim)
    vs = like.new_zeros(len(contexts), layers, kvh, lpad, dim)
    for u, segs in enumerate(contexts):
        pos = 0
        for kk, vv in segs:
            ks[u, :, :, pos : pos + kk.shape[2]] = kk
            vs[u, :, :, pos : pos + kk.shape[2]] = vv
            pos += kk.shape[2]
    mask = torch.arange(lpad)[None, :] >= torch.tensor(lengths)[:, None]
    return ks, vs, mask[:, None, None, :], lengths
