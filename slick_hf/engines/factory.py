"""Build an engine from CLI-style arguments."""

from collections.abc import Sequence

from ..errors import SlickError
from .base import Engine

ENGINES = ("transformers",)


def make_engine(
    kind: str,
    model: str,
    endpoints: Sequence[str] = (),
    batch_size: int = 16,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> Engine:
    """The engine `kind` serving `model` (in process, or at `endpoints`)."""
    if kind == "transformers":
        if endpoints:
            raise SlickError("--endpoint is for server engines; the transformers engine runs in process")
        from .local import TransformersEngine

        return TransformersEngine(model, batch_size=batch_size, device=device, trust_remote_code=trust_remote_code)
    raise SlickError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")
