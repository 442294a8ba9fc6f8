"""Batch-invariant attention over shared prompt contexts, plugged into `transformers` models.

The fast engine runs the model on a flat list of tokens (batch of one, explicit position ids,
no cache object): every token belongs to a sequence whose earlier keys and values this module
keeps. A sequence's context is a list of segments (an exemplar prefix shared by many prompts, a
prompt's own suffix); its *own* tokens are the suffix being prefilled or the tokens generated so
far. `ContextStack` stores each distinct segment once, so the queries of every sequence that
shares a prefix attend to its keys in one call. Each part (own tokens, each segment) is computed
by torch's CPU flash-attention kernel, which also returns every query row's log-sum-exp, and the
parts are merged exactly (float32) with those. What each token of a pass attends to is its
`Plan` (`plans.PrefillPlan`, `plans.DecodePlan`).

Every reduction a token's result depends on has a shape fixed by that token's own sequence, not
by what else is in the batch: prefill calls get at least `QUERY_ROWS` query rows, a multiple of 16
(the kernel's row results do not depend on the row count from there on, measured in bf16 and fp32;
below it bf16 rows change); decode steps, where a segment often has one or a few rows, put rows in
slots of exactly `DECODE_SLOT_ROWS` rows instead (a fixed shape; 5 measured fastest of 1-10, and
1.1x the 64-row padding on a whole decode), a segment's keys are padded to its own length
rounded up to `CONTEXT_PAD` (the kernel's results do depend on the key count, so a segment is
padded the same way whatever it is stacked with), a decode row's own part has its own shape
(g query rows, its t keys), and parts are merged in a fixed order. So a sampled sequence gets
bit-identical logits whatever it is batched with, and its samples depend only on its request.
"""

from __future__ import annotations

import contextlib
import contextvars
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

IMPL_NAME = "slick_fast_rows"
CONTEXT_PAD = 32  # a context segment is padded to a multiple of this length
QUERY_ROWS = 64  # flash-attention calls get at least this many query rows (bf16 rows differ below, measured)
# torch runs elementwise ops in vector blocks of 32 floats and the leftover elements with scalar code, whose
# exp/log may differ in the last bit: per-row log-sum-exps are padded to a whole block, so every row's
# merge runs in vector code whatever the row count
LSE_COLUMNS = 32
DECODE_SLOT_ROWS = 5  # decode rows per flash-attention slot of a context segment (5 * g query rows)

Segment = tuple[torch.Tensor, torch.Tensor]  # (K, V), each [layers, kv_heads, length, head_dim]

_PLAN: contextvars.ContextVar[Plan | None] = contextvars.ContextVar("slick_fast_plan", default=None)
_registered = False


def register() -> None:
    """Make `IMPL_NAME` a valid `attn_implementation` (idempotent)."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(IMPL_NAME, attention_forward)
        _registered = True


@contextlib.contextmanager
def planned(plan: Plan) -> Iterator[None]:
    """Route the model's attention calls to `plan` for the duration of one forward pass."""
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


class Plan(ABC):
    """What the tokens of one forward pass are and what each one attends to (`plans` has the two kinds)."""

    def __init__(self, num_layers: int) -> None:
        self.num_layers = num_layers
        self._calls = 0

    def layer_index(self, module) -> int:
        """The layer an attention module belongs to (its `layer_idx`, else counted call by call)."""
        idx = getattr(module, "layer_idx", None)
        if idx is None:
            idx = self._calls % self.num_layers
        self._calls += 1
        return idx

    @abstractmethod
    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """Attention output [N, H, D] of the pass's tokens at `layer` (q [H, N, D], k/v [KV, N, D])."""


