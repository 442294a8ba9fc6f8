"""A TGI-protocol test server (plus an OpenAI-compatible `/v1/completions`) with fault injection.

Routes, with TGI's request and response schemas:

- `POST /generate` and `POST /` (TGI's compat route, where `InferenceClient` posts):
  `{"inputs": str, "parameters": {do_sample, temperature, top_k, max_new_tokens, stop, seed,
  details, ...}}` -> `{"generated_text": str, "details": {"finish_reason", "generated_tokens",
  "seed", "prefill", "tokens", "top_tokens", "best_of_sequences"}}`; the stop sequence stays in
  `generated_text` as in TGI. Errors are `{"error": str, "error_type": str}` (422 validation,
  429 overloaded, 500/503 injected failures).
- `GET /info` (model_id, model_sha, max_input_tokens, ... as TGI returns), `GET /health`.
- `POST /v1/completions` (`n` honoured, ignored with `--n-mode one`, refused with
  `--n-mode reject`) and `GET /v1/models`.

Backends (`slick_hf.testing.backends`): the real model in process (`PlainTransformersEngine`, concurrent
greedy requests batched together like TGI's batching), or `--fake`: a fixed answer after the
injected latency, so that throughput benchmarks measure the client, not the CPU.

Faults (generation routes only): `--error-rate` (500 or 503), `--rate-limit-rate` (429),
`--drop-rate` (close the connection without a response), `--latency S [--latency-max S]` (fixed
or uniform random), `--die-after N` (the process exits when generation request N + 1 arrives).
`--slots K` serves at most K generation requests at once (the rest queue), like a server with a
fixed batch size: with `--fake --latency 0.2 --slots 4` one server does at most 20 requests/s.

    python -m slick_hf.testing.tgi_server --model smollm2-135m --port 8080 --error-rate 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from slick_hf.testing.backends import FakeBackend, Faults, TransformersBackend

logger = logging.getLogger(__name__)

GENERATION_ROUTES = ("/", "/generate", "/v1/completions")
MAX_STOP_SEQUENCES = 4
MAX_BEST_OF = 2
MAX_INPUT_TOKENS = 8191
MAX_TOTAL_TOKENS = 8192


@dataclass
class ServerState:
    backend: object
    faults: Faults = field(default_factory=Faults)
    n_mode: str = "full"  # full | one | reject: how /v1/completions treats n > 1
    slots: asyncio.Semaphore | None = None  # requests served at once (the latency included)
    requests: Counter = field(default_factory=Counter)  # by route, generation requests received
    injected: Counter = field(default_factory=Counter)  # by fault kind
    prompts: list[str] = field(default_factory=list)  # prompts of the generation requests answered
    record_parameters: list | None = None  # set to a list to record each request's parameters
    generated: int = 0
    dead: bool = False
    on_death: Callable[[], None] | None = None
    rng: random.Random = field(default_factory=random.Random)

    @property
    def generation_requests(self) -> int:
        return sum(self.requests.values())


STATE = web.AppKey("state", ServerState)


def _tgi_error(status: int, message: str, error_type: str) -> web.Response:
    return web.json_response({"error": message, "error_type": error_type}, status=status)


def _openai_error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)


@web.middleware
async def _faults(request: web.Request, handler):
    state: ServerState = request.app[STATE]
    if request.method != "POST" or request.path not in GENERATION_ROUTES:
        return await handler(request)
    if state.dead:
        _drop(request)
        return web.Response()
    state.requests[request.path] += 1
    f = state.faults
    if f.die_after is not None and state.generation_requests > f.die_after:
        state.dead = True
        state.injected["death"] += 1
        logger.warning("test server: dying after %d generation requests", f.die_after)
        _drop(request)
        if state.on_death is not None:
            state.on_death()
        return web.Response()
    delay = f.delay(state.rng)
    roll = state.rng.random()
    async with state.slots or contextlib.nullcontext():
        if delay > 0:
            await asyncio.sleep(delay)
        return await _maybe_fail(request, handler, state, roll)


async def _maybe_fail(request: web.Request, handler, state: ServerState, roll: float):
    f = state.faults
    error = _openai_error if request.path.startswith("/v1/") else _tgi_error
    if roll < f.drop_rate:
        state.injected["drop"] += 1
        _drop(request)
        return web.Response()
    roll -= f.drop_rate
    if roll < f.rate_limit_rate:
        state.injected["429"] += 1
        return error(429, "Model is overloaded", "overloaded")
    roll -= f.rate_limit_rate
    if roll < f.error_rate:
        status = state.rng.choice((500, 503))
        state.injected[str(status)] += 1
        return error(status, "injected failure", "incomplete_generation" if status == 500 else "unhealthy")
    return await handler(request)


def _drop(request: web.Request) -> None:
    """Close the connection without an answer (a crash, a proxy dropping it)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def _validate(parameters: dict) -> tuple[dict, str | None]:
    """TGI's parameter defaults and validation; returns (parameters, error)."""
    p = {
        "do_sample": bool(parameters.get("do_sample") or False),
        "temperature": parameters.get("temperature"),
        "top_k": parameters.get("top_k"),
        "max_new_tokens": parameters.get("max_new_tokens", 100),
        "stop": parameters.get("stop") or [],
        "seed": parameters.get("seed"),
        "details": bool(parameters.get("details") or False),
        "best_of": parameters.get("best_of"),
    }
    if p["temperature"] is not None and p["temperature"] <= 0:
        return p, "`temperature` must be strictly positive"
    if p["top_k"] is not None and p["top_k"] <= 0:
        return p, "`top_k` must be strictly positive"
    if not isinstance(p["max_new_tokens"], int) or p["max_new_tokens"] <= 0:
        return p, "`max_new_tokens` must be strictly positive"
    if len(p["stop"]) > MAX_STOP_SEQUENCES:
        return p, f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. Given: {len(p['stop'])}"
    if p["best_of"] is not None and p["best_of"] > MAX_BEST_OF:
        return p, f"`best_of` must be <= {MAX_BEST_OF}"
    if p["seed"] is not None and (not isinstance(p["seed"], int) or p["seed"] < 0):
        return p, "`seed` must be a non-negative integer"
    if p["temperature"] not in (None, 1.0) or p["top_k"] is not None:
        p["do_sample"] = True  # as in TGI: sampling parameters turn sampling on
    if p["do_sample"] and p["temperature"] is None:
        p["temperature"] = 1.0
    if p["do_sample"] and p["seed"] is None:
        p["seed"] = random.getrandbits(63)
    return p, None


