"""`--engine NAME`: the arguments, and the engine they build (the factory key is the engine's `name`:
`TransformersEngine.name == "transformers"`)."""

from dataclasses import dataclass, field

from slick_hf.engines.base import BATCH_PROMPTS, PLAIN_BATCH_PROMPTS, Engine
from slick_hf.errors import SlickError, check_positive

ENGINES = {
    "transformers": "TransformersEngine (in process, fast: prefix caches, sample tries)",
    "transformers-plain": "PlainTransformersEngine (in process, plain model.generate)",
    "tgi": "TGIEngine (Text Generation Inference servers)",
    "openai": "OpenAIEngine (OpenAI-compatible servers: vLLM, SGLang, llama.cpp, TGI's /v1)",
    "vllm": "VLLMEngine (vLLM's LLM, prefix caching; in the vLLM environment of make install-vllm)",
}


@dataclass
class EngineArguments:
    """How generations are made: in process or through inference servers (annotate, evaluate)."""

    engine: str = field(
        default="transformers",
        metadata={
            "help": "transformers (in process, fast), transformers-plain (model.generate), vllm (vLLM's LLM), "
            "tgi or openai"
        },
    )
    endpoint: list[str] = field(default_factory=list, metadata={"help": "server URL (repeatable)", "action": "extend"})
    concurrency: int | None = field(default=None, metadata={"help": "server engines: HTTP requests in flight (16)"})
    max_retries: int | None = field(default=None, metadata={"help": "server engines: retries per request (6)"})
    retry_budget: float | None = field(
        default=None, metadata={"help": "server engines: seconds one request may keep retrying (300)"}
    )
    request_timeout: float | None = field(default=None, metadata={"help": "server engines: seconds per request (120)"})
    startup_timeout: float | None = field(
        default=None, metadata={"help": "server engines: seconds to wait for a server to be up (60)"}
    )
    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "prompts decoded together (in-process engines; default for transformers "
            + ", ".join(f"{n} in {d}" for d, n in BATCH_PROMPTS.items())
            + f", {PLAIN_BATCH_PROMPTS} left-padded prompts for transformers-plain)"
        },
    )
    no_request_seeds: bool = field(
        default=False,
        metadata={
            "help": "openai engine: send no per-request seeds (vLLM on CPU stops on a seeded request); the "
            "samples are then not reproducible, as the card says"
        },
    )
    device: str = field(default="cpu", metadata={"help": "cpu or cuda (in-process engines)"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "in-process engines: auto (bfloat16 on CPUs with AMX and bf16 GPUs, else float32), "
            "bfloat16 or float32; recorded in the card and part of the resume fingerprint",
            "choices": ["auto", "bfloat16", "float32"],
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "run a model's own code from the Hub"})

    def __post_init__(self) -> None:
        check_positive(self, "batch_size", "concurrency")
        if self.max_retries is not None and self.max_retries < 0:
            raise SlickError(f"--max-retries must be >= 0, got {self.max_retries}")
        for name in ("retry_budget", "request_timeout", "startup_timeout"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise SlickError(f"--{name.replace('_', '-')} must be a number of seconds > 0, got {value}")
        if self.no_request_seeds and self.engine != "openai":
            raise SlickError("--no-request-seeds is for the openai engine")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise SlickError(f"--device must be cpu or cuda[:N], got {self.device!r}")
        if self.device.startswith("cuda") and self.in_process:
            import torch

            if not torch.cuda.is_available():
                raise SlickError("--device cuda, but torch sees no CUDA device here; use --device cpu")

    @property
    def in_process(self) -> bool:
        """Whether the engine runs the model in this process (else it is behind servers)."""
        return self.engine in ("transformers", "transformers-plain", "vllm")

    def resolved_dtype(self) -> str:
        """The dtype generations are computed in: `auto` resolved here, `server` for server engines."""
        from slick_hf.hardware import resolve_dtype

        return resolve_dtype(self.dtype, self.device) if self.in_process else "server"

    def remote_options(self) -> dict:
        """The server engines' options that were set."""
        names = ("concurrency", "max_retries", "retry_budget", "request_timeout", "startup_timeout")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


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
    if name == "vllm":
        from slick_hf.engines.vllm.engine import VLLMEngine

        return VLLMEngine
    raise SlickError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def make_engine(model: str, args) -> Engine:
    """The engine `args.engine` serving `model`, in process or at `args.endpoint` URLs.

    `args` is an `EngineArguments` (engine, endpoint, batch_size, device, dtype,
    trust_remote_code and the server engines' retry and timeout options).
    """
    if args.engine not in ENGINES:
        raise SlickError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
    if args.in_process:
        if args.endpoint:
            raise SlickError(f"--endpoint is for server engines; the {args.engine} engine runs the model itself")
        batch = {} if args.batch_size is None else {"batch_size": args.batch_size}  # else the engine's own default
        return engine_class(args.engine)(
            model,
            **batch,
            device=args.device,
            dtype=args.resolved_dtype(),
            trust_remote_code=args.trust_remote_code,
        )
    if not args.endpoint:
        raise SlickError(f"the {args.engine} engine needs at least one --endpoint URL (repeat it for several servers)")
    options = args.remote_options() | ({"request_seeds": False} if args.no_request_seeds else {})
    return engine_class(args.engine)(model, args.endpoint, **options)
