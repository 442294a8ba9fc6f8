"""The fast engine's key/value cache: exemplar prefixes and whole prompts, byte-bounded LRU."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

KV = tuple[torch.Tensor, torch.Tensor]  # (keys, values), each [layers, kv_heads, length, head_dim]


def kv_bytes(kv: KV) -> int:
    """Bytes held by a (keys, values) pair."""
    return sum(t.numel() * t.element_size() for t in kv)


@dataclass(eq=False)
class PrefixEntry:
    """The keys/values of an exemplar prefix shared by many prompts."""

    tokens: tuple[int, ...]
    kv: KV
    nbytes: int


@dataclass(eq=False)
class PromptEntry:
    """A prompt: its prefix entry, its own suffix keys/values and its next-token logits."""

    tokens: tuple[int, ...]
    prefix: PrefixEntry | None
    suffix_kv: KV
    logits: torch.Tensor  # next-token logits after the prompt, in the model's dtype [vocab]
    nbytes: int

    @property
    def segments(self) -> tuple[KV, ...]:
        """The context a prompt's continuations attend to, in order."""
        return (self.prefix.kv, self.suffix_kv) if self.prefix is not None else (self.suffix_kv,)

    def __len__(self) -> int:
        return len(self.tokens)


class KVCache:
    """Byte-bounded LRU of exemplar prefixes and of prompts; evicting a prefix drops its prompts."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.prefixes: OrderedDict[tuple[int, ...], PrefixEntry] = OrderedDict()
        self.prompts: OrderedDict[tuple[int, ...], PromptEntry] = OrderedDict()
        self.nbytes = 0
        self.hits = {"prefix": 0, "prompt": 0}
        self.misses = {"prefix": 0, "prompt": 0}

    def get_prefix(self, key: tuple[int, ...]) -> PrefixEntry | None:
        """A cached prefix (marked recently used), or None."""
        entry = self.prefixes.get(key)
        if entry is not None:
            self.prefixes.move_to_end(key)
        self._count("prefix", entry)
        return entry

    def get_prompt(self, key: tuple[int, ...]) -> PromptEntry | None:
        """A cached prompt (it and its prefix marked recently used), or None."""
        entry = self.prompts.get(key)
        if entry is not None:
            self.prompts.move_to_end(key)
            if entry.prefix is not None:
                self.prefixes.move_to_end(entry.prefix.tokens, last=True)
        self._count("prompt", entry)
        return entry

    def put_prefix(self, entry: PrefixEntry) -> None:
        """Cache a prefix, evicting the least recently used entries past the byte budget."""
        if entry.tokens not in self.prefixes:
            self.prefixes[entry.tokens] = entry
            self.nbytes += entry.nbytes
            self._evict()

    def put_prompt(self, entry: PromptEntry) -> None:
        """Cache a prompt whose prefix is still cached."""
        if entry.tokens in self.prompts:
            return
        if entry.prefix is not None and entry.prefix.tokens not in self.prefixes:
            return  # its prefix was evicted meanwhile: caching the prompt would pin it unaccounted
        self.prompts[entry.tokens] = entry
        self.nbytes += entry.nbytes
        self._evict()

    def clear(self) -> None:
        """Drop everything."""
        self.prefixes.clear()
        self.prompts.clear()
        self.nbytes = 0

    def _count(self, kind: str, entry) -> None:
        (self.hits if entry is not None else self.misses)[kind] += 1

    def _evict(self) -> None:
        while self.nbytes > self.max_bytes and (self.prompts or self.prefixes):
            if self.prompts:
                _, entry = self.prompts.popitem(last=False)
                self.nbytes -= entry.nbytes
                continue
            _, prefix = self.prefixes.popitem(last=False)
            self.nbytes -= prefix.nbytes
