"""The book's own tiny GPTs, trained in chapter 3 and reused by later chapters.

``tiny_gpt("austen")`` and ``tiny_gpt("song_ci")`` return ``(model, tokenizer)``:

- ``austen``: a small byte-level BPE tokenizer and GPT trained on Jane Austen's novels;
- ``song_ci``: a character-level GPT trained on Song dynasty ci poems.

Each model is looked up in the cache, ``llmbook.data.cache_dir() / "models" /
"<name>-<scale>-<recipe hash>"`` (``model.safetensors`` + ``config.json`` via
:mod:`llmbook.checkpoint`, plus ``tokenizer.json`` and ``meta.json`` with the training
history). The hash (:func:`recipe_hash`) covers the whole recipe, so a model trained by an
older recipe is never reused. When the model is not there, it is trained
deterministically at the current scale (the same recipe notebook 3.4 runs) and saved, so
every notebook can run on its own.

The recipe is the one section 3.9 ("Training faster") arrives at: Muon for the block
matrices and AdamW for embeddings, head, biases and norms, a high learning rate with a
short warmup and a decay to zero, no weight decay; for the large character vocabulary of
Song ci also an untied output head and zero-initialised residual projections. The blocks
stay GPT-2's (LayerNorm, learned positions, GELU, biases), so the models still export to
Hugging Face's ``GPT2LMHeadModel`` (:func:`export_hf`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from llmbook.scale import SCALES, current_scale, pick
from llmbook.train import History, TrainConfig, train

__all__ = [
    "NAMES",
    "Recipe",
    "corpus_text",
    "export_hf",
    "load_tiny_gpt",
    "make_optimizer",
    "model_dir",
    "prepare",
    "recipe",
    "recipe_hash",
    "unwrap",
    "save_tiny_gpt",
    "tiny_gpt",
    "train_tiny_gpt",
]

NAMES = ("austen", "song_ci")
VAL_FRACTION = 0.1
RECIPE_VERSION = 2      # bump when prepare() or training change in a way a Recipe misses


@dataclass(frozen=True)
class Recipe:
    """How one tiny GPT is made: corpus size, tokenizer, model shape, training."""

    name: str
    n_chars: int                 # use the first n_chars characters of the corpus
    tokenizer: str               # "bpe" or "char"
    vocab_size: int | None       # for "bpe"; "char" takes every character it sees
    model: dict                  # keyword arguments of GPTConfig (without vocab_size)
    train: TrainConfig           # train.lr is AdamW's rate (all parameters without Muon)
    muon_lr: float | None = None  # Muon for the block matrices at this rate; None: AdamW


def recipe(name: str, scale: str | None = None) -> Recipe:
    """The recipe for ``name`` at ``scale`` (default: the current scale).

    The ``cpu`` recipes are sized for at most 6 minutes of training on a quiet 2-core
    machine: there an Austen step with its share of evaluation took 0.11 s of wall-clock
    time (3,000 steps: about 335 s) and a Song ci step 0.20 s (1,600 steps: about
    315 s). They aim at beating the best Kneser-Ney n-gram on the same validation
    tokens; notebook 3.4 measures both and its hidden check asserts it.
    """
    _check_name(name)
    scale = _check_scale(scale)

    def p(ci, cpu, gpu):
        return pick(ci=ci, cpu=cpu, gpu=gpu, scale=scale)

    if name == "austen":
        block = p(32, 128, 256)
        model = {"block_size": block, "n_layer": p(1, 4, 6), "n_head": p(2, 4, 6),
                 "n_embd": p(32, 128, 384), "dropout": p(0.0, 0.0, 0.1)}
        steps = p(30, 3000, 5000)
        cfg = TrainConfig(max_steps=steps, batch_size=p(8, 16, 64), block_size=block,
                          lr=p(4e-3, 4e-3, 2e-3), min_lr=0.0, weight_decay=0.0,
                          warmup_steps=p(3, 30, 100), eval_interval=p(10, 500, 500),
                          eval_batches=p(2, 10, 20), log_interval=p(5, 50, 50), seed=0)
        return Recipe(name, p(100_000, 10**9, 10**9), "bpe", p(300, 1024, 2048), model, cfg,
                      muon_lr=0.02)
    block = p(32, 64, 128)
    model = {"block_size": block, "n_layer": p(1, 4, 6), "n_head": p(2, 4, 6),
             "n_embd": p(32, 128, 384), "dropout": p(0.0, 0.0, 0.1),
             "tie_embeddings": False, "zero_init_proj": True}
    steps = p(30, 1600, 5000)
    cfg = TrainConfig(max_steps=steps, batch_size=p(8, 32, 64), block_size=block,
                      lr=p(1e-2, 1e-2, 3e-3), min_lr=0.0, weight_decay=0.0,
                      warmup_steps=p(3, 20, 100), eval_interval=p(10, 400, 500),
                      eval_batches=p(2, 10, 20), log_interval=p(5, 50, 50), seed=0)
    return Recipe(name, p(60_000, 10**9, 10**9), "char", None, model, cfg, muon_lr=0.02)


def recipe_hash(name: str, scale: str | None = None) -> str:
    """Eight hex digits identifying the recipe (and :data:`RECIPE_VERSION`)."""
    rec = asdict(recipe(name, scale))
    blob = json.dumps({"version": RECIPE_VERSION, "recipe": rec}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:8]


def corpus_text(name: str) -> str:
    """The whole corpus as one string: Austen's novels, or every ci poem, separated by
    blank lines.

    Austen's hard line breaks (Project Gutenberg wraps lines at about 70 characters) are
    unwrapped as section 3.2 recommends: one line per paragraph, runs of spaces collapsed,
    paragraphs separated by a blank line. The line breaks of a ci poem end its verses and
    are kept.
    """
    _check_name(name)
    from llmbook import data

    if name == "austen":
        return "\n\n".join(p for novel in data.austen().values() for p in unwrap(novel))
    return "\n\n".join(poem["text"] for poem in data.song_ci())


def unwrap(text: str) -> list[str]:
    """Paragraphs of ``text`` (split at blank lines), each on one line: NFC-normalised,
    with every run of whitespace (line breaks included) replaced by one space."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n")
    paragraphs = (re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text))
    return [p for p in paragraphs if p]


