"""Row-invariant matrix products: every linear layer gets at least `MIN_ROWS` rows while padding is on.

CPU BLAS kernels give a row the same result whatever the other rows are once a call has about a
dozen rows; below that, some switch kernels. Padding small calls with zero rows (dropped after)
makes a token's logits independent of how many tokens it was batched with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from slick_hf.engines.fast.rowattn import MIN_ROWS


class RowPadding:
    """Wraps a model's linear layers so that, inside `padding()`, each call has >= MIN_ROWS rows."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.active = False

    def install(self) -> None:
        """Wrap every `Linear` (and GPT-2 style `Conv1D`) forward of the model, once."""
        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
                self._wrap(module)

    def _wrap(self, module: torch.nn.Module) -> None:
        original = module.forward

        def forward(x):
            rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
            if not self.active or rows >= MIN_ROWS or rows == 0:
                return original(x)
            flat = x.reshape(rows, x.shape[-1])
            padded = torch.cat([flat, flat.new_zeros(MIN_ROWS - rows, flat.shape[-1])])
            out = original(padded)[:rows]
            return out.reshape(*x.shape[:-1], out.shape[-1])

        module.forward = forward

    @contextlib.contextmanager
    def padding(self) -> Iterator[None]:
        """Pad small products while the block runs."""
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def rows_invariant(self) -> bool:
        """Check that a row's product does not depend on the other rows (the BLAS property we use)."""
        gen = torch.Generator().manual_seed(0)
        seen = set()
        with torch.inference_mode(), self.padding():
            for module in self.model.modules():
                if not isinstance(module, torch.nn.Linear):
                    continue
                shape = tuple(module.weight.shape)
                if shape in seen:
                    continue
                seen.add(shape)
                x = torch.randn(130, module.in_features, generator=gen, dtype=module.weight.dtype)
                ref = module(x[:1])[0]
                for m in (2, 5, 16, 17, 31, 64, 130):
                    rows = torch.cat([x[1:m], x[:1]])
                    if not torch.equal(module(rows)[-1], ref) or not torch.equal(module(x[:m])[0], ref):
                        return False
        return True
