"""Save and load the book's models as ``model.safetensors`` + ``config.json``.

``save(model, directory)`` writes the weights with safetensors (no pickle: loading a
checkpoint can never run code) and a JSON file ``{"kind": "gpt", "config": {...},
"format": 1}``. ``load(directory)`` reads the JSON, rebuilds the right class from its
config and fills in the weights, checking that every tensor is present with the right
shape. Tied weights (e.g. ``lm_head`` = ``wte``) are stored once and re-tied on load.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from llmbook.models import (
    GPT,
    Encoder,
    EncoderConfig,
    EncoderForMaskedLM,
    GPTConfig,
    Seq2Seq,
    Seq2SeqConfig,
)

__all__ = ["CONFIG_NAME", "KINDS", "WEIGHTS_NAME", "load", "save"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = 1
KINDS: dict[str, tuple[type, type]] = {
    "gpt": (GPT, GPTConfig),
    "encoder": (Encoder, EncoderConfig),
    "encoder_mlm": (EncoderForMaskedLM, EncoderConfig),
    "seq2seq": (Seq2Seq, Seq2SeqConfig),
}


def _kind_of(model: nn.Module) -> str:
    for kind, (cls, _) in KINDS.items():
        if type(model) is cls:
            return kind
    raise TypeError(f"cannot save a {type(model).__name__}; known kinds: "
                    + ", ".join(f"{k} ({c.__name__})" for k, (c, _) in KINDS.items()))


def save(model: nn.Module, directory: str | Path) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/config.json``; returns the
    directory. The directory is created if needed; existing files are overwritten."""
    kind = _kind_of(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"kind": kind, "format": FORMAT, "config": model.config.to_dict()}
    (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    save_model(model, str(directory / WEIGHTS_NAME), metadata={"kind": kind})
    return directory


def _read_meta(directory: Path) -> dict:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {directory} (is it a checkpoint "
                                "written by llmbook.checkpoint.save?)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or "kind" not in meta or "config" not in meta:
        raise ValueError(f"{path} lacks 'kind' and 'config'")
    if meta["kind"] not in KINDS:
        raise ValueError(f"{path}: unknown model kind {meta['kind']!r}; known: {sorted(KINDS)}")
    return meta


def load(directory: str | Path, device: torch.device | str | None = None) -> nn.Module:
    """Rebuild the model saved in ``directory`` and load its weights (on ``device``,
    default CPU). Returns it in eval mode. Never unpickles anything."""
    directory = Path(directory)
    meta = _read_meta(directory)
    cls, config_cls = KINDS[meta["kind"]]
    model = cls(config_cls.from_dict(meta["config"]))
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_NAME} in {directory}")
    try:
        load_model(model, str(weights), strict=True)
    except SafetensorError as err:
        raise ValueError(f"{weights} is not a readable safetensors file: {err}") from err
    except RuntimeError as err:
        raise ValueError(f"{weights} does not match its {CONFIG_NAME}: {err}") from err
    if device is not None:
        model = model.to(device)
    return model.eval()
