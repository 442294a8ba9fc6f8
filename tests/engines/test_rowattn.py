"""Context attention of the fast engine's decode steps: slots of fixed size, rows alone or together."""

import pytest
import torch

from slick_hf.engines.fast import plans, rowattn

LAYERS, KV_HEADS, GROUP, DIM = 2, 3, 3, 64


def segments(lengths: list[int], dtype: torch.dtype) -> list[rowattn.Segment]:
    return [
        (torch.randn(LAYERS, KV_HEADS, n, DIM, dtype=dtype), torch.randn(LAYERS, KV_HEADS, n, DIM, dtype=dtype))
        for n in lengths
    ]


def context_attention(stack: rowattn.ContextStack, unit_of_row: torch.Tensor, queries: torch.Tensor, layer: int):
    """Each row's attention to its unit's context, merged as the engine merges parts (no own part here)."""
    places = [rowattn.Placement(group, unit_of_row, plans.DECODE_SLOT_ROWS) for group in stack.groups]
    rows = len(unit_of_row)
    parts = rowattn.Parts(torch.zeros(rows, KV_HEADS, GROUP, DIM), torch.full((rows, KV_HEADS, GROUP), float("-inf")))
    rowattn.attend_contexts(stack, places, layer, queries, DIM**-0.5, parts)
    return parts.out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_slots_give_each_row_the_same_result_alone_or_with_others(dtype):
    torch.manual_seed(0)
    # one unit per segment; 1, 6 and 11 rows: one slot, a full slot plus one row, two full slots plus one
    stack = rowattn.ContextStack([[seg] for seg in segments([7, 30, 45], dtype)])
    unit_of_row = torch.tensor([2] * 11 + [0] + [1] * 6)[torch.randperm(18)]
    queries = torch.randn(18, KV_HEADS, GROUP, DIM, dtype=dtype)
    together = context_attention(stack, unit_of_row, queries, layer=1)
    for r in range(18):
        alone = context_attention(stack, unit_of_row[r : r + 1], queries[r : r + 1], layer=1)
        assert torch.equal(alone[0], together[r])

    # and it is attention: softmax(q k^T / sqrt(d)) v over the unit's own keys, within float rounding
    for r in range(18):
        keys, values = (t[1].float() for t in stack_segment(stack, int(unit_of_row[r])))
        q = queries[r].float()  # [KV, g, D]
        weights = torch.softmax(q @ keys.transpose(1, 2) * DIM**-0.5, dim=-1)
        expected = weights @ values
        tolerance = 1e-4 if dtype == torch.float32 else 3e-2
        torch.testing.assert_close(together[r], expected, atol=tolerance, rtol=tolerance)


def stack_segment(stack: rowattn.ContextStack, unit: int) -> rowattn.Segment:
    """The unpadded keys and values [layers, KV, n, D] of `unit`'s (only) segment."""
    for group in stack.groups:
        g = int(group.member[unit])
        if g >= 0:
            visible = group.bias[g, 0, 0] == 0
            return group.keys[:, g][:, :, visible], group.values[:, g][:, :, visible]
    raise AssertionError(f"unit {unit} has no segment")