def prepare(name: str, scale: str | None = None):
    """Tokenizer and ``(train_ids, val_ids)`` 1-D int64 tensors for ``name``.

    The text is split *before* tokenizing: the last 10 % of characters is the
    validation set, and the tokenizer learns from the training part only.
    Returns ``(tokenizer, train_ids, val_ids)``.
    """
    rec = recipe(name, scale)
    text = corpus_text(name)[:rec.n_chars]
    cut = int(len(text) * (1 - VAL_FRACTION))
    train_text, val_text = text[:cut], text[cut:]
    tok = _make_tokenizer(rec, train_text)
    if rec.tokenizer == "char":                # characters unseen in training are dropped
        known = set(tok.chars)
        val_text = "".join(ch for ch in val_text if ch in known)
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    return tok, train_ids, val_ids


def _make_tokenizer(rec: Recipe, text: str):
    from llmbook.tokenizers import BPETokenizer, CharTokenizer

    if rec.tokenizer == "bpe":
        return BPETokenizer.train(text, rec.vocab_size)
    return CharTokenizer(text)


def model_dir(name: str, scale: str | None = None) -> Path:
    """Where the model ``name`` trained at ``scale`` is cached."""
    _check_name(name)
    from llmbook.data import cache_dir

    scale = _check_scale(scale)
    return cache_dir() / "models" / f"{name}-{scale}-{recipe_hash(name, scale)}"


def train_tiny_gpt(name: str, scale: str | None = None, device: str | torch.device | None = None,
                   on_eval: Callable[[int, nn.Module], None] | None = None,
                   progress: bool = True):
    """Train the tiny GPT ``name`` from scratch with its recipe (seeded, so repeatable).

    Returns ``(model, tokenizer, history)``; the model is in eval mode.
    """
    from llmbook.device import get_device
    from llmbook.models import GPT, GPTConfig

    rec = recipe(name, scale)
    tok, train_ids, val_ids = prepare(name, scale)
    torch.manual_seed(rec.train.seed)
    device = get_device(device)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **rec.model)).to(device)
    cfg = TrainConfig(**{**asdict(rec.train), "progress": progress})
    hist = train(model, train_ids, val_ids, cfg, device=device,
                 optimizer=make_optimizer(rec, model), on_eval=on_eval)
    return model.eval(), tok, hist


