"""Test doubles that users can run too: a TGI/OpenAI-protocol server with fault injection.

    python -m slick_hf.testing.tgi_server --model smollm2-135m --port 8080 --error-rate 0.2

`Faults`, `FakeBackend`, `TransformersBackend` and `ServerThread` live in `tgi_server`
(imported lazily here, so `python -m slick_hf.testing.tgi_server` runs it as a fresh module).
"""

__all__ = ["Faults", "FakeBackend", "ServerThread", "TransformersBackend"]


def __getattr__(name: str):
    if name in __all__:
        from . import tgi_server

        return getattr(tgi_server, name)
    raise AttributeError(name)
