"""vLLM's `LLM` as an engine, run in the vLLM environment by a worker process."""
