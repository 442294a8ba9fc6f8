"""What the tokens of one fast-engine forward pass attend to: prefill and decode plans.

A plan is set for the duration of one forward pass (`rowattn.planned`); the model's attention
layers call its `attend` through `rowattn.attention_forward`. See `rowattn` for why every shape
here depends only on a token's own sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from slick_hf.engines.fast.rowattn import (
    DECODE_SLOT_ROWS,
    ContextStack,
    Parts,
    Placement,
    Plan,
    Segment,
    additive_mask,
    attend_contexts,
    flash,
    padded_length,
    query_rows,
    slot_results,
)


@dataclass
class PrefillUnit:
    """`length` new tokens of one sequence, after its context segments.

    A segment is (K, V), each [layers, kv_heads, length, head_dim]; units that share a context
    pass the same tuple object.
    """

    start: int  # offset of the first token in the flat batch
    length: int
    context: tuple[Segment, ...] = ()


class _OwnBucket:
    """Prefill units whose lengths pad to the same key length: their causal attention is one call."""

    def __init__(self, units: Sequence[PrefillUnit], skey: int) -> None:
        self.skey = skey
        self.smax = max(u.length for u in units)
        lengths = torch.tensor([u.length for u in units])
        pos = torch.arange(self.smax)
        valid = pos[None, :] < lengths[:, None]  # [U, Smax]
        starts = torch.tensor([u.start for u in units])
        self.tok_idx = torch.where(valid, starts[:, None] + pos[None, :], 0)
        self.valid_unit, self.valid_pos = valid.nonzero(as_tuple=True)
        self.flat_valid = self.tok_idx[self.valid_unit, self.valid_pos]
        keys = torch.arange(skey)
        # own keys visible to query position s of unit u: key j <= s and j < length
        self.hidden = (keys[None, None, :] > pos[None, :, None]) | (keys[None, None, :] >= lengths[:, None, None])
        self._bias: torch.Tensor | None = None
        self._buffers: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def bias(self, g: int, dtype: torch.dtype) -> torch.Tensor:
        """The additive causal mask [U, 1, query rows, Skey] (the same for every layer)."""
        if self._bias is None:
            units = len(self.tok_idx)
            used = self.smax * g
            hidden = torch.ones(units, query_rows(used), self.skey, dtype=torch.bool)
            hidden[:, used:, 0] = False  # padding query rows see one key: no empty softmax
            own = self.hidden[:, :, None, :].expand(units, self.smax, g, self.skey)
            hidden[:, :used] = own.reshape(units, used, self.skey)
            self._bias = additive_mask(hidden[:, None], dtype)
        return self._bias

    def attend(self, q, k, v, scale, out_all, lse_all) -> None:
        """Causal attention of the bucket's tokens (`q` [N, KV, g, D], `k`/`v` [KV, N, D]) into out_all/lse_all."""
        _, kvh, g, dim = q.shape
        units = len(self.tok_idx)
        used = self.smax * g
        if self._buffers is None:  # one set for every layer: their padding stays the zeros allocated here
            self._buffers = (
                q.new_zeros(units, kvh, query_rows(used), dim),
                k.new_zeros(units, kvh, self.skey, dim),
                v.new_zeros(units, kvh, self.skey, dim),
            )
        qu, ku, vu = self._buffers
        tokens = self.tok_idx.flatten()
        qu[:, :, :used].view(units, kvh, self.smax, g, dim).copy_(
            q.index_select(0, tokens).view(units, self.smax, kvh, g, dim).transpose(1, 2)
        )
        ku[:, :, : self.smax].copy_(k.index_select(1, tokens).view(kvh, units, self.smax, dim).transpose(0, 1))
        vu[:, :, : self.smax].copy_(v.index_select(1, tokens).view(kvh, units, self.smax, dim).transpose(0, 1))
        out, lse = flash(qu, ku, vu, self.bias(g, q.dtype), scale)
        out, lse = slot_results(out, lse, self.smax, g, self.valid_unit, self.valid_pos)  # a unit per slot
        out_all[self.flat_valid] = out.float()
        lse_all[self.flat_valid] = lse


