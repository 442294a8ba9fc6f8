"""What the test server answers with (a real model, or a fixed answer) and what goes wrong (`Faults`)."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class Faults:
    """What goes wrong, and how often, on the generation routes."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    latency: float = 0.0
    latency_max: float | None = None
    die_after: int | None = None
    seed: int | None = None

    def delay(self, rng: random.Random) -> float:
        if self.latency_max is not None and self.latency_max > self.latency:
            return rng.uniform(self.latency, self.latency_max)
        return self.latency


@dataclass
class Generation:
    text: str  # includes the stop sequence when generation stopped at one, as TGI does
    finish_reason: str  # length | eos_token | stop_sequence
    token_ids: list[int]
    token_texts: list[str]


class FakeBackend:
    """No model: every prompt gets `answer` (then the first stop sequence)."""

    def __init__(self, answer: str = " Paris", model_id: str = "slick-hf/fake-model", model_sha: str = "fake") -> None:
        self.answer, self.model_id, self.model_sha = answer, model_id, model_sha

    async def generate(self, prompt: str, p: dict) -> Generation:
        words = self.answer.split(" ")[1:] if self.answer.startswith(" ") else self.answer.split(" ")
        tokens = [" " + w for w in words][: p["max_new_tokens"]]
        if len(tokens) >= p["max_new_tokens"] or not p["stop"]:
            return Generation("".join(tokens), "length", list(range(len(tokens))), tokens)
        stop = p["stop"][0]
        return Generation("".join(tokens) + stop, "stop_sequence", list(range(len(tokens) + 1)), [*tokens, stop])


class TransformersBackend:
    """The in-process engine; concurrent requests are queued and batched like TGI does.

    The local engine cuts completions at the stop string, so the server puts the stop sequence
    back when fewer than `max_new_tokens` tokens came out (it then cannot tell an EOS from a stop
    sequence; for SliCK prompts it is the newline). Token logprobs are not computed (0.0).
    """

    def __init__(self, engine, max_batch_size: int = 8) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        prov = engine.info()
        self.model_id = prov.get("model_id", "local-model")
        self.model_sha = prov.get("model_revision")
        self.max_batch_size = max_batch_size
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def generate(self, prompt: str, p: dict) -> Generation:
        from slick_hf.engines.base import GenerationRequest

        if self._loop is not asyncio.get_running_loop():  # first use, or a restarted server
            self._loop = asyncio.get_running_loop()
            self._queue = asyncio.Queue()
            self._worker = asyncio.ensure_future(self._work())
        request = GenerationRequest(
            prompt,
            n=1,
            temperature=p["temperature"] if p["do_sample"] else 0.0,
            top_k=p["top_k"],
            max_new_tokens=p["max_new_tokens"],
            seed=p["seed"] or 0,
            stop=tuple(p["stop"]),
        )
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        text = await future
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= request.max_new_tokens or not request.stop:
            return Generation(text, "length", ids, self._texts(ids))
        stop = request.stop[0]
        stop_ids = self.tokenizer(stop, add_special_tokens=False)["input_ids"]
        return Generation(text + stop, "stop_sequence", ids + stop_ids, self._texts(ids + stop_ids))

    def _texts(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.decode([i]) for i in ids]

    async def _work(self) -> None:
        queue, loop = self._queue, asyncio.get_running_loop()
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            # One generate call batches greedy requests that share their settings.
            groups: dict[tuple, list] = {}
            for req, fut in batch:
                groups.setdefault((req.max_new_tokens, req.stop), []).append((req, fut))
            for items in groups.values():
                live = [(r, f) for r, f in items if not f.cancelled()]
                if not live:
                    continue
                try:
                    outs = await loop.run_in_executor(self._executor, self.engine.generate, [r for r, _ in live])
                except Exception as exc:  # surface model errors as HTTP 500
                    for _, f in live:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for (_, f), out in zip(live, outs, strict=True):
                    if not f.done():
                        f.set_result(out[0])

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
