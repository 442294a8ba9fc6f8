"""Text Generation Inference (TGI) engine, on `huggingface_hub.AsyncInferenceClient`.

Works with a TGI server, a Hugging Face Inference Endpoint URL, or several URLs at once
(see `remote.RemoteEngine` for concurrency, load spreading and retries). TGI has no `n` and caps
`best_of`, so the `n` samples of a request are `n` requests, sample `i` seeded with
`sample_seed(request.seed, i)`: reproducible, and independent of batching and of which server
answers. A token, when a server needs one, comes from `HF_TOKEN` or `hf auth login`
(huggingface_hub reads it); it is never printed or stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from slick_hf.engines.base import GenerationRequest, truncate_at_stop
from slick_hf.engines.remote import RemoteEngine, sample_seed
from slick_hf.engines.retry import Endpoint
from slick_hf.errors import SlickError, first_line

logger = logging.getLogger(__name__)


def _client_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout, connection) exception types of huggingface_hub's HTTP client (httpx2, or httpx
    before huggingface_hub 2)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    from huggingface_hub.errors import InferenceTimeoutError

    return (InferenceTimeoutError, httpx.TimeoutException, asyncio.TimeoutError), (
        httpx.TransportError,
        ConnectionError,
    )


class TGIEngine(RemoteEngine):
    """Completions from TGI's `/generate` route (`POST /`) via `AsyncInferenceClient.text_generation`.

    Greedy requests are sent with `do_sample=False`; sampled ones with `do_sample=True`,
    `temperature`, `top_k` and a per-sample `seed`. Every request stops at the stop strings
    (TGI `stop`), asks for `details=True`, and its text is cut at the first stop string (TGI keeps
    the stop sequence in `generated_text`).

    At start the engine waits for `/health` on every endpoint (up to `startup_timeout` seconds) and
    reads `/info`: `info()` reports the served `model_id` and `model_sha`, and a warning is logged
    when they are not the model the user named.
    """

    name = "tgi"

    def __init__(self, model: str, endpoints: Sequence[str], **kwargs) -> None:
        from huggingface_hub import constants

        if constants.is_offline_mode():
            raise SlickError(
                "HF_HUB_OFFLINE is set, and huggingface_hub then refuses every HTTP request, to local "
                "TGI servers too; unset it for this command, or use --engine openai (TGI serves /v1 too)"
            )
        self.timeout_errors, self.connection_errors = _client_errors()
        super().__init__(model, endpoints, **kwargs)

    async def _connect(self, ep: Endpoint) -> None:
        from huggingface_hub import AsyncInferenceClient

        ep.client = AsyncInferenceClient(base_url=ep.url, provider="hf-inference", timeout=self.request_timeout)
        await self.wait_until_ready(ep, ep.client.health_check, "/health")
        try:
            info = await ep.client.get_endpoint_info()
        except Exception as exc:  # not every endpoint serves /info; provenance is then unknown
            logger.warning("tgi server at %s: /info failed (%s); model provenance unknown", ep.url, first_line(exc))
            info = {}
        ep.details, ep.model_id, ep.model_revision = info, info.get("model_id"), info.get("model_sha")

    async def _close_client(self, ep: Endpoint) -> None:
        if ep.client is not None:
            await ep.client.close()

    def info(self) -> dict[str, str]:
        alive = self.pool.alive
        info = (alive[0] if alive else self.pool.endpoints[0]).details
        server = " ".join(str(info[k]) for k in ("router", "version") if info.get(k))
        return {
            "engine": self.name,
            "model_id": str(info.get("model_id") or self.model_name),
            "model_revision": str(info.get("model_sha") or "unknown"),
            **({"server": server} if server else {}),
        }

    async def _complete(self, request: GenerationRequest) -> list[str]:
        if request.greedy:
            return [await self._one(request, None)] * request.n
        return list(await asyncio.gather(*(self._one(request, sample_seed(request.seed, i)) for i in range(request.n))))

    async def _one(self, request: GenerationRequest, seed: int | None) -> str:
        params: dict = {"do_sample": False}
        if seed is not None:
            params = {"do_sample": True, "temperature": request.temperature, "seed": seed}
            if request.top_k:
                params["top_k"] = request.top_k

        async def call(ep: Endpoint) -> str:
            out = await ep.client.text_generation(
                request.prompt,
                details=True,
                max_new_tokens=request.max_new_tokens,
                stop=list(request.stop) or None,
                **params,
            )
            return truncate_at_stop(out.generated_text, request.stop)

        return await self._send(call)
