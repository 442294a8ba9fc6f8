"""Build an engine by name: the factory key is the engine's `name` (`TransformersEngine.name == "transformers"`)."""

from slick_hf.engines.base import Engine
from slick_hf.errors import SlickError

ENGINES = {
    "transformers": "TransformersEngine (in process, fast: prefix caches, sample tries)",
    "transformers-plain": "PlainTransformersEngine (in process, plain model.generate)",
    "tgi": "TGIEngine (Text Generation Inference servers)",
    "openai": "OpenAIEngine (OpenAI-compatible servers: vLLM, SGLang, llama.cpp, TGI's /v1)",
}


def engine_class(name: str) -> type[Engine]:
    """The class registered under `name`, imported only when chosen (torch, HTTP clients)."""
    if name == "transformers":
        from slick_hf.engines.fast.engine import TransformersEngine

        return TransformersEngine
    if name == "transformers-plain":
        from slick_hf.engines.plain import PlainTransformersEngine

        return PlainTransformersEngine
    if name == "tgi":
        from slick_hf.engines.tgi import TGIEngine

        return TGIEngine
    if name == "openai":
        from slick_hf.engines.openai import OpenAIEngine

        return OpenAIEngine
    raise SlickError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def make_engine(model: str, args) -> Engine:
    """The engine `args.engine` serving `model`, in process or at `args.endpoint` URLs.

    `args` is a `slick_hf.configs.EngineArguments` (engine, endpoint, batch_size, device, dtype,
    trust_remote_code and the server engines' retry and timeout options).
    """
    if args.engine not in ENGINES:
        raise SlickError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
    if args.in_process:
        if args.endpoint:
            raise SlickError("--endpoint is for server engines; the transformers engines run in process")
        return engine_class(args.engine)(
            model,
            batch_size=args.batch_size,
            device=args.device,
            dtype=args.resolved_dtype(),
            trust_remote_code=args.trust_remote_code,
        )
    if not args.endpoint:
        raise SlickError(f"the {args.engine} engine needs at least one --endpoint URL (repeat it for several servers)")
    return engine_class(args.engine)(model, args.endpoint, **args.remote_options())
