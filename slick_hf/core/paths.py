"""Where slick-hf keeps what it computes once: converted models, downloaded data."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of slick-hf's caches: `$SLICK_HF_CACHE`, else `~/.cache/slick_hf`."""
    return Path(os.environ.get("SLICK_HF_CACHE", Path.home() / ".cache" / "slick_hf")).expanduser()
