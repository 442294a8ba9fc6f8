"""What every server-backed engine shares: an event loop, bounded concurrency, an endpoint pool,
retries with exponential back-off and jitter, per-run counters and a requests/s progress bar.

A `RemoteEngine` turns one `GenerationRequest` into one or more HTTP requests (the subclass
decides how, in `_complete`) and sends each through `_send`, which

- waits for a free slot (at most `concurrency` HTTP requests in flight over all endpoints);
- picks the live endpoint with the fewest requests in flight, preferring endpoints that have not
  just failed;
- retries on 429, 5xx, timeouts and dropped or refused connections, sleeping
  `backoff_base * 2**attempt` seconds (capped at `backoff_max`, with jitter, at least the
  server's Retry-After) between attempts, at most `max_retries` times and never past
  `retry_budget` seconds for one request;
- takes an endpoint out of rotation after `max_retries + 1` spaced failures in a row (each after
  the endpoint's own back-off, so a burst of concurrent failures counts once), or when it has
  kept failing for `retry_budget` seconds; the others carry on;
- raises `SlickError` when a request runs out of retries, when every endpoint is down, or at once
  on an error that a retry cannot fix (a 4xx other than 408/429). Annotation journals finished
  chunks, so raising loses no finished work and the next run resumes.

`generate` is synchronous (the `Engine` interface): it runs the requests of one call concurrently
on an event loop that lives in a background thread for the engine's lifetime, so connections are
reused across calls and it works from inside a running event loop too (notebooks).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from abc import abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slick_hf.engines.base import Engine, GenerationRequest
from slick_hf.engines.retry import (
    RETRY_REASONS,
    Endpoint,
    EndpointPool,
    RetryableError,
    RetryPolicy,
    cause_chain,
    normalize_url,
    retry_after,
    status_code,
)
from slick_hf.errors import SlickError, first_line

logger = logging.getLogger(__name__)
T = TypeVar("T")


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample `index` of a request seeded `seed`, for servers without `n`.

    Derived by hashing, so samples of one request are independent and reproducible; 31 bits,
    which every server accepts (TGI takes u64, llama.cpp u32, vLLM any int).
    """
    digest = hashlib.sha256(f"slick-sample:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def same_model(named: str, served: str | None) -> bool:
    """Whether the model a server reports is plausibly the one the user named."""
    if not served:
        return False
    from slick_hf.models import SMOLLM2_ALIAS, SMOLLM2_GGUF, SMOLLM2_HUB_ID

    if named == SMOLLM2_ALIAS and served.endswith(SMOLLM2_GGUF):  # llama.cpp serving the same file
        return True
    expected = SMOLLM2_HUB_ID if named == SMOLLM2_ALIAS else named
    a, b = expected.strip("/").lower(), served.strip("/").lower()
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


@dataclass
class RemoteStats:
    """Per-run counters of a server-backed engine."""

    requests: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    per_endpoint: dict[str, int] = field(default_factory=dict)
    dead_endpoints: list[str] = field(default_factory=list)

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retries": {r: self.retries.get(r, 0) for r in RETRY_REASONS},
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(self.succeeded / self.seconds, 2) if self.seconds else 0.0,
            "per_endpoint": dict(self.per_endpoint),
            "dead_endpoints": list(self.dead_endpoints),
        }

    def summary(self) -> str:
        d = self.as_dict()
        retries = ", ".join(f"{r} {n}" for r, n in d["retries"].items())
        text = (
            f"{d['requests']} requests ({d['succeeded']} ok, {d['failed']} given up), "
            f"{d['requests_per_second']} req/s; retries: {retries}"
        )
        if len(d["per_endpoint"]) > 1:
            text += "; per endpoint: " + ", ".join(f"{u} {n}" for u, n in d["per_endpoint"].items())
        if d["dead_endpoints"]:
            text += "; taken out of rotation: " + ", ".join(d["dead_endpoints"])
        return text