async def _generate(request: web.Request) -> web.Response:
    state: ServerState = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return _tgi_error(422, "request body is not JSON", "validation")
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, str) or not inputs:
        return _tgi_error(422, "`inputs` must be a non-empty string", "validation")
    if body.get("stream"):
        return _tgi_error(422, "this test server does not stream", "validation")
    p, problem = _validate(body.get("parameters") or {})
    if problem:
        return _tgi_error(422, problem, "validation")
    if state.record_parameters is not None:
        state.record_parameters.append(p)
    try:
        gen = await state.backend.generate(inputs, p)
    except Exception as exc:
        return _tgi_error(500, f"generation failed: {exc}", "generation")
    state.prompts.append(inputs)
    state.generated += 1
    out: dict = {"generated_text": gen.text}
    if p["details"]:
        out["details"] = {
            "finish_reason": gen.finish_reason,
            "generated_tokens": len(gen.token_ids),
            "seed": p["seed"] if p["do_sample"] else None,
            "prefill": [],
            "tokens": [
                {"id": i, "text": t, "logprob": 0.0, "special": False}
                for i, t in zip(gen.token_ids, gen.token_texts, strict=True)
            ],
            "top_tokens": [],
            "best_of_sequences": None,
        }
    return web.json_response(out)


async def _info(request: web.Request) -> web.Response:
    backend = request.app[STATE].backend
    return web.json_response(
        {
            "model_id": backend.model_id,
            "model_sha": backend.model_sha,
            "model_dtype": "torch.float32",
            "model_device_type": "cpu",
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": MAX_BEST_OF,
            "max_stop_sequences": MAX_STOP_SEQUENCES,
            "max_input_tokens": MAX_INPUT_TOKENS,
            "max_total_tokens": MAX_TOTAL_TOKENS,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "slick-hf-test",
            "sha": None,
            "docker_label": None,
        }
    )


