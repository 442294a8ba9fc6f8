"""Retries and the endpoint pool of the server engines: which failures to retry, when, and where."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slick_hf.errors import SlickError

logger = logging.getLogger(__name__)
RETRY_REASONS = ("429", "5xx", "timeout", "connection")


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SlickError(f"endpoint {url!r} is not an http(s) URL")
    return url


class RetryableError(Exception):
    """A failure worth retrying: `reason` is one of RETRY_REASONS."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class RetryPolicy:
    """How hard to try: `max_retries` per request, back-off in seconds, a time budget."""

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_budget: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise SlickError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_budget <= 0:
            raise SlickError("back-off times must be >= 0 and the retry budget > 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1`: exponential, half of it jittered."""
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after:
            wait = max(wait, min(retry_after, self.backoff_max))
        return wait


@dataclass
class Endpoint:
    """One server URL, its client, and its health as the pool sees it."""

    url: str
    client: Any = None
    model_id: str | None = None
    model_revision: str | None = None
    details: dict = field(default_factory=dict)  # what the server says about itself
    in_flight: int = 0
    sent: int = 0
    strikes: int = 0
    failing_since: float | None = None
    cool_until: float = 0.0
    dead: bool = False
    last_error: str = ""


class EndpointPool:
    """Spreads requests over endpoints by outstanding requests; tracks which are down."""

    def __init__(self, endpoints: Sequence[Endpoint], policy: RetryPolicy) -> None:
        self.endpoints = list(endpoints)
        self.policy = policy

    @property
    def alive(self) -> list[Endpoint]:
        return [e for e in self.endpoints if not e.dead]

    def acquire(self) -> Endpoint:
        alive = self.alive
        if not alive:
            raise SlickError(self.down_message())
        now = time.monotonic()
        cool = [e for e in alive if e.cool_until <= now]
        # Prefer endpoints that have not just failed; if all have, the one that recovers first.
        pick = (
            min(cool, key=lambda e: (e.in_flight, e.sent))
            if cool
            else min(alive, key=lambda e: (e.cool_until, e.in_flight))
        )
        pick.in_flight += 1
        pick.sent += 1
        return pick

    def succeeded(self, ep: Endpoint) -> None:
        ep.in_flight -= 1
        ep.strikes, ep.failing_since, ep.cool_until = 0, None, 0.0

    def failed(self, ep: Endpoint, error: RetryableError, sent_at: float) -> None:
        ep.in_flight -= 1
        ep.last_error = f"{error.reason}: {error.detail}"
        now = time.monotonic()
        if ep.failing_since is None:
            ep.failing_since = now
        # Only a request sent after the endpoint's back-off from its last counted failure is new
        # evidence: requests that fail together, or before the back-off ended, count once, so an
        # endpoint is given up after the same back-off schedule as one request.
        if ep.dead or (ep.strikes and sent_at < ep.cool_until):
            return
        ep.strikes += 1
        ep.cool_until = now + self.policy.delay(ep.strikes - 1, error.retry_after)
        if ep.strikes > self.policy.max_retries or now - ep.failing_since > self.policy.retry_budget:
            ep.dead = True
            others = len(self.alive)
            logger.warning(
                "endpoint %s taken out of rotation after %d failures in a row (%s)%s",
                ep.url,
                ep.strikes,
                ep.last_error,
                f"; {others} other endpoint(s) carry on" if others else "",
            )

    def down_message(self) -> str:
        detail = "; ".join(f"{e.url}: {e.last_error or 'down'}" for e in self.endpoints)
        return (
            f"all {len(self.endpoints)} endpoint(s) are down ({detail}); finished work is saved, "
            "run the same command again to resume once a server is up"
        )


def cause_chain(exc: BaseException) -> list[BaseException]:
    """An exception and those it was raised from or while handling, outermost first."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        chain.append(exc)
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return chain


def status_code(err: BaseException) -> int | None:
    """The HTTP status an HTTP client's exception carries, if any."""
    status = getattr(err, "status_code", None)
    if status is None:
        status = getattr(getattr(err, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def retry_after(err: BaseException) -> float | None:
    """The Retry-After header of a failed response, in seconds, if any."""
    headers = getattr(getattr(err, "response", None), "headers", None)
    try:
        return float(headers.get("retry-after")) if headers is not None else None
    except (TypeError, ValueError):
        return None
