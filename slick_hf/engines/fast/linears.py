"""Row-invariant matrix products: a token's result must not depend on the rows it is computed with.

CPU BLAS kernels pick their algorithm (and how they split the work over threads) by the shape of
the call, so a row can get other bits when it is multiplied together with more or fewer rows.
Two arrangements make every linear layer row-invariant while padding is on:

- `checked` (float32): every call gets at least `MIN_ROWS` rows (zero rows, dropped after), and a
  layer found to change above `MAX_ROWS` rows (`rows_invariant` tests each layer shape) is run in
  blocks of at most `MAX_ROWS`. Measured with torch 2.13 on Sapphire Rapids: the 1536->576
  projection changes between 33 and 256 rows, the others hold from 16 rows on.
- `fixed` (bfloat16): every call has exactly `BLOCK_ROWS` rows. In bf16 a row-count check on
  random inputs passes while real batches still differ (oneDNN's AMX kernels change their work
  split with the row count), so only one fixed shape is safe: the same call, whatever the batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from slick_hf.engines.fast.rowattn import MIN_ROWS

MAX_ROWS = 32
BLOCK_ROWS = 128  # bf16: fastest fixed block measured (64: 3.5 ex/s, 128: 3.7, 256: 3.6 on 48 geo examples)
CHECK_ROWS = (2, 5, 16, 17, 31, 33, 64, 130)


def _pad_rows(flat: torch.Tensor, rows: int) -> torch.Tensor:
    return flat if flat.shape[0] >= rows else torch.cat([flat, flat.new_zeros(rows - flat.shape[0], flat.shape[-1])])


class RowPadding:
    """Wraps a model's linear layers so that, inside `padding()`, each call is row-invariant."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.active = False
        self.fixed = model.dtype != torch.float32
        self.blocked: set[int] = set()  # `checked`: id() of layers run in blocks of at most MAX_ROWS

    @property
    def arrangement(self) -> str:
        """How products are arranged: `fixed` blocks of BLOCK_ROWS rows, or `checked` padding and blocks."""
        return "fixed" if self.fixed else "checked"

    def install(self) -> None:
        """Wrap every `Linear` (and GPT-2 style `Conv1D`) forward of the model, once."""
        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
                self._wrap(module)

    def _wrap(self, module: torch.nn.Module) -> None:
        original = module.forward

        def forward(x):
            rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
            if not self.active or rows == 0:
                return original(x)
            if not self.fixed and MIN_ROWS <= rows and (rows <= MAX_ROWS or id(module) not in self.blocked):
                return original(x)
            flat = x.reshape(rows, x.shape[-1])
            if self.fixed:
                block = BLOCK_ROWS
            elif id(module) in self.blocked:
                block = MAX_ROWS
            else:
                block = rows
            out = torch.cat([original(_pad_rows(flat[i : i + block], MIN_ROWS if not self.fixed else block))
                             for i in range(0, rows, block)])[:rows]  # fmt: skip
            return out.reshape(*x.shape[:-1], out.shape[-1])

        module.forward = forward

    @contextlib.contextmanager
    def padding(self) -> Iterator[None]:
        """Arrange products as above while the block runs."""
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def _invariant(self, module: torch.nn.Module, x: torch.Tensor) -> bool:
        ref = module(x[:1])[0]
        for m in CHECK_ROWS:
            rows = torch.cat([x[1:m], x[:1]])
            if not torch.equal(module(rows)[-1], ref) or not torch.equal(module(x[:m])[0], ref):
                return False
        return True

    def rows_invariant(self) -> bool:
        """`checked`: find the layers that need blocks, then confirm each layer shape is row-invariant.

        `fixed` is invariant by construction (every call has the same shape).
        """
        if self.fixed:
            return True
        gen = torch.Generator().manual_seed(0)
        seen: dict[tuple, tuple[bool, bool]] = {}  # weight shape -> (invariant, needs blocks)
        ok = True
        with torch.inference_mode(), self.padding():
            for module in self.model.modules():
                if not isinstance(module, torch.nn.Linear):
                    continue
                shape = tuple(module.weight.shape)
                if shape not in seen:
                    x = torch.randn(max(CHECK_ROWS), module.in_features, generator=gen, dtype=module.weight.dtype)
                    if self._invariant(module, x):
                        seen[shape] = (True, False)
                    else:
                        self.blocked.add(id(module))
                        seen[shape] = (self._invariant(module, x), True)
                        self.blocked.discard(id(module))
                invariant, needs_blocks = seen[shape]
                if needs_blocks:
                    self.blocked.add(id(module))
                ok = ok and invariant
        return ok