class PrefillPlan(Plan):
    """Causal attention within each unit's new tokens plus full attention to the unit's context.

    Own tokens: units grouped by padded length (`_OwnBucket`), keys padded with exact zeros to a
    multiple of CONTEXT_PAD. Contexts: `ContextStack`. Every layer's new keys and values are
    captured so the engine can cache them.
    """

    def __init__(self, units: Sequence[PrefillUnit], num_layers: int) -> None:
        super().__init__(num_layers)
        self.captured: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers
        buckets: dict[int, list[PrefillUnit]] = {}
        for u in units:
            buckets.setdefault(padded_length(u.length), []).append(u)
        self.buckets = [_OwnBucket(us, skey) for skey, us in sorted(buckets.items())]
        self.contexts = ContextStack([u.context for u in units])
        unit_of_token = torch.zeros(sum(u.length for u in units), dtype=torch.long)
        for i, u in enumerate(units):
            unit_of_token[u.start : u.start + u.length] = i
        self.places = [Placement(group, unit_of_token) for group in self.contexts.groups]

    def attend(self, layer, q, k, v, scale):
        """Own tokens causally, then each unit's context; the layer's new keys/values are captured."""
        self.captured[layer] = (k, v)
        heads, n, dim = q.shape
        kvh = k.shape[0]
        g = heads // kvh
        qr = q.view(kvh, g, n, dim).permute(2, 0, 1, 3)  # [N, KV, g, D]
        out = torch.empty(n, kvh, g, dim)
        lse = torch.empty(n, kvh, g)
        for bucket in self.buckets:
            bucket.attend(qr, k, v, scale, out, lse)
        parts = Parts(out, lse)
        attend_contexts(self.contexts, self.places, layer, qr, scale, parts)
        return parts.output(q.dtype).view(n, heads, dim)


class DecodePlan(Plan):
    """One new token per row; each row belongs to a unit (a prompt) whose context is in `contexts`.

    Own keys/values of the rows (generated tokens) are carried from step to step: `own[layer]`
    holds the previous step's [R_prev, KV, t, D], `parents` maps each row to its previous row
    (None on the first step). A row's own part has g query rows and its own t keys: its shape is
    the row's alone.
    """

    def __init__(
        self,
        contexts: ContextStack,
        unit_of_row: torch.Tensor,
        own: list[tuple[torch.Tensor, torch.Tensor]] | None,
        parents: torch.Tensor | None,
        num_layers: int,
    ) -> None:
        super().__init__(num_layers)
        self.contexts = contexts
        self.places = [Placement(group, unit_of_row, DECODE_SLOT_ROWS) for group in contexts.groups]
        self.own = own
        self.parents = parents
        self.new_own: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers

    def attend(self, layer, q, k, v, scale):
        """Each row's own tokens (the new one appended), then its unit's context in fixed slots."""
        heads, n, dim = q.shape
        kvh = k.shape[0]
        g = heads // kvh
        qr = q.view(kvh, g, n, dim).permute(2, 0, 1, 3).contiguous()  # [N, KV, g, D]
        kn = k.transpose(0, 1).unsqueeze(2)  # [N, KV, 1, D]
        vn = v.transpose(0, 1).unsqueeze(2)
        if self.own is None:
            own_k, own_v = kn.contiguous(), vn.contiguous()
        else:
            prev_k, prev_v = self.own[layer]
            own_k = torch.cat([prev_k[self.parents], kn], dim=2)
            own_v = torch.cat([prev_v[self.parents], vn], dim=2)
        self.new_own[layer] = (own_k, own_v)
        parts = Parts(*flash(qr, own_k, own_v, None, scale))
        attend_contexts(self.contexts, self.places, layer, qr, scale, parts)
        return parts.output(q.dtype).view(n, heads, dim)
