"""Fast in-process engine: shared prefix caches, one forward per distinct sample prefix.

What SliCK's workload lets an engine skip, and how this one does it:

- Exemplar prefixes are shared by every question of a relation: their keys/values are computed
  once and kept in a byte-bounded LRU cache keyed by their tokens (`prefix_cache`); a prompt
  then only prefills its question suffix. Prompts (prefix + suffix KV and next-token logits)
  are cached too, so the sampling call after the greedy call prefills nothing.
- The greedy answer and the 16 samples of a prompt share the whole prompt, and at T = 0.5 most
  samples share their first tokens: the rows of one prompt form a trie, and each distinct trie
  node is run through the model once; every sample row then draws its own next token from that
  node's distribution, with its own seeded stream. This is exactly the distribution of 16
  independent sequences (identical prefixes have identical next-token distributions).
- Rows end on their own (stop string, EOS, max_new_tokens) and leave the batch at once; prompts
  are batched together as a flat token list (no padding, no wasted rows).
- Batch invariance: attention (`rowattn`) and every matrix product are arranged so a token's
  logits are bit-identical whatever it is batched with, so sampled completions depend only on
  their request (prompt, n, temperature, top_k, seed, ...), as the Engine contract requires.
- In float32, greedy answers equal plain `model.generate` on the prompt alone. Logits here differ
  from that computation order only in the last float bits, far below any real gap between the two
  best tokens; when the gap at some step is below `tie_margin` the request is re-run with plain
  `generate` (unpadded, batch of one), so the answer is the reference one by construction. In
  bfloat16 the two orders differ by more than many logit gaps (plain bf16 `generate` itself answers
  9 of 200 geo prompts otherwise when they are batched by 8), so the fast path's own greedy answer
  is kept (189 of 200 agree with plain bf16 `generate` one at a time: benchmarks/README.md).

Models whose attention does not go through `transformers`' AttentionInterface (or that use a
sliding window shorter than a prompt) are served by the plain path, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from slick_hf.engines.base import BATCH_PROMPTS, GenerationRequest, truncate_at_stop
from slick_hf.engines.fast import plans, rowattn
from slick_hf.engines.fast.cache import KV, KVCache, PrefixEntry, PromptEntry, kv_bytes
from slick_hf.engines.fast.linears import RowPadding
from slick_hf.engines.fast.sampling import greedy_choice, request_uniforms, sampling_distribution
from slick_hf.engines.plain import PlainTransformersEngine
from slick_hf.hardware import resolve_dtype

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Node:
    """A distinct generated prefix of one prompt: the rows (members) that share it."""

    unit: int
    tokens: tuple[int, ...]
    members: list[tuple[int, int]]  # (request index, sample index)
    parent_row: int = -1
    row: int = -1
    logits: torch.Tensor | None = None
    top: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass
class _Stats:
    forwards: int = 0
    tokens_forwarded: int = 0
    draws: int = 0
    reference_fallbacks: int = 0

    def summary(self) -> str:
        """One line for the end of a run: how much work the prefix sharing left to do."""
        return (
            f"{self.draws} tokens drawn with {self.tokens_forwarded} tokens forwarded in {self.forwards} "
            f"forward passes; {self.reference_fallbacks} greedy steps re-run with plain generate (near ties)"
        )


class TransformersEngine(PlainTransformersEngine):
    """A causal LM in this process, with prefix caching, sample dedupe and batch invariance.

    The default in-process engine; `PlainTransformersEngine` is its reference and fallback.

    `batch_size` is the number of prompts decoded together (their rows share each forward pass).
    `max_cache_bytes` bounds the prefix/prompt key-value cache.
    """

    name = "transformers"
    # fp32: a greedy step whose top-2 logit gap is under this is re-run with plain generate, so greedy
    # answers are plain generate's by construction. bf16 computes in coarser steps than the gap between
    # computation orders (benchmarks/README.md): there the fast path's own greedy answer is kept.
    tie_margins = {"float32": 1e-2, "bfloat16": 0.0}
    max_prefill_tokens = 2048  # tokens per prefill forward pass

    def __init__(
        self,
        model: str,
        batch_size: int | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
        max_cache_bytes: int = 1 << 30,
    ) -> None:
        dtype = resolve_dtype(dtype, device)
        batch_size = BATCH_PROMPTS.get(dtype, BATCH_PROMPTS["float32"]) if batch_size is None else batch_size
        super().__init__(model, max(1, batch_size), device, dtype, trust_remote_code)
        self.cache = KVCache(max_cache_bytes)
        self.stats = _Stats()
        self.tie_margin = self.tie_margins.get(self.dtype, 0.0)
        config = self.model.config
        self.num_layers = config.num_hidden_layers
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list | tuple) else [eos]) - {None}
        self.linears = RowPadding(self.model)
        self.fast_reason = self._unsupported_reason()
        self.fast = self.fast_reason is None
        self.batch_invariant = False
        if self.fast:
            rowattn.register()
            self._plain_impl = config._attn_implementation
            self.model.set_attn_implementation(rowattn.IMPL_NAME)
            self.linears.install()
            self.batch_invariant = self.linears.rows_invariant()
            if not self.batch_invariant:
                logger.warning(
                    "this BLAS does not give row-invariant matrix products; sampled completions may "
                    "depend on batch composition in rare float-rounding ties"
                )
        else:
            logger.warning("%s: fast path unavailable (%s); using plain generate", self.name, self.fast_reason)
        self._needs_reference: set[int] = set()

    # ------------------------------------------------------------------ Engine interface
    def close(self) -> None:
        """Drop the key/value cache."""
        self.cache.clear()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """Every request's completions, decoded as tries over cached prompts (see the module doc)."""
        if not requests:
            return []
        self.check_fits(requests)
        if not self.fast or self._too_long(requests):
            return self.plain_generate(requests)
        results: list[list[str | None]] = [[None] * r.n for r in requests]
        by_prompt: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            if r.max_new_tokens <= 0:
                results[i] = [""] * r.n
                continue
            by_prompt.setdefault(r.prompt, []).append(i)
        self._needs_reference = set()
        prompts = list(by_prompt)
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                wave = prompts[start : start + self.batch_size]
                entries = self._prompt_entries(wave)
                self._decode(wave, entries, by_prompt, requests, results)
        redo = sorted(self._needs_reference)  # greedy requests with a near-tie step
        self.stats.reference_fallbacks += len(redo)
        for i, texts in zip(redo, self.plain_generate([requests[i] for i in redo]), strict=True):
            results[i] = texts
        return [[truncate_at_stop(t, r.stop) for t in res] for r, res in zip(requests, results, strict=True)]

    # ------------------------------------------------------------------ setup
    def _unsupported_reason(self) -> str | None:
        if self.model.device.type != "cpu":  # row invariance and the row attention are built for CPU BLAS
            return f"the fast path runs on CPU only, not {self.model.device.type}"
        if not getattr(self.model, "_supports_attention_backend", False):
            return f"{type(self.model).__name__} does not use transformers' AttentionInterface"
        if getattr(self.model.config, "is_encoder_decoder", False):
            return "encoder-decoder models are not supported"
        return None

    def _too_long(self, requests: Sequence[GenerationRequest]) -> bool:
        window = getattr(self.model.config, "sliding_window", None)
        if not window:
            return False
        longest = max(len(self.tokenizer(r.prompt)["input_ids"]) + r.max_new_tokens for r in requests)
        return longest > window

    @contextlib.contextmanager
    def _plain_mode(self) -> Iterator[None]:
        if not self.fast:
            yield
            return
        self.model.set_attn_implementation(self._plain_impl)
        try:
            yield
        finally:
            self.model.set_attn_implementation(rowattn.IMPL_NAME)

    # ------------------------------------------------------------------ prompts and prefill
    def _split(self, prompt: str) -> tuple[list[int], int]:
        """Prompt token ids (as `tokenizer(prompt)` gives them) and the length of its shared prefix.

        The prefix is every token inside the text up to the last blank line (the few-shot
        exemplars), so it is the same for every question asked with the same exemplars.
        """
        cut = prompt.rfind("\n\n")
        if cut < 0 or not self.tokenizer.is_fast:
            return self.tokenizer(prompt)["input_ids"], 0
        enc = self.tokenizer(prompt, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        k = 0
        while k < len(ids) and offsets[k][1] <= cut + 2:
            k += 1
        return ids, min(k, len(ids) - 1)

    def _prompt_entries(self, prompts: Sequence[str]) -> dict[str, PromptEntry]:
        entries: dict[str, PromptEntry] = {}
        missing: list[tuple[str, list[int], int]] = []
        for p in prompts:
            ids, k = self._split(p)
            entry = self.cache.get_prompt(tuple(ids))
            if entry is not None:
                entries[p] = entry
            else:
                missing.append((p, ids, k))
        if not missing:
            return entries
        prefixes: dict[tuple[int, ...], PrefixEntry | None] = {}
        for _, ids, k in missing:
            if k > 0:
                key = tuple(ids[:k])
                if key not in prefixes:
                    prefixes[key] = self.cache.get_prefix(key)
        todo = [key for key, entry in prefixes.items() if entry is None]
        for key, kv in zip(todo, self._prefill([(list(key), (), 0) for key in todo], logits=False)[0], strict=True):
            prefixes[key] = PrefixEntry(key, kv, kv_bytes(kv))
            self.cache.put_prefix(prefixes[key])
        jobs = []
        for _, ids, k in missing:
            prefix = prefixes[tuple(ids[:k])] if k > 0 else None
            jobs.append((ids[k:], prefix, k))
        contexts = {id(p): (p.kv,) for _, p, _ in jobs if p is not None}  # one tuple per prefix: shared
        kvs, logits = self._prefill([(s, contexts[id(p)] if p else (), k) for s, p, k in jobs], logits=True)
        for (p, ids, _k), (_, prefix, _), kv, lg in zip(missing, jobs, kvs, logits, strict=True):
            entry = PromptEntry(tuple(ids), prefix, kv, lg, kv_bytes(kv) + lg.numel() * lg.element_size())
            self.cache.put_prompt(entry)
            entries[p] = entry
        return entries

    def _prefill(self, jobs: Sequence[tuple[list[int], tuple[KV, ...], int]], logits: bool) -> tuple[list[KV], list]:
        """Run each job's tokens (after its context KV, at positions from `start`).

        Returns each job's new KV and, if asked, the logits after its last token.
        """
        kvs: list[KV] = []
        outs: list[torch.Tensor] = []
        batch: list[tuple[list[int], tuple[KV, ...], int]] = []
        size = 0
        for job in [*jobs, None]:
            if job is not None and (not batch or size + len(job[0]) <= self.max_prefill_tokens):
                batch.append(job)
                size += len(job[0])
                continue
            if batch:
                k, o = self._prefill_batch(batch, logits)
                kvs += k
                outs += o
            batch, size = ([job], len(job[0])) if job is not None else ([], 0)
        return kvs, outs

    def _prefill_batch(self, jobs, logits: bool) -> tuple[list[KV], list[torch.Tensor]]:
        ids, pos, units = [], [], []
        for tokens, context, start in jobs:
            units.append(plans.PrefillUnit(len(ids), len(tokens), context))
            ids += tokens
            pos += range(start, start + len(tokens))
        plan = plans.PrefillPlan(units, self.num_layers)
        last = torch.tensor([u.start + u.length - 1 for u in units]) if logits else torch.tensor([0])
        out = self._forward(ids, pos, plan, last)
        keys = torch.stack([k for k, _ in plan.captured])  # [layers, KV, N, D]
        values = torch.stack([v for _, v in plan.captured])
        end = [u.start + u.length for u in units]
        kvs = [
            (keys[:, :, u.start : e].clone(), values[:, :, u.start : e].clone())
            for u, e in zip(units, end, strict=True)
        ]
        return kvs, ([row.clone() for row in out] if logits else [])

    def _forward(self, ids: list[int], pos: list[int], plan, keep: torch.Tensor | None) -> torch.Tensor:
        self.stats.forwards += 1
        self.stats.tokens_forwarded += len(ids)
        input_ids = torch.tensor([ids], device=self.device)
        position_ids = torch.tensor([pos], device=self.device)
        phase = "decode" if isinstance(plan, plans.DecodePlan) else "prefill"
        with rowattn.planned(plan), self.linears.padding(phase):
            out = self.model(
                input_ids=input_ids,
                position_ids=position_ids,
                use_cache=False,
                logits_to_keep=keep if keep is not None else 0,
            )
        return out.logits[0]

    # ------------------------------------------------------------------ decoding
    def _decode(self, wave, entries, by_prompt, requests, results) -> None:
        """Decode every request of the prompts in `wave` as a trie of distinct prefixes per prompt."""
        units = [entries[p] for p in wave]
        contexts = rowattn.ContextStack([e.segments for e in units])
        lengths = contexts.lengths
        generators = {
            i: torch.Generator().manual_seed(int(requests[i].seed))
            for p in wave
            for i in by_prompt[p]
            if not requests[i].greedy
        }
        top_ks = [requests[i].top_k for p in wave for i in by_prompt[p] if not requests[i].greedy]
        # top-k sampling reads the k best scores from here unless the k-th ties with the last one kept:
        # bf16 logits tie often, so keep twice as many
        kmax = max([2] + [2 * k + 1 for k in top_ks if k])
        # scores stay in the model's dtype (bf16 -> float32 is exact where a row is read) and are dropped
        # as soon as every row has drawn from them: a step of 2,000 rows holds 200 MB of bf16 scores
        scores = torch.stack([e.logits for e in units])
        top = torch.topk(scores, min(kmax, scores.shape[-1]), dim=-1)
        active: list[_Node] = []
        for u, p in enumerate(wave):
            members = [(i, s) for i in by_prompt[p] for s in range(1 if requests[i].greedy else requests[i].n)]
            active.append(_Node(u, (), members, logits=scores[u], top=(top.values[u], top.indices[u])))
        own = None
        unit_map = list(range(len(units)))  # each unit's index in `contexts`
        stacked = len(units)
        while active:
            uniforms = {}
            for i in sorted({i for node in active for i, _ in node.members if i in generators}):
                uniforms[i] = request_uniforms(generators[i], requests[i].n)
            children = [child for node in active for child in self._expand(node, requests, uniforms, results)]
            scores = top = None
            if not children:
                return
            live_units = sorted({c.unit for c in children})
            if len(live_units) <= stacked // 2 and stacked > 4:  # restack the contexts still attended to
                contexts = rowattn.ContextStack([units[u].segments for u in live_units])
                stacked = len(live_units)
                for new, u in enumerate(live_units):
                    unit_map[u] = new
            ids, pos, parents = [], [], []
            for r, child in enumerate(children):
                child.row = r
                ids.append(child.tokens[-1])
                pos.append(lengths[child.unit] + len(child.tokens) - 1)
                parents.append(child.parent_row)
            plan = plans.DecodePlan(
                contexts,
                torch.tensor([unit_map[c.unit] for c in children]),
                own,
                torch.tensor(parents) if own is not None else None,
                self.num_layers,
            )
            scores = self._forward(ids, pos, plan, None)
            top = torch.topk(scores, min(kmax, scores.shape[-1]), dim=-1)
            own = plan.new_own
            for r, child in enumerate(children):
                child.logits, child.top = scores[r], (top.values[r], top.indices[r])
            active = children

    def _expand(self, node: _Node, requests, uniforms, results) -> list[_Node]:
        """Each member of `node` picks its next token; finished members get their text."""
        by_token: dict[int, list[tuple[int, int]]] = {}
        dists = {}
        for i, s in node.members:
            req = requests[i]
            if req.greedy:
                token, margin = greedy_choice(node.logits, node.top)
                if margin < self.tie_margin:
                    self._needs_reference.add(i)
                    continue
            else:
                key = (req.temperature, req.top_k)
                if key not in dists:
                    dists[key] = sampling_distribution(node.logits, req.temperature, req.top_k, node.top)
                token = dists[key].draw(uniforms[i][s])
                self.stats.draws += 1
            by_token.setdefault(token, []).append((i, s))
        node.logits = node.top = None
        children = []
        for token, members in by_token.items():
            tokens = (*node.tokens, token)
            text = self.tokenizer.decode(list(tokens), skip_special_tokens=True)
            going = []
            for i, s in members:
                req = requests[i]
                done = (
                    token in self.eos_ids or len(tokens) >= req.max_new_tokens or any(stop in text for stop in req.stop)
                )
                if not done:
                    going.append((i, s))
                elif req.greedy:
                    results[i] = [text] * req.n
                else:
                    results[i][s] = text
            if going:
                children.append(_Node(node.unit, tokens, going, parent_row=node.row))
        return children

    # ------------------------------------------------------------------ plain paths
    def plain_generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """The reference path: `model.generate` per request (greedy: unpadded, batch of one;
        sampled: `torch.manual_seed(seed)` then `num_return_sequences=n`, as PlainTransformersEngine)."""
        out = []
        with self._plain_mode():
            for r in requests:
                if r.greedy:
                    out.append(self.generate_batch([r], do_sample=False) * r.n)
                else:
                    torch.manual_seed(r.seed)
                    out.append(self.generate_batch([r], do_sample=True))
        return out
