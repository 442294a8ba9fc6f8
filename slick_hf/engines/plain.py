"""In-process transformers engine: batched greedy decoding, seeded sampling per request."""

from collections.abc import Sequence

import torch

from slick_hf.engines.base import PLAIN_BATCH_PROMPTS, Engine, GenerationRequest, truncate_at_stop
from slick_hf.errors import SlickError
from slick_hf.hardware import configure_threads, resolve_dtype
from slick_hf.models import load_for_inference


class PlainTransformersEngine(Engine):
    """Runs a causal LM in this process with plain `model.generate` (the reference engine).

    Greedy requests are batched (left padding); each sampled request is generated on its own
    with `torch.manual_seed(request.seed)`, so its completions do not depend on the batch.
    """

    name = "transformers-plain"

    def __init__(
        self,
        model: str,
        batch_size: int = PLAIN_BATCH_PROMPTS,
        device: str = "cpu",
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        configure_threads()
        dtype = resolve_dtype(dtype, device)
        self._setup(*load_for_inference(model, dtype, device, trust_remote_code), batch_size)

    @classmethod
    def from_loaded(
        cls, model, tokenizer, provenance: dict[str, str], batch_size: int = PLAIN_BATCH_PROMPTS
    ) -> "PlainTransformersEngine":
        """An engine over a model already in memory (e.g. the one a trainer is training)."""
        engine = cls.__new__(cls)
        engine._setup(model, tokenizer, provenance, batch_size)
        return engine

    def _setup(self, model, tokenizer, provenance: dict[str, str], batch_size: int) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.provenance = provenance
        self.batch_size = batch_size
        self.device = model.device
        self.dtype = str(model.dtype).removeprefix("torch.")  # what it computes in: float32, bfloat16

    def info(self) -> dict[str, str]:
        """The engine's name, the model's id and revision, the dtype it computes in and, on CPU, its torch
        threads (bf16 products split over another number of threads round differently)."""
        threads = {"threads": str(torch.get_num_threads())} if self.device.type == "cpu" else {}
        return {"engine": self.name, **self.provenance, "dtype": self.dtype, **threads}

    def check_fits(self, requests: Sequence[GenerationRequest]) -> None:
        """SlickError naming the first request whose prompt plus new tokens exceed the model's context.

        A prompt of B UTF-8 bytes has at most B tokens (byte-level tokenizers), so only prompts that
        long are tokenized.
        """
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if not limit:
            return
        for r in requests:
            if len(r.prompt.encode()) + r.max_new_tokens <= limit:
                continue
            n = len(self.tokenizer(r.prompt)["input_ids"])
            if n + r.max_new_tokens > limit:
                asked = r.prompt[r.prompt.rfind("\n\n") + 2 :][:120]
                raise SlickError(
                    f"a prompt of {n} tokens plus {r.max_new_tokens} new tokens exceeds the model's context of "
                    f"{limit} tokens, at {asked!r}: shorten that question (or use fewer --num-shots)"
                )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """Greedy requests in padded batches, each sampled request alone with its own seed."""
        self.check_fits(requests)
        results: list[list[str] | None] = [None] * len(requests)
        greedy = [i for i, r in enumerate(requests) if r.greedy and r.n == 1]
        for start in range(0, len(greedy), self.batch_size):
            chunk = greedy[start : start + self.batch_size]
            texts = self.generate_batch([requests[i] for i in chunk], do_sample=False)
            for i, text in zip(chunk, texts, strict=True):
                results[i] = [text]
        for i, request in enumerate(requests):
            if results[i] is None:
                torch.manual_seed(request.seed)
                results[i] = self.generate_batch([request], do_sample=not request.greedy)
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def generate_batch(self, requests: Sequence[GenerationRequest], do_sample: bool) -> list[str]:
        """One `model.generate` call: a batch of greedy prompts, or the `n` samples of one prompt.

        The requests share their generation parameters (those of the first).
        """
        first = requests[0]
        enc = self.tokenizer([r.prompt for r in requests], return_tensors="pt", padding=True).to(self.device)
        kwargs = {"do_sample": False}
        if do_sample:
            kwargs = {"do_sample": True, "temperature": first.temperature, "top_k": first.top_k or 0}
            kwargs["num_return_sequences"] = first.n
        out = self.model.generate(
            **enc,
            max_new_tokens=first.max_new_tokens,
            stop_strings=list(first.stop) or None,
            tokenizer=self.tokenizer,
            pad_token_id=self.tokenizer.pad_token_id,
            top_p=None,
            **kwargs,
        )
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [truncate_at_stop(t, first.stop) for t in texts]