async def _health(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def _models(request: web.Request) -> web.Response:
    backend = request.app[STATE].backend
    model = {"id": backend.model_id, "object": "model", "created": 0, "owned_by": "slick-hf-test"}
    return web.json_response({"object": "list", "data": [model]})


async def _completions(request: web.Request) -> web.Response:
    state: ServerState = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return _openai_error(400, "request body is not JSON", "invalid_request_error")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return _openai_error(400, "`prompt` must be a non-empty string", "invalid_request_error")
    n = int(body.get("n") or 1)
    if n > 1 and state.n_mode == "reject":
        return _openai_error(400, "n > 1 is not supported", "invalid_request_error")
    if state.n_mode == "one":
        n = 1
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    temperature = float(body.get("temperature", 1.0))
    seed = body.get("seed")
    base = {
        "do_sample": temperature > 0,
        "temperature": temperature if temperature > 0 else None,
        "top_k": body.get("top_k"),
        "max_new_tokens": int(body.get("max_tokens") or 16),
        "stop": stop,
        "details": False,
    }
    # one seeded generation per choice: choice i of a request seeded s uses s + i
    seeds = [random.getrandbits(31) if seed is None else int(seed) + i for i in range(n)]
    gens = await asyncio.gather(*(state.backend.generate(prompt, {**base, "seed": s}) for s in seeds))
    choices = []
    for i, gen in enumerate(gens):
        text = gen.text
        if gen.finish_reason == "stop_sequence":
            text = text[: len(text) - len(stop[0])]  # OpenAI servers drop the stop string
        finish = "length" if gen.finish_reason == "length" else "stop"
        choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": finish})
    state.prompts.append(prompt)
    state.generated += n
    return web.json_response(
        {
            "id": f"cmpl-{state.generated}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": state.backend.model_id,
            "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


def make_app(state: ServerState) -> web.Application:
    app = web.Application(middlewares=[_faults], client_max_size=16 * 1024**2)
    app[STATE] = state
    app.router.add_post("/", _generate)
    app.router.add_post("/generate", _generate)
    app.router.add_get("/info", _info)
    app.router.add_get("/health", _health)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/completions", _completions)
    return app


class ServerThread:
    """A test server on 127.0.0.1 in a background thread: `start()`, `.url`, `stop()`.

    With `faults.die_after`, the server stops listening and drops its connections when it dies;
    `wait_dead()` waits for that. Start a new ServerThread on the same `port` to "restart" it.
    """

    def __init__(
        self,
        backend,
        faults: Faults | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        n_mode: str = "full",
    ) -> None:
        self.state = ServerState(backend, faults or Faults(), n_mode)
        if self.state.faults.seed is not None:
            self.state.rng.seed(self.state.faults.seed)
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        self.state.on_death = lambda: asyncio.ensure_future(self._shutdown())
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.state), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._stopped.set()

    def wait_dead(self, timeout: float = 10.0) -> bool:
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slick_hf.testing.tgi_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="model for the in-process backend")
    parser.add_argument("--fake", action="store_true", help="no model: answer --fake-answer to every prompt")
    parser.add_argument("--fake-answer", default=" Paris")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500/503")
    parser.add_argument("--rate-limit-rate", type=float, default=0.0, help="share answered 429")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of connections closed unanswered")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--latency-max", type=float, help="random latency between --latency and this")
    parser.add_argument("--die-after", type=int, help="exit when generation request N+1 arrives")
    parser.add_argument("--fault-seed", type=int)
    parser.add_argument("--n-mode", choices=["full", "one", "reject"], default="full")
    parser.add_argument("--slots", type=int, help="requests served at once (others queue), latency included")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.fake:
        backend = FakeBackend(args.fake_answer)
    else:
        from slick_hf.engines.plain import PlainTransformersEngine

        backend = TransformersBackend(PlainTransformersEngine(args.model), args.max_batch_size)
    faults = Faults(
        args.error_rate,
        args.rate_limit_rate,
        args.drop_rate,
        args.latency,
        args.latency_max,
        args.die_after,
        args.fault_seed,
    )
    state = ServerState(backend, faults, args.n_mode, asyncio.Semaphore(args.slots) if args.slots else None)
    if args.fault_seed is not None:
        state.rng.seed(args.fault_seed)
    state.on_death = lambda: os._exit(3)  # a crash: no cleanup, connections reset
    print(f"test server for {backend.model_id} on http://{args.host}:{args.port}", flush=True)
    web.run_app(make_app(state), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
