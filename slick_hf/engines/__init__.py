"""Generation engines: one interface, in-process or behind an inference server."""

from .base import Engine, GenerationRequest

__all__ = ["Engine", "GenerationRequest"]
