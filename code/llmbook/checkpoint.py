"""Save and load the book's models as ``model.safetensors`` + ``config.json``.

``save(model, directory)`` writes the weights with safetensors (no pickle: loading a
checkpoint can never run code) and a JSON file ``{"kind": "gpt", "config": {...},
"format": 1}``. ``load(directory)`` reads the JSON, checks its format version, rebuilds
the right class from its config and fills in the weights, after checking that the file
holds exactly the tensors the config implies, each with the right shape (a mismatch
names every missing, unexpected and mis-shaped tensor). Tied weights (e.g. ``lm_head`` =
``wte``) are stored once and re-tied on load.

Saves are atomic, config and weights together: everything is written into a hidden
temporary sibling directory, which then replaces ``directory`` by renames. A crash or
an error at any moment leaves either the old checkpoint or the new one, never a mix:
if it strikes between the two renames, the old checkpoint sits in ``.NAME.old`` and
``load`` puts it back. Other files in ``directory`` are carried over.

A training checkpoint adds ``train_state.json`` + ``train_state.safetensors`` (optimiser
state, step, RNG states; see :mod:`llmbook.train`), written in the same atomic save.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
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

__all__ = ["CONFIG_NAME", "FORMAT", "KINDS", "STATE_NAME", "WEIGHTS_NAME",
           "check_tokenizer", "load", "load_train_state", "save"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
STATE_NAME = "train_state"                   # train_state.json + train_state.safetensors
FORMAT = 1
SUPPORTED_FORMATS = (1,)
KINDS: dict[str, tuple[type, type]] = {
    "gpt": (GPT, GPTConfig),
    "encoder": (Encoder, EncoderConfig),
    "encoder_mlm": (EncoderForMaskedLM, EncoderConfig),
    "seq2seq": (Seq2Seq, Seq2SeqConfig),
}
# Every format-1 checkpoint wrote these keys: one missing means a damaged file, not an
# old one (a config option added later may be absent and then takes its default).
_FORMAT1_KEYS = {
    GPTConfig: ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "n_kv_head",
                "norm", "position", "mlp", "mlp_hidden", "bias", "tie_embeddings",
                "rope_theta", "norm_eps", "dropout", "attn_impl"),
    EncoderConfig: ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_hidden",
                    "norm_first", "position", "activation", "type_vocab_size", "bias",
                    "norm_eps", "dropout", "attn_impl"),
    Seq2SeqConfig: ("src_vocab_size", "tgt_vocab_size", "block_size", "n_layer",
                    "n_dec_layer", "n_head", "n_embd", "mlp_hidden", "norm_first",
                    "position", "activation", "scale_embeddings", "tie_embeddings", "bias",
                    "norm_eps", "dropout", "attn_impl"),
}
_OWN_FILES = (WEIGHTS_NAME, CONFIG_NAME, f"{STATE_NAME}.json", f"{STATE_NAME}.safetensors")


def _kind_of(model: nn.Module) -> str:
    for kind, (cls, _) in KINDS.items():
        if type(model) is cls:
            return kind
    raise TypeError(f"cannot save a {type(model).__name__}; known kinds: "
                    + ", ".join(f"{k} ({c.__name__})" for k, (c, _) in KINDS.items()))


# ------------------------------------------------------------------------- saving
def save(model: nn.Module, directory: str | Path,
         train_state: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/config.json`` atomically;
    returns the directory.

    ``train_state = (json_dict, tensors)`` adds ``train_state.json`` and
    ``train_state.safetensors`` in the same atomic step (used by ``train`` to resume).
    Raises before touching ``directory`` if the weights hold a NaN or an infinity.
    """
    kind = _kind_of(model)
    directory = Path(directory)
    _check_rebuildable(model, kind)
    bad = [name for name, t in model.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"refusing to save non-finite weights (NaN/inf in {bad[:5]}) to "
                         f"{directory}; the previous checkpoint there is kept")
    meta = {"kind": kind, "format": FORMAT, "config": model.config.to_dict()}
    directory.parent.mkdir(parents=True, exist_ok=True)
    _recover(directory)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        if all(t.is_contiguous() for t in model.state_dict().values()):
            save_model(model, str(tmp / WEIGHTS_NAME), metadata={"kind": kind})
        else:                                  # e.g. a weight stored as a transposed view
            tensors, dropped = _contiguous_weights(model)
            save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"kind": kind, **dropped})
        _write_json(tmp / CONFIG_NAME, meta)
        if train_state is not None:
            state_json, tensors = train_state
            save_file({k: t.detach().contiguous().cpu() for k, t in tensors.items()},
                      str(tmp / f"{STATE_NAME}.safetensors"))
            _write_json(tmp / f"{STATE_NAME}.json", state_json)
        _carry_foreign_files(directory, tmp)
        _fsync_dir(tmp)
        _swap_in(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _contiguous_weights(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict as contiguous tensors, a tensor shared by several names (a tied LM
    head) once, under the first name in sorted order as ``save_model`` keeps it; and
    ``{dropped name: kept name}``, the metadata ``save_model`` writes for ``load_model``.
    (``save_model`` itself fails on a shared tensor that is not contiguous.)"""
    state = model.state_dict()
    groups: dict[tuple, list[str]] = {}
    for name, t in state.items():
        where = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(),
                 tuple(t.shape), t.stride())
        groups.setdefault(where, []).append(name)
    tensors, dropped = {}, {}
    for names in groups.values():
        keep = min(names)
        tensors[keep] = state[keep].detach().contiguous().cpu()
        dropped.update({name: keep for name in names if name != keep})
    return tensors, dropped


def _check_rebuildable(model: nn.Module, kind: str) -> None:
    """Refuse a model that ``load`` could not rebuild from its config alone, e.g. a GPT
    whose MLPs were swapped for other modules (``llmbook.moe.moe_gpt``)."""
    with torch.device("meta"):                    # shapes only: no memory, no init cost
        fresh = KINDS[kind][0](model.config)
    have, want = set(model.state_dict()), set(fresh.state_dict())
    if have != want:
        extra, missing = sorted(have - want)[:3], sorted(want - have)[:3]
        raise TypeError(f"cannot save this {type(model).__name__}: its modules differ from "
                        f"what its config builds (extra tensors {extra}, missing {missing}), "
                        f"so load() could not rebuild it; save its state_dict with "
                        f"safetensors and rebuild the model in code instead")


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    for p in path.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def _carry_foreign_files(directory: Path, tmp: Path) -> None:
    """Copy files that are not the checkpoint's own (a tokenizer, notes) into ``tmp``."""
    if not directory.is_dir():
        return
    for p in directory.iterdir():
        if p.name in _OWN_FILES or (tmp / p.name).exists():
            continue
        if p.is_dir():
            shutil.copytree(p, tmp / p.name, symlinks=True)
        else:
            shutil.copy2(p, tmp / p.name, follow_symlinks=False)


def _old(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def _swap_in(tmp: Path, directory: Path) -> None:
    """``directory`` := ``tmp`` by two renames; the old one lives in ``.NAME.old`` between."""
    old = _old(directory)
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def _recover(directory: Path) -> None:
    """Undo a save interrupted between its two renames: put ``.NAME.old`` back."""
    old = _old(directory)
    if old.is_dir() and not directory.exists():
        os.replace(old, directory)
    for stale in directory.parent.glob(f".{directory.name}.tmp-*"):   # a killed save
        shutil.rmtree(stale, ignore_errors=True)


# ------------------------------------------------------------------------ loading
def _read_meta(directory: Path) -> dict:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {directory} (is it a checkpoint "
                                "written by llmbook.checkpoint.save?)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or "kind" not in meta or "config" not in meta:
        raise ValueError(f"{path} lacks 'kind' and 'config'")
    if "format" not in meta:
        raise ValueError(f"{path} has no 'format' version; this llmbook reads formats "
                         f"{SUPPORTED_FORMATS}")
    if meta["format"] not in SUPPORTED_FORMATS:
        raise ValueError(f"{path} is checkpoint format {meta['format']!r}; this llmbook "
                         f"reads formats {SUPPORTED_FORMATS} (a newer llmbook wrote it?)")
    if meta["kind"] not in KINDS:
        raise ValueError(f"{path}: unknown model kind {meta['kind']!r}; known: {sorted(KINDS)}")
    if not isinstance(meta["config"], dict):
        raise TypeError(f"{path}: 'config' must be a JSON object, got "
                         f"{type(meta['config']).__name__}")
    return meta


def _config_from(meta: dict, path: Path):
    config_cls = KINDS[meta["kind"]][1]
    missing = [k for k in _FORMAT1_KEYS[config_cls] if k not in meta["config"]]
    if missing:
        raise ValueError(f"{path}: config lacks keys {missing}; a format-1 checkpoint "
                         "always has them (defaults would build a different model)")
    try:
        return config_cls.from_dict(meta["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: invalid {config_cls.__name__}: {err}") from err


def _check_weights_match(model: nn.Module, weights: Path) -> None:
    """Compare the file's tensor names and shapes with the model the config builds."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights} is not a readable safetensors file: {err}") from err
    expected = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    tied = _tied_names(model)
    missing = [k for k in expected if k not in found and k not in tied]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k}: file {found[k]} vs config {expected[k]}"
              for k in expected if k in found and found[k] != expected[k]]
    if missing or unexpected or shapes:
        parts = ([f"missing tensors {missing[:8]}"] if missing else []) + \
                ([f"unexpected tensors {unexpected[:8]}"] if unexpected else []) + \
                ([f"shape mismatches {shapes[:8]}"] if shapes else [])
        raise ValueError(f"{weights} does not match its {CONFIG_NAME}: " + "; ".join(parts))


def _tied_names(model: nn.Module) -> set[str]:
    """State-dict names that share storage with an earlier name (saved once)."""
    seen: dict[int, str] = {}
    tied = set()
    for name, t in model.state_dict().items():
        ptr = t.data_ptr()
        if ptr in seen:
            tied.update({name, seen[ptr]})
        else:
            seen[ptr] = name
    return tied


def load(directory: str | Path, device: torch.device | str | None = None) -> nn.Module:
    """Rebuild the model saved in ``directory`` and load its weights (on ``device``,
    default CPU). Returns it in eval mode. Never unpickles anything.

    Raises ``ValueError`` naming the problem for an unknown format version, a config
    with missing or invalid keys, or weights that do not fit the config.
    """
    directory = Path(directory)
    _recover(directory)
    meta = _read_meta(directory)
    path = directory / CONFIG_NAME
    model = KINDS[meta["kind"]][0](_config_from(meta, path))
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_NAME} in {directory}")
    _check_weights_match(model, weights)
    try:
        load_model(model, str(weights), strict=True)
    except SafetensorError as err:
        raise ValueError(f"{weights} is not a readable safetensors file: {err}") from err
    except RuntimeError as err:
        raise ValueError(f"{weights} does not match its {CONFIG_NAME}: {err}") from err
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_train_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(json_dict, tensors)`` of the training state saved with the model in ``directory``;
    ``FileNotFoundError`` if the checkpoint holds none."""
    directory = Path(directory)
    _recover(directory)
    js, st = directory / f"{STATE_NAME}.json", directory / f"{STATE_NAME}.safetensors"
    if not js.is_file() or not st.is_file():
        raise FileNotFoundError(f"no training state ({js.name}, {st.name}) in {directory}: "
                                "it was saved without one (train(..., checkpoint_dir=...) "
                                "writes it)")
    try:
        state = json.loads(js.read_text(encoding="utf-8"))
        tensors = load_file(str(st))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError) as err:
        raise ValueError(f"the training state in {directory} is unreadable: {err}") from err
    return state, tensors


# ---------------------------------------------------------------------- tokenizers
def check_tokenizer(model: nn.Module, tokenizer: Any) -> None:
    """Raise ``ValueError`` unless ``tokenizer.vocab_size`` equals the model's vocabulary
    size (ids of a larger tokenizer would be out of range; a smaller one is almost
    certainly another tokenizer). For ``Seq2Seq`` the target vocabulary is compared."""
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise TypeError(f"expected an llmbook model, got {type(model).__name__}")
    want = getattr(config, "vocab_size", None) or config.tgt_vocab
    got = getattr(tokenizer, "vocab_size", None)
    if not isinstance(got, int):
        raise TypeError(f"tokenizer must have an int vocab_size, got {type(tokenizer).__name__}")
    if got != want:
        raise ValueError(f"tokenizer has vocab_size={got} but the model was built for "
                         f"vocab_size={want}: they do not belong together")