class RemoteEngine(Engine):
    """Base of the engines that talk to inference servers (see the module docstring)."""

    name = "remote"
    #: exception types (in an error's cause chain) that mean a timeout / a lost connection
    timeout_errors: tuple[type[BaseException], ...] = (asyncio.TimeoutError, TimeoutError)
    connection_errors: tuple[type[BaseException], ...] = (ConnectionError,)

    def __init__(
        self,
        model: str,
        endpoints: Sequence[str],
        concurrency: int = 16,
        max_retries: int = 6,
        retry_budget: float = 300.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        request_timeout: float = 120.0,
        startup_timeout: float = 60.0,
        progress: bool = True,
    ) -> None:
        if not endpoints:
            raise SlickError(f"the {self.name} engine needs at least one --endpoint URL")
        if concurrency < 1:
            raise SlickError(f"concurrency must be >= 1, got {concurrency}")
        self.model_name = model
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.startup_timeout = startup_timeout
        self.policy = RetryPolicy(max_retries, backoff_base, backoff_max, retry_budget)
        urls = list(dict.fromkeys(normalize_url(u) for u in endpoints))
        self.pool = EndpointPool([Endpoint(u) for u in urls], self.policy)
        self.stats = RemoteStats(per_endpoint={u: 0 for u in urls})
        self.progress = progress
        self._bar = None
        self._sem: asyncio.Semaphore | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{self.name}-engine", daemon=True)
        self._thread.start()
        self._closed = False
        try:
            self._run(self._start())
        except BaseException:
            self.close()
            raise

    # -- subclass hooks -------------------------------------------------------------------------

    @abstractmethod
    async def _connect(self, ep: Endpoint) -> None:
        """Create `ep.client`, wait (up to `startup_timeout`) until the server is ready, and read
        what it serves into `ep.model_id`; raise SlickError if it never answers."""

    @abstractmethod
    async def _complete(self, request: GenerationRequest) -> list[str]:
        """The `request.n` completions of one request, each cut at the stop strings; every HTTP
        request goes through `self._send`."""

    async def _close_client(self, ep: Endpoint) -> None:
        """Close `ep.client`."""

    # -- lifecycle ------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the engine's loop and wait for it; Ctrl-C cancels it."""
        if self._closed:
            raise SlickError(f"the {self.name} engine is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _start(self) -> None:
        self._sem = asyncio.Semaphore(self.concurrency)
        results = await asyncio.gather(*(self._connect(ep) for ep in self.pool.endpoints), return_exceptions=True)
        errors = []
        for ep, res in zip(self.pool.endpoints, results, strict=True):
            if isinstance(res, BaseException):
                if not isinstance(res, SlickError):
                    raise res
                ep.dead, ep.last_error = True, str(res)
                errors.append(str(res))
        if len(errors) == len(self.pool.endpoints):
            raise SlickError(errors[0] if len(errors) == 1 else "no endpoint is reachable: " + "; ".join(errors))
        for message in errors:
            logger.warning("%s; carrying on without it", message)
        self.stats.dead_endpoints = [e.url for e in self.pool.endpoints if e.dead]
        served = {(ep.model_id, ep.model_revision) for ep in self.pool.alive}
        if len(served) > 1:
            raise SlickError(
                "the endpoints serve different models: "
                + ", ".join(f"{ep.url} serves {ep.model_id} (revision {ep.model_revision})" for ep in self.pool.alive)
            )
        self.check_served_model(self.pool.alive[0].model_id)

    async def wait_until_ready(self, ep: Endpoint, probe: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll `probe` until it returns True, up to `startup_timeout` seconds."""
        deadline = time.monotonic() + self.startup_timeout
        delay, last = 0.1, "no answer"
        while True:
            try:
                if await asyncio.wait_for(probe(), timeout=max(1.0, min(10.0, self.startup_timeout))):
                    return
                last = "not ready"
            except Exception as exc:
                if self.classify(exc) is None:  # not a "not up yet" error: no point in waiting
                    raise SlickError(f"{self.name} server at {ep.url}: {what} failed: {first_line(exc)[:300]}") from exc
                last = first_line(exc)[:300]
            if time.monotonic() + delay > deadline:
                raise SlickError(
                    f"{self.name} server at {ep.url} did not answer {what} within {self.startup_timeout:g} s ({last})"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._thread.is_alive():
                closing = asyncio.run_coroutine_threadsafe(self._close_all(), self._loop)
                try:
                    closing.result(timeout=10)
                except Exception as exc:  # closing is best effort
                    logger.debug("closing %s clients: %s", self.name, exc)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    async def _close_all(self) -> None:
        await asyncio.gather(*(self._close_client(ep) for ep in self.pool.endpoints), return_exceptions=True)

    # -- generation -----------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        if not requests:
            return []
        if self.progress and self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=f"{self.name} requests", unit="req", dynamic_ncols=True)
        start = time.monotonic()
        try:
            return self._run(self._generate_all(requests))
        finally:
            self.stats.seconds += time.monotonic() - start
            self.stats.dead_endpoints = [e.url for e in self.pool.endpoints if e.dead]

    async def _generate_all(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        tasks = [asyncio.ensure_future(self._complete(r)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def classify(self, exc: BaseException) -> RetryableError | None:
        """A RetryableError for a failure worth retrying, None for one a retry cannot fix."""
        for err in cause_chain(exc):
            if isinstance(err, RetryableError):
                return err
            status = status_code(err)
            if status is not None:
                detail = f"HTTP {status}: {first_line(err)[:300]}"
                if status == 429:
                    return RetryableError("429", detail, retry_after(err))
                if status >= 500:
                    return RetryableError("5xx", detail, retry_after(err))
                if status == 408:
                    return RetryableError("timeout", detail)
                return None
            if isinstance(err, self.timeout_errors):
                return RetryableError("timeout", f"no answer within {self.request_timeout:g} s")
            if isinstance(err, self.connection_errors):
                return RetryableError("connection", first_line(err)[:300])
        return None

    async def _send(self, call: Callable[[Endpoint], Awaitable[T]]) -> T:
        """Run `call(endpoint)` on the best endpoint, retrying what is worth retrying."""
        assert self._sem is not None
        started = time.monotonic()
        attempt = 0
        while True:
            async with self._sem:
                ep = self.pool.acquire()
                sent_at = time.monotonic()
                self.stats.requests += 1
                self.stats.per_endpoint[ep.url] = self.stats.per_endpoint.get(ep.url, 0) + 1
                try:
                    result = await call(ep)
                except asyncio.CancelledError:
                    ep.in_flight -= 1
                    raise
                except Exception as exc:
                    error = self.classify(exc)
                    if error is None:
                        ep.in_flight -= 1
                        self.stats.failed += 1
                        raise SlickError(f"{self.name} request to {ep.url} failed: {first_line(exc)[:300]}") from exc
                    self.pool.failed(ep, error, sent_at)
                else:
                    self.pool.succeeded(ep)
                    self.stats.succeeded += 1
                    if self._bar is not None:
                        self._bar.update(1)
                        if self.stats.total_retries:
                            self._bar.set_postfix(retries=self.stats.total_retries, refresh=False)
                    return result
            if not self.pool.alive:
                self.stats.failed += 1
                raise SlickError(self.pool.down_message())
            wait = self.policy.delay(attempt, error.retry_after)
            if attempt >= self.policy.max_retries or time.monotonic() + wait - started > self.policy.retry_budget:
                self.stats.failed += 1
                raise SlickError(
                    f"{self.name} request failed after {attempt + 1} attempts over "
                    f"{time.monotonic() - started:.1f} s (last: {ep.url}: {error.reason}: {error.detail}); "
                    "finished work is saved, run the same command again to resume"
                )
            attempt += 1
            self.stats.retries[error.reason] += 1
            logger.debug("retrying %s after %s (%s) in %.2f s", ep.url, error.reason, error.detail, wait)
            await asyncio.sleep(wait)

    # -- provenance -----------------------------------------------------------------------------

    def check_served_model(self, served: str | None) -> None:
        """Warn when the server reports another model than the one the user named."""
        if not same_model(self.model_name, served):
            logger.warning(
                "the %s server reports model %r, not the %r you named; the dataset card records the served model",
                self.name,
                served,
                self.model_name,
            )
