"""Row-invariant matrix products: a token's result must not depend on the rows it is computed with.

CPU BLAS kernels pick their algorithm (and how they split the work over threads) by the shape of
the call, so a row can get other bits when it is multiplied together with more or fewer rows.
Two arrangements make every linear layer row-invariant while padding is on:

- `checked` (float32): every call gets at least `MIN_ROWS` rows (zero rows, dropped after), and a
  layer found to change above `MAX_ROWS` rows (`rows_invariant` tests each layer shape) is run in
  blocks of at most `MAX_ROWS`. Measured with torch 2.13 on Sapphire Rapids: the 1536->576
  projection changes between 33 and 256 rows, the others hold from 16 rows on.
- `fixed` (bfloat16): every call has exactly the phase's `BLOCK_ROWS` rows (the last block padded
  with zero rows). oneDNN's bf16 kernels change with the row count in ranges that differ per layer
  shape (Sapphire Rapids, torch 2.13, real activations: the 1536->576 projection differs from a
  128-row block at 4-36 rows and from 256 rows on, the 576->576 output projection at 31-32 rows),
  and whether two row counts agree depends on the data: random inputs agree where real activations
  do not. So no row count is trusted but the one fixed block: the same call, whatever the batch.
  Prefills (a few thousand rows) use blocks of 512, decode steps and the output layer blocks of
  64; a token is always computed by the same phase, so each phase only needs to agree with
  itself. Blocks on unpacked weights are written straight into the output; oneDNN's prepacked
  product has no output argument, so its blocks are concatenated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

MIN_ROWS = 16  # `checked`: every call gets at least this many rows (fp32 row results are invariant from ~12 on)
MAX_ROWS = 32
# bf16 blocks: decode steps (a few to a few hundred rows) and the output layer in blocks of 64 rows
# on prepacked weights (48 geo examples, in-process: 64 rows 8.35 s, 128 rows 8.58 s, 32 rows 8.70 s),
# prefills (up to max_prefill_tokens rows) in blocks of 512 (hot matmuls: 2.3 TFLOPS, 1.5 at 128 rows)
BLOCK_ROWS = {"decode": 64, "prefill": 512}
PACKED_ROWS = BLOCK_ROWS["decode"]  # bf16 blocks of this size run on weights pre-reordered for oneDNN (`_pack`)
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
        self.phase = "decode"
        self.output_layer = model.get_output_embeddings()
        self._last_input: tuple[torch.Tensor, int, torch.Tensor] | None = None  # `_padded_input`
        self.packed: dict[int, torch.Tensor] = {}  # id() of a layer -> its weight reordered for PACKED_ROWS rows

    @property
    def arrangement(self) -> str:
        """How products are arranged: `fixed` blocks of BLOCK_ROWS rows, or `checked` padding and blocks."""
        return "fixed" if self.fixed else "checked"

    def install(self) -> None:
        """Wrap every `Linear` (and GPT-2 style `Conv1D`) forward of the model, once."""
        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D":
                self._wrap(module)
        if self.fixed:
            self._pack()

    def _wrap(self, module: torch.nn.Module) -> None:
        original = module.forward

        def forward(x):
            rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
            if not self.active or rows == 0:
                return original(x)
            flat = x.reshape(rows, x.shape[-1])
            if self.fixed:
                out = self._fixed_blocks(module, original, x, flat)
            elif MIN_ROWS <= rows and (rows <= MAX_ROWS or id(module) not in self.blocked):
                return original(x)
            else:
                block = MAX_ROWS if id(module) in self.blocked else rows
                parts = [original(_pad_rows(flat[i : i + block], MIN_ROWS)) for i in range(0, rows, block)]
                out = torch.cat(parts)[:rows]
            return out.reshape(*x.shape[:-1], out.shape[-1])

        module.forward = forward

    def _fixed_blocks(self, module: torch.nn.Module, original, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """`fixed`: blocks of the phase's size (the last one padded with zero rows)."""
        block_rows = BLOCK_ROWS["decode" if module is self.output_layer else self.phase]
        padded = self._padded_input(x, flat, block_rows)
        starts = range(0, padded.shape[0], block_rows)
        packed = self.packed.get(id(module)) if block_rows == PACKED_ROWS else None
        if packed is not None:
            outs = [
                torch.ops.mkldnn._linear_pointwise(padded[i : i + block_rows], packed, module.bias, "none", [], "")
                for i in starts
            ]
        elif isinstance(module, torch.nn.Linear):
            out = padded.new_empty(padded.shape[0], module.out_features)
            for i in starts:  # the kernel F.linear calls, written in place
                if module.bias is None:
                    torch.mm(padded[i : i + block_rows], module.weight.t(), out=out[i : i + block_rows])
                else:
                    torch.addmm(module.bias, padded[i : i + block_rows], module.weight.t(), out=out[i : i + block_rows])
            return out[: flat.shape[0]]
        else:  # GPT-2 Conv1D: through its own forward
            outs = [original(padded[i : i + block_rows]) for i in starts]
        return (outs[0] if len(outs) == 1 else torch.cat(outs))[: flat.shape[0]]

    def _padded_input(self, x: torch.Tensor, flat: torch.Tensor, block_rows: int) -> torch.Tensor:
        """`flat` with zero rows up to a multiple of `block_rows`; made once for layers that share an input.

        The q/k/v (and gate/up) projections get the same tensor object: the padded copy of the last
        input is kept with a reference to it, so its memory cannot be reused while cached.
        """
        last = self._last_input
        if last is not None and last[0] is x and last[1] == block_rows:
            return last[2]
        rows = flat.shape[0]
        padded = flat.new_empty(-(-rows // block_rows) * block_rows, flat.shape[1])
        padded[:rows] = flat
        padded[rows:] = 0
        self._last_input = (x, block_rows, padded)
        return padded

    def _pack(self) -> None:
        """bf16 on oneDNN: every weight also reordered once into the kernel's layout for PACKED_ROWS rows.

        Used by the decode-phase products and the output layer. Measured on Sapphire Rapids (30
        layers' weights, 128 rows): 576->1536 183 -> 112 us, the 576->49152 head 4.8 -> 2.9 ms;
        the products are bit-identical to `F.linear` at 128 rows. Costs a second copy of the weights.
        """
        mkldnn = torch.ops.mkldnn
        if not (
            torch.backends.mkldnn.is_available()
            and hasattr(mkldnn, "_reorder_linear_weight")
            and hasattr(mkldnn, "_is_mkldnn_bf16_supported")
            and mkldnn._is_mkldnn_bf16_supported()  # CPUs without AVX512-BF16/AMX: plain products
        ):
            return
        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear) and module.weight.dtype == torch.bfloat16:
                self.packed[id(module)] = torch.ops.mkldnn._reorder_linear_weight(module.weight, PACKED_ROWS)

    @contextlib.contextmanager
    def padding(self, phase: str = "decode") -> Iterator[None]:
        """Arrange products as above while the block runs (`phase`: "prefill" or "decode")."""
        self.active, self.phase = True, phase
        try:
            yield
        finally:
            self.active, self._last_input = False, None

    def _invariant(self, module: torch.nn.Module, x: torch.Tensor) -> bool:
        ref = module(x[:1])[0]
        for m in CHECK_ROWS:
            rows = torch.cat([x[1:m], x[:1]])
            if not torch.equal(module(rows)[-1], ref) or not torch.equal(module(x[:m])[0], ref):
                return False
        return True

    def rows_invariant(self) -> bool:
        """`checked`: find the layers that need blocks, then confirm each layer shape is row-invariant.

        `fixed` is invariant by construction (every call of a phase has the same shape).
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
