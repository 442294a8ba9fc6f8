"""Build an engine from CLI-style arguments."""

from collections.abc import Sequence

from ..errors import SlickError
from .base import Engine

ENGINES = ("transformers", "transformers-plain", "tgi", "openai")


def make_engine(
    kind: str,
    model: str,
    endpoints: Sequence[str] = (),
    batch_size: int = 16,
    device: str = "cpu",
    trust_remote_code: bool = False,
    **remote_options,
) -> Engine:
    """The engine `kind` serving `model` (in process, or at `endpoints`).

    `remote_options` go to the server engines (see `remote.RemoteEngine`): concurrency,
    max_retries, retry_budget, backoff_base, backoff_max, request_timeout, startup_timeout,
    progress; None values are left at their defaults.
    """
    remote_options = {k: v for k, v in remote_options.items() if v is not None}
    if kind in ("transformers", "transformers-plain"):
        if endpoints:
            raise SlickError("--endpoint is for server engines; the transformers engine runs in process")
        if kind == "transformers":
            from .fast import FastTransformersEngine as engine_class
        else:
            from .local import TransformersEngine as engine_class

        return engine_class(model, batch_size=batch_size, device=device, trust_remote_code=trust_remote_code)
    if kind in ("tgi", "openai"):
        if not endpoints:
            raise SlickError(f"the {kind} engine needs at least one --endpoint URL (repeat it for several servers)")
        if kind == "tgi":
            from .tgi import TGIEngine

            return TGIEngine(model, endpoints, **remote_options)
        from .openai_compat import OpenAICompatEngine

        return OpenAICompatEngine(model, endpoints, **remote_options)
    raise SlickError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")
