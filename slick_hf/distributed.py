"""Which process this is under `torchrun` / `accelerate launch` (from the environment they set)."""

import os


def world_size() -> int:
    """Processes in the launch (1 when not launched distributed)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True for the process that writes shared files (global rank 0)."""
    return int(os.environ.get("RANK", "0")) == 0
