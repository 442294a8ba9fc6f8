"""Test doubles that users can run too: a TGI/OpenAI-protocol server with fault injection.

    python -m slick_hf.testing.tgi_server --model smollm2-135m --port 8080 --error-rate 0.2

`ServerThread` is imported lazily, so `python -m slick_hf.testing.tgi_server` runs that module fresh.
"""

from slick_hf.testing.backends import FakeBackend, Faults, TransformersBackend

__all__ = ["Faults", "FakeBackend", "ServerThread", "TransformersBackend"]


def __getattr__(name: str):
    """`ServerThread`, from `tgi_server`, on first use."""
    if name == "ServerThread":
        from slick_hf.testing.tgi_server import ServerThread

        return ServerThread
    raise AttributeError(name)