def make_optimizer(rec: Recipe, model: nn.Module) -> torch.optim.Optimizer | None:
    """Muon + AdamW for a recipe with ``muon_lr``, else None (``train``'s AdamW)."""
    if rec.muon_lr is None:
        return None
    from llmbook.optim import Muon, muon_param_groups

    t = rec.train
    return Muon(muon_param_groups(model, rec.muon_lr, t.lr, t.weight_decay, t.betas))


def save_tiny_gpt(model: nn.Module, tokenizer, name: str, scale: str | None = None,
                  history: History | None = None, folder: str | Path | None = None) -> Path:
    """Save model (safetensors + config), tokenizer and training history.

    The folder defaults to :func:`model_dir` in the cache. Writes into a temporary
    folder first and renames it, so a reader never sees a half-written model.
    Returns the folder.
    """
    from llmbook import checkpoint

    target = Path(folder) if folder is not None else model_dir(name, scale)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    checkpoint.save(model, tmp)
    _save_tokenizer(tokenizer, tmp / "tokenizer.json")
    meta = {"name": name, "scale": _check_scale(scale), "recipe": recipe_hash(name, scale)}
    if history is not None:
        meta["history"] = asdict(history)
    (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def load_tiny_gpt(name: str, scale: str | None = None,
                  device: str | torch.device | None = None, folder: str | Path | None = None):
    """Load ``(model, tokenizer)`` from ``folder`` (default: the cache's
    :func:`model_dir`); ``FileNotFoundError`` if nothing is saved there."""
    from llmbook import checkpoint
    from llmbook.device import get_device

    folder = Path(folder) if folder is not None else model_dir(name, scale)
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"no saved tiny GPT {name!r} in {folder}; "
                                f"train it with tiny_gpt({name!r})")
    model = checkpoint.load(folder).to(get_device(device)).eval()
    tokenizer = _load_tokenizer(folder / "tokenizer.json")
    checkpoint.check_tokenizer(model, tokenizer)
    return model, tokenizer


def tiny_gpt(name: str, scale: str | None = None, device: str | torch.device | None = None,
             progress: bool = False):
    """The book's tiny GPT ``name`` (``"austen"`` or ``"song_ci"``) as ``(model, tokenizer)``.

    Loaded from the cache if saved; otherwise trained at ``scale`` (default: the current
    scale), saved, and returned. The model is in eval mode on ``device``.
    """
    try:
        return load_tiny_gpt(name, scale, device)
    except FileNotFoundError:
        pass
    model, tok, hist = train_tiny_gpt(name, scale, device, progress=progress)
    save_tiny_gpt(model, tok, name, scale, hist)
    return load_tiny_gpt(name, scale, device)


def export_hf(name: str, out_dir: str | Path, scale: str | None = None,
              folder: str | Path | None = None):
    """Save the tiny GPT ``name`` in Hugging Face format (``save_pretrained``) to ``out_dir``
    and return the Hugging Face model. Reads the model from ``folder`` if given, else
    from :func:`tiny_gpt`. Needs :mod:`llmbook.interop`."""
    try:
        from llmbook.interop import to_hf
    except ImportError as err:
        raise ImportError("exporting needs llmbook.interop.to_hf, which is not available") from err
    if folder is not None:
        model, _ = load_tiny_gpt(name, scale, "cpu", folder=folder)
    else:
        model, _ = tiny_gpt(name, scale, "cpu")
    hf_model = to_hf(model)
    hf_model.save_pretrained(str(out_dir))
    return hf_model


# ---------------------------------------------------------------------- helpers
def _save_tokenizer(tok, path: Path) -> None:
    from llmbook.tokenizers import BPETokenizer, CharTokenizer

    if isinstance(tok, BPETokenizer):
        tok.save(path)
    elif isinstance(tok, CharTokenizer):
        data = {"format": "llmbook.CharTokenizer/1", "chars": tok.chars}
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    else:
        raise TypeError(f"cannot save a tokenizer of type {type(tok).__name__}")


def _load_tokenizer(path: Path):
    from llmbook.tokenizers import BPETokenizer, CharTokenizer

    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") == "llmbook.CharTokenizer/1":
        tok = CharTokenizer("".join(data["chars"]))
        if tok.chars != data["chars"]:
            raise ValueError(f"{path}: character list is not sorted and distinct")
        return tok
    return BPETokenizer.load(path)


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown tiny GPT {name!r}; the book has {NAMES}")


def _check_scale(scale: str | None) -> str:
    scale = current_scale() if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; use one of {SCALES}")
    return scale
