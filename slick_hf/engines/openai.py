"""OpenAI-compatible engine (vLLM, SGLang, llama.cpp's server, TGI's `/v1`), on `openai.AsyncOpenAI`.

Uses the legacy `/v1/completions` route (plain prompts, no chat template), with `n` where the
server honours it. Whether it does is found out once, on the first sampled request: a server that
rejects `n > 1` (400/422) or returns fewer choices than asked is sent one request per sample from
then on, sample `i` seeded with `sample_seed(request.seed, i)`. Top-k goes in the request body
(`top_k`), the way vLLM, SGLang and llama.cpp accept it. The API key is `api_key`, else
`OPENAI_API_KEY`, else the Hugging Face token (for Inference Endpoints), else a placeholder.
With `request_seeds=False` (`--no-request-seeds`) no request carries a seed: vLLM on CPU stops its
engine on a seeded request; the samples then depend on the server's scheduling and are not reproducible.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

from slick_hf.engines.base import GenerationRequest, truncate_at_stop
from slick_hf.engines.remote import RemoteEngine, sample_seed
from slick_hf.engines.retry import Endpoint
from slick_hf.errors import SlickError

logger = logging.getLogger(__name__)


def _openai():
    try:
        import openai
    except ImportError:
        raise SlickError("the openai engine needs the openai package: pip install openai") from None
    return openai


class OpenAIEngine(RemoteEngine):
    """Completions from `/v1/completions` of OpenAI-compatible servers.

    `info()` reports the model id the server lists at `/v1/models` (a warning is logged when it is
    not the model the user named); the request's `model` field is that id.
    """

    name = "openai"

    def __init__(
        self, model: str, endpoints: Sequence[str], api_key: str | None = None, request_seeds: bool = True, **kwargs
    ) -> None:
        openai = _openai()
        self.request_seeds = request_seeds
        self.timeout_errors = (openai.APITimeoutError, asyncio.TimeoutError)
        self.connection_errors = (openai.APIConnectionError, ConnectionError)
        self._api_key = api_key
        self.supports_n: bool | None = None
        self._probe_lock = asyncio.Lock()
        super().__init__(model, endpoints, **kwargs)

    def _key(self) -> str:
        if self._api_key:
            return self._api_key
        if os.environ.get("OPENAI_API_KEY"):
            return os.environ["OPENAI_API_KEY"]
        from huggingface_hub import get_token

        return get_token() or "none"

    async def _connect(self, ep: Endpoint) -> None:
        openai = _openai()
        base = ep.url if ep.url.endswith("/v1") else ep.url + "/v1"
        ep.client = openai.AsyncOpenAI(base_url=base, api_key=self._key(), timeout=self.request_timeout, max_retries=0)
        models: list[str] = []

        async def listed() -> bool:
            page = await ep.client.models.list()
            models[:] = [m.id for m in page.data]
            return bool(models)

        await self.wait_until_ready(ep, listed, "/v1/models")
        matching = [m for m in models if m == self.model_name]
        ep.model_id = matching[0] if matching else models[0]

    async def _close_client(self, ep: Endpoint) -> None:
        if ep.client is not None:
            await ep.client.close()

    def info(self) -> dict[str, str]:
        served = next((e.model_id for e in self.pool.endpoints if e.model_id), None)
        info = {"engine": self.name, "model_id": served or self.model_name, "model_revision": "unknown"}
        return info | ({} if self.request_seeds else {"seeded_samples": "false"})

    async def _complete(self, request: GenerationRequest) -> list[str]:
        if request.greedy:
            return (await self._create(request, 1, None)) * request.n
        if request.n > 1 and self.supports_n is None:
            async with self._probe_lock:
                if self.supports_n is None:
                    texts = await self._create(request, request.n, request.seed, probe=True)
                    self.supports_n = len(texts) == request.n
                    logger.info(
                        "%s: %s",
                        self.name,
                        "server honours n" if self.supports_n else "no n; one request per sample",
                    )
                    if self.supports_n:
                        return texts
        if request.n > 1 and self.supports_n:
            texts = await self._create(request, request.n, request.seed)
            if len(texts) == request.n:
                return texts
            raise SlickError(f"the server returned {len(texts)} choices for n={request.n}")
        outs = await asyncio.gather(*(self._create(request, 1, sample_seed(request.seed, i)) for i in range(request.n)))
        return [o[0] for o in outs]

    async def _create(self, request: GenerationRequest, n: int, seed: int | None, probe: bool = False) -> list[str]:
        """One `/v1/completions` request: `n` choices, cut at the stop strings, in choice order.

        With `probe`, a server that rejects `n` (400/422) gives an empty list instead of an error.
        """
        kwargs: dict = {"max_tokens": request.max_new_tokens, "temperature": request.temperature}
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if n > 1:
            kwargs["n"] = n
        if seed is not None and self.request_seeds:
            kwargs["seed"] = seed
        if not request.greedy and request.top_k:
            kwargs["extra_body"] = {"top_k": request.top_k}

        async def call(ep: Endpoint) -> list[str]:
            try:
                out = await ep.client.completions.create(model=ep.model_id, prompt=request.prompt, **kwargs)
            except Exception as exc:
                if probe and getattr(exc, "status_code", None) in (400, 422):
                    logger.info("%s: %s rejects n=%d: %s", self.name, ep.url, n, exc)
                    return []
                raise
            choices = sorted(out.choices, key=lambda c: c.index)
            return [truncate_at_stop(c.text or "", request.stop) for c in choices]

        return await self._send(call)