def padded_length(n: int) -> int:
    """A segment's length rounded up to a multiple of CONTEXT_PAD (what its keys are padded to)."""
    return max(CONTEXT_PAD, -(-n // CONTEXT_PAD) * CONTEXT_PAD)


@dataclass
class _SegmentGroup:
    """Distinct segments of one slot and padded length, stacked: each is stored once."""

    keys: torch.Tensor  # [layers, G, KV, Lpad, D]
    values: torch.Tensor
    bias: torch.Tensor  # [G, 1, 1, Lpad]: -inf on padding
    member: torch.Tensor  # [units]: each unit's segment in this group, or -1


class ContextStack:
    """The context segments of `units` sequences; a segment shared by several is stored once.

    Units pass their segments in order; segments are the same when their key tensors are the same
    object. Slot j (every unit's j-th segment) is split into groups of equal padded length.
    """

    def __init__(self, contexts: Sequence[Sequence[Segment]]) -> None:
        self.lengths = [sum(seg[0].shape[2] for seg in segs) for segs in contexts]
        self.groups: list[_SegmentGroup] = []
        for slot in range(max((len(c) for c in contexts), default=0)):
            distinct: dict[int, tuple[Segment, list[int]]] = {}
            for u, segs in enumerate(contexts):
                if slot < len(segs):
                    distinct.setdefault(id(segs[slot][0]), (segs[slot], []))[1].append(u)
            buckets: dict[int, list[tuple[Segment, list[int]]]] = {}
            for seg, members in distinct.values():
                buckets.setdefault(padded_length(seg[0].shape[2]), []).append((seg, members))
            for lpad, items in sorted(buckets.items()):
                self.groups.append(_stack_group(items, lpad, len(contexts)))


def _stack_group(items: list[tuple[Segment, list[int]]], lpad: int, units: int) -> _SegmentGroup:
    like = items[0][0][0]
    layers, kvh, _, dim = like.shape
    keys = like.new_zeros(layers, len(items), kvh, lpad, dim)
    values = like.new_zeros(layers, len(items), kvh, lpad, dim)
    hidden = torch.ones(len(items), 1, 1, lpad, dtype=torch.bool)
    member = torch.full((units,), -1)
    for g, ((k, v), members) in enumerate(items):
        keys[:, g, :, : k.shape[2]] = k
        values[:, g, :, : k.shape[2]] = v
        hidden[g, ..., : k.shape[2]] = False
        member[members] = g
    return _SegmentGroup(keys, values, additive_mask(hidden, like.dtype), member)


class Placement:
    """Where the query rows that attend to one segment group go: the slots of its flash-attention call.

    A slot is one batch item of the call: one segment's keys and some of its rows' queries.
    `slot_rows=None`: one slot per segment of the group with all of its rows, padded to at least
    QUERY_ROWS query rows (row results are the same from there on, whatever the count). `slot_rows=S`:
    each segment's rows fill slots of S rows, exactly S * g query rows each (row results depend only
    on that fixed shape), the segment's keys copied once per slot: no padding to QUERY_ROWS, which
    costs most when segments have few rows each (decode steps).
    """

    def __init__(self, group: _SegmentGroup, unit_of_row: torch.Tensor, slot_rows: int | None = None) -> None:
        g_of_row = group.member[unit_of_row]
        self.rows = (g_of_row >= 0).nonzero().squeeze(1)
        self.everyone = len(self.rows) == len(unit_of_row)
        index = g_of_row[self.rows]
        counts = torch.bincount(index, minlength=group.keys.shape[1])
        order = torch.argsort(index, stable=True)
        rank = torch.empty_like(index)
        rank[order] = torch.arange(len(order)) - (counts.cumsum(0) - counts)[index[order]]
        self.most = int(counts.max()) if len(order) else 0
        self.fixed = slot_rows is not None
        if slot_rows is None:
            self.slot, self.within, self.width = index, rank, self.most
            self.slots = group.keys.shape[1]
            self.segment_of_slot = None
        else:
            per_segment = -(-counts // slot_rows)
            first = per_segment.cumsum(0) - per_segment
            self.slot, self.within, self.width = first[index] + rank // slot_rows, rank % slot_rows, slot_rows
            self.slots = int(per_segment.sum())
            one_each = bool((per_segment == 1).all())  # slot g is segment g: the group's tensors as they are
            self.segment_of_slot = None if one_each else torch.repeat_interleave(torch.arange(len(counts)), per_segment)
        self._queries: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None

    def query_rows(self, g: int) -> int:
        """Query rows per slot."""
        return self.width * g if self.fixed else query_rows(self.width * g)

    def segments(self, group: _SegmentGroup, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys, values and mask of every slot at `layer`."""
        if self.segment_of_slot is None:
            return group.keys[layer], group.values[layer], group.bias
        if self._bias is None:
            self._bias = group.bias.index_select(0, self.segment_of_slot)
        keys = group.keys[layer].index_select(0, self.segment_of_slot)
        return keys, group.values[layer].index_select(0, self.segment_of_slot), self._bias

    def queries(self, qr: torch.Tensor) -> torch.Tensor:
        """`qr`'s rows [N, KV, g, D] in their slots: [slots, KV, query rows, D].

        One buffer serves every layer of the pass: rows land in the same places each time, so its
        padding rows stay the zeros they were allocated with.
        """
        _, kvh, g, dim = qr.shape
        if self._queries is None:
            self._queries = qr.new_zeros(self.slots, kvh, self.query_rows(g), dim)
        used = self._queries[:, :, : self.width * g].view(self.slots, kvh, self.width, g, dim)
        used[self.slot, :, self.within] = qr[self.rows]
        return self._queries

    def gather(self, out: torch.Tensor, lse: torch.Tensor, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The results of the placed rows, in row order: [rows, KV, g, D] and [rows, KV, g]."""
        return slot_results(out, lse, self.width, g, self.slot, self.within)


def slot_results(
    out: torch.Tensor, lse: torch.Tensor, width: int, g: int, slot: torch.Tensor, within: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows' results from a flash call whose slots hold `width` rows of g query rows each (padding after):
    row i sat in slot `slot[i]` at position `within[i]`. Returns [rows, KV, g, D] and [rows, KV, g]."""
    slots, kvh, _, dim = out.shape
    used = width * g
    out = out[:, :, :used].view(slots, kvh, width, g, dim)[slot, :, within]
    lse = lse[:, :, :used].view(slots, kvh, width, g)[slot, :, within]
    return out, lse


def query_rows(n: int) -> int:
    """Query rows of a flash-attention call: at least QUERY_ROWS, a multiple of 16 (row-invariant from there)."""
    return max(QUERY_ROWS, -(-n // 16) * 16)


def flash(q, k, v, bias, scale) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's CPU flash attention: the output and the log-sum-exp of every query row."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=bias, scale=scale)
    return out, lse


def _wide(lse: torch.Tensor) -> torch.Tensor:
    """[N, KV, g] log-sum-exps as float32 [N, C], C the heads rounded up to LSE_COLUMNS, zero-padded."""
    flat = lse.reshape(lse.shape[0], -1).float()
    columns = -(-flat.shape[1] // LSE_COLUMNS) * LSE_COLUMNS
    return torch.cat([flat, flat.new_zeros(flat.shape[0], columns - flat.shape[1])], dim=1)


class Parts:
    """Attention of every query row merged over parts (own tokens, context segments), in float32."""

    def __init__(self, out: torch.Tensor, lse: torch.Tensor) -> None:
        self.out, self.lse = out.float(), _wide(lse)

    def add(self, place: Placement, out: torch.Tensor, lse: torch.Tensor) -> None:
        """Merge one part, computed for the rows of `place` only."""
        heads = out.shape[1] * out.shape[2]
        lse = _wide(lse)
        rows = slice(None) if place.everyone else place.rows
        old = self.lse[rows]
        new = torch.logaddexp(old, lse)
        keep = (old - new).exp_()[:, :heads].reshape(*out.shape[:3], 1)
        take = (lse - new).exp_()[:, :heads].reshape(*out.shape[:3], 1)
        if place.everyone:
            self.out.mul_(keep).add_(out.mul_(take))
        else:
            self.out[rows] = self.out[rows].mul_(keep).add_(out.mul_(take))
        self.lse[rows] = new

    def output(self, dtype: torch.dtype) -> torch.Tensor:
        """The merged attention [N, KV, g, D] in `dtype`."""
        return self.out.to(dtype)


def attend_contexts(stack: ContextStack, places: list[Placement], layer: int, qr, scale: float, parts: Parts):
    """Merge into `parts` each row's attention to its context segments; `qr` [N, KV, g, D]."""
    g = qr.shape[2]
    for group, place in zip(stack.groups, places, strict=True):
        if not place.most:
            continue
        out, lse = flash(place.queries(qr), *place.segments(group, layer), scale)
        out, lse = place.gather(out, lse, g)
        parts.add(place, out.float(), lse)


def additive_mask(hidden: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where a key is visible, -inf where `hidden`: adding it equals masked_fill, at a fraction of the cost."""
    return torch.zeros(hidden.shape, dtype=dtype).masked_fill_(hidden, float("-inf"))
