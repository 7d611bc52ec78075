"""Benchmark: ``GPT`` against Hugging Face GPT-2, training and generation.

Run ``python -m llmbook.bench`` (``--help`` for options). Two measurements per config:

* **Training** tokens/s of ``GPT``, HF ``GPT2LMHeadModel`` with
  ``attn_implementation="sdpa"`` and with ``"eager"``: same config, same initial
  weights (copied with :func:`llmbook.interop.to_hf`), same batches, AdamW, and the same
  loss (cross-entropy computed here on each model's logits).
* **Generation** ms/token for 200 greedy tokens after a 16-token prompt: our KV cache,
  our uncached loop, and HF ``generate`` (which uses its cache).

Method (see the book's benchmarks page): implementations run interleaved
(A B C A B C ...), each figure is the median of ``--repeats`` runs, and rows are
compared by their ratio to the first row, measured in the same run. Each figure is
also given in process CPU time, which a busy shared machine disturbs less. On CPU torch uses
one thread unless ``--threads`` says otherwise. On GPU training runs under bf16 autocast
with SDPA (optionally ``--compile``) and MFU is reported against the GPU's peak.

``--speedrun``: time to a target validation loss on the Austen tokens of
``llmbook.pretrained`` for the book's recipe (``llmbook.speedrun.BOOK``) and for
karpathy/nanoGPT's ``model.py`` with nanoGPT's own AdamW settings (lr 6e-4, betas
(0.9, 0.95), weight decay 0.1, clipping 1, warmup and cosine to a tenth; ``bias=False``
as its ``train.py``). nanoGPT is not a package and its code is never part of this
repository: put its ``model.py`` in a scratch folder outside the repository and pass
``--nanogpt DIR`` (or set ``NANOGPT_DIR``); without it the book's GPT-2 baseline with the
same AdamW settings stands in and the row says so. Both run interleaved in one process
(``llmbook.speedrun.race``), one seed per repeat; the clock is process CPU time of the
training steps. Reported: median time to target, the per-seed ratio (nanoGPT / book),
tokens needed and final losses. The target defaults to the Kneser-Ney bigram's loss on
the same validation tokens.

Memory: on GPU the peak of ``torch.cuda.max_memory_allocated`` during a training step.
On CPU (where PyTorch keeps no such counter) the bytes a training step must hold:
parameters, gradients, AdamW state and the tensors saved for backward (counted once
per storage with ``torch.autograd.graph.saved_tensors_hooks``).

``--batched``: greedy generation throughput against batch size (default 1, 2, 4, 8, 16,
32) for SmolLM2-135M-Instruct loaded once into ``transformers`` and copied into the
book's ``GPT`` (:func:`llmbook.interop.from_hf`), same weights, same float32, same run.
Each batch holds prompts of different lengths (random token ids, seeded), padded on the
left with an attention mask; ``generate(..., attention_mask=mask)`` and HF's
``generate`` (left padding, no end-of-sequence stop) decode ``--new-tokens`` tokens per
row, interleaved, median of ``--repeats``. Reported per batch size: generated tokens/s
(all rows), the same in CPU time, whether both produced the same tokens, and the ratio
llmbook / transformers. ``--quick`` runs it on a tiny random Llama-style model instead.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from llmbook.generate import generate
from llmbook.interop import to_hf
from llmbook.models import GPT, GPTConfig

__all__ = [
    "BATCH_SIZES",
    "CONFIGS",
    "QUICK",
    "BenchConfig",
    "batch_prompts",
    "bench_batched",
    "flops_per_token",
    "gpu_peak_flops",
    "main",
    "run",
    "run_batched",
]


@dataclass(frozen=True)
class BenchConfig:
    """A model shape and the workload measured on it."""

    name: str
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int          # training sequence length T
    vocab_size: int = 512
    batch_size: int = 16
    train_steps: int = 5     # timed steps per repeat (after warm-up)
    prompt_len: int = 16
    new_tokens: int = 200

    def gpt_config(self, block_size: int | None = None) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, block_size=block_size or self.block_size,
                         n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                         dropout=0.0)


CONFIGS = {
    "4l128": BenchConfig("4L/4H/128 T=128", 4, 4, 128, 128),
    "6l384": BenchConfig("6L/6H/384 T=256", 6, 6, 384, 256, batch_size=8, train_steps=2),
    # GPT-2 small's shape (vocab padded to a multiple of 64) for GPUs: --configs gpt2
    "gpt2": BenchConfig("GPT-2 124M T=1024", 12, 12, 768, 1024, vocab_size=50304,
                        batch_size=8, train_steps=10),
}
DEFAULT_CONFIGS = ("4l128", "6l384")
QUICK = BenchConfig("quick 2L/2H/64 T=32", 2, 2, 64, 32, batch_size=4, train_steps=2,
                    prompt_len=16, new_tokens=8)

# Dense bf16 peaks (fp16 for T4), FLOP/s; matched against torch.cuda.get_device_name().
GPU_PEAKS = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12),
             ("L4", 121e12), ("T4", 65e12)]


# ---------------------------------------------------------------------------- FLOPs
def flops_per_token(config: GPTConfig, n_params: int) -> float:
    """Training FLOPs per token, nanoGPT's estimate ``6 N + 12 L H Q T``.

    ``N``: parameters without position embeddings; ``L`` layers, ``H`` heads, ``Q`` head
    dimension, ``T`` sequence length (the attention scores and their use).
    """
    c = config
    return 6 * n_params + 12 * c.n_layer * c.n_head * c.head_dim * c.block_size


def gpu_peak_flops(device: torch.device) -> float | None:
    """Peak dense bf16 FLOP/s of the current GPU, or None if unknown (or not a GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in GPU_PEAKS:
        if key in name:
            return peak
    return None


# ------------------------------------------------------------------------- training
@dataclass
class Trainee:
    """One implementation under test: a model, its optimizer and how to get logits."""

    name: str
    model: torch.nn.Module
    logits: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer | None = None


def _trainees(cfg: BenchConfig, device: torch.device, compile_: bool) -> list[Trainee]:
    torch.manual_seed(0)
    ours = GPT(cfg.gpt_config()).to(device)
    models = [("llmbook GPT", ours)]
    for impl in ("sdpa", "eager"):
        models.append((f"HF GPT-2 {impl}", to_hf(ours, attn_implementation=impl).train()))
    out = []
    for name, model in models:
        model.train()
        runner = torch.compile(model) if compile_ else model
        if compile_:
            name += " (compiled)"
        if isinstance(model, GPT):
            def logits_of(x, runner=runner):
                return runner(x)[0]
        else:
            def logits_of(x, runner=runner):
                return runner(input_ids=x, use_cache=False).logits
        out.append(Trainee(name, model, logits_of, _adamw(model, device)))
    return out


def _adamw(model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer every implementation gets: AdamW, fused on CUDA and CPU.

    The fused kernel updates all parameters in one pass. It does the same maths as the
    per-parameter loop and, on one CPU thread, takes about a quarter of its time, so the
    figures measure the models more and the shared optimizer less.
    """
    return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1,
                             fused=device.type in ("cuda", "cpu"))


def _batches(cfg: BenchConfig, device: torch.device, n: int = 4) -> list[tuple]:
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, cfg.vocab_size, (n, cfg.batch_size, cfg.block_size + 1),
                         generator=g)
    return [(d[:, :-1].to(device), d[:, 1:].to(device)) for d in data]


def _train_step(t: Trainee, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = t.logits(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    t.optimizer.step()
    t.optimizer.zero_grad(set_to_none=True)
    return loss.item()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall-clock and process CPU time of a block: ``with Stopwatch(device) as sw: ...``.

    On a shared CPU the wall clock also counts time spent waiting for a core; the
    process's CPU time (``time.process_time``) does not, so it is the steadier figure
    there. On GPU only the wall clock means anything (after a synchronize).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:  # noqa: PYI034
        _sync(self.device)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def _time_training(t: Trainee, batches: list, steps: int,
                   device: torch.device) -> tuple[float, float]:
    """Tokens per second of wall clock and per second of CPU time over ``steps`` steps."""
    with Stopwatch(device) as sw:
        for i in range(steps):
            _train_step(t, *batches[i % len(batches)], device)
    tokens = steps * batches[0][0].numel()
    return tokens / sw.wall, tokens / sw.cpu


def _memory_mib(t: Trainee, batch: tuple, device: torch.device) -> float:
    """Peak CUDA memory of one step, or on CPU the bytes one step must hold (see module)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        _train_step(t, *batch, device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    params = {p.untyped_storage().data_ptr() for p in t.model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        x, y = batch
        logits = t.logits(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
    loss.backward()
    t.optimizer.step()
    state = sum(v.nbytes for s in t.optimizer.state.values() for v in s.values()
                if isinstance(v, torch.Tensor))
    n_param_bytes = sum(p.nbytes for p in t.model.parameters())
    t.optimizer.zero_grad(set_to_none=True)
    return (sum(saved.values()) + 2 * n_param_bytes + state) / 2**20


def bench_training(cfg: BenchConfig, device: torch.device, repeats: int,
                   compile_: bool = False) -> list[dict]:
    """Interleaved training runs of the three implementations; one dict per row."""
    trainees = _trainees(cfg, device, compile_)
    batches = _batches(cfg, device)
    losses, first_step = {}, {}
    for t in trainees:                  # warm-up; with --compile the first step compiles
        with Stopwatch(device) as sw:
            losses[t.name] = _train_step(t, *batches[0], device)
        first_step[t.name] = sw.wall
    for t in trainees:
        _train_step(t, *batches[1], device)
    runs: dict[str, list[float]] = {t.name: [] for t in trainees}
    cpu_runs: dict[str, list[float]] = {t.name: [] for t in trainees}
    for _ in range(repeats):
        for t in trainees:                                   # A B C A B C ...
            wall, cpu = _time_training(t, batches, cfg.train_steps, device)
            runs[t.name].append(wall)
            cpu_runs[t.name].append(cpu)
    n_params = trainees[0].model.num_params(non_embedding=True)
    per_token = flops_per_token(cfg.gpt_config(), n_params)
    peak = gpu_peak_flops(device)
    rows = []
    for t in trainees:
        tps = statistics.median(runs[t.name])
        rows.append({
            "config": cfg.name, "impl": t.name, "tokens_per_s": tps,
            "tokens_per_s_runs": runs[t.name], "first_loss": losses[t.name],
            "first_step_s": first_step[t.name],
            "tokens_per_cpu_s": statistics.median(cpu_runs[t.name]),
            "mem_mib": _memory_mib(t, batches[0], device),
            "mfu": per_token * tps / peak if peak else None,
        })
    for row in rows:
        row["ratio"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
        row["ratio_cpu"] = row["tokens_per_cpu_s"] / rows[0]["tokens_per_cpu_s"]
    return rows


# ----------------------------------------------------------------------- generation
def bench_generation(cfg: BenchConfig, device: torch.device, repeats: int) -> list[dict]:
    """ms/token of greedy decoding: our KV cache, our uncached loop, HF ``generate``."""
    torch.manual_seed(0)
    block = max(cfg.block_size, cfg.prompt_len + cfg.new_tokens)
    ours = GPT(cfg.gpt_config(block_size=block)).to(device).eval()
    hf = to_hf(ours, attn_implementation="sdpa")
    prompt = torch.randint(0, cfg.vocab_size, (1, cfg.prompt_len),
                           generator=torch.Generator().manual_seed(1)).to(device)
    n = cfg.new_tokens
    ones = torch.ones_like(prompt)

    def hf_generate() -> torch.Tensor:
        return hf.generate(prompt, attention_mask=ones, max_new_tokens=n, do_sample=False,
                           pad_token_id=0, eos_token_id=no_eos_id(cfg.vocab_size))

    runners = {
        "llmbook KV cache": lambda: generate(ours, prompt, n, temperature=0),
        "llmbook uncached": lambda: generate(ours, prompt, n, temperature=0, use_cache=False),
        "HF generate (cache)": hf_generate,
    }
    outputs = {}
    runs: dict[str, list[float]] = {name: [] for name in runners}
    cpu_runs: dict[str, list[float]] = {name: [] for name in runners}
    with torch.no_grad():
        for name, fn in runners.items():                    # warm-up, and the tokens
            outputs[name] = fn()
        for _ in range(repeats):
            for name, fn in runners.items():
                with Stopwatch(device) as sw:
                    fn()
                runs[name].append(1000 * sw.wall / n)
                cpu_runs[name].append(1000 * sw.cpu / n)
    first = next(iter(runners))
    rows = []
    for name in runners:
        ms = statistics.median(runs[name])
        rows.append({"config": cfg.name, "impl": name, "ms_per_token": ms,
                     "ms_per_token_runs": runs[name],
                     "cpu_ms_per_token": statistics.median(cpu_runs[name]),
                     "same_tokens_as_first": bool(torch.equal(outputs[name], outputs[first]))})
    for row in rows:
        row["ratio"] = rows[0]["ms_per_token"] / row["ms_per_token"]   # speed vs first row
        row["ratio_cpu"] = rows[0]["cpu_ms_per_token"] / row["cpu_ms_per_token"]
    return rows


def no_eos_id(vocab_size: int) -> int:
    """An end-of-text id for ``transformers``' ``generate`` that no model step can emit.

    ``eos_token_id=None`` does not switch stopping off: ``generate`` fills an unset value
    from the model's own generation config (SmolLM2's id 2), then pads every row that
    emitted it and stops when all have. ``llmbook.generate`` has no end-of-text, so the
    two would differ in tokens and in work done. An id past the vocabulary is never
    generated: both run every step, and ``same_tokens`` compares like with like."""
    return vocab_size


# -------------------------------------------------------------- batched generation
BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def batch_prompts(batch_size: int, vocab_size: int, lengths: tuple[int, int] = (8, 24),
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random prompts with lengths drawn from ``lengths`` (inclusive),
    padded on the left with id 0: ``idx (B, T)`` int64 and ``mask (B, T)`` int64 (1 =
    real)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = lengths
    lens = torch.randint(lo, hi + 1, (batch_size,), generator=g).tolist()
    T = max(lens)
    idx = torch.zeros(batch_size, T, dtype=torch.long)
    mask = torch.zeros(batch_size, T, dtype=torch.long)
    for b, n in enumerate(lens):
        idx[b, T - n:] = torch.randint(1, vocab_size, (n,), generator=g)
        mask[b, T - n:] = 1
    return idx, mask


def bench_batched(ours: GPT, hf: torch.nn.Module, device: torch.device,
                  batch_sizes: tuple[int, ...] = BATCH_SIZES, repeats: int = 3,
                  new_tokens: int = 32, lengths: tuple[int, int] = (8, 24),
                  model_name: str = "") -> list[dict]:
    """Generated tokens/s of ``generate`` on ``ours`` and HF ``generate`` on ``hf`` (the
    same weights) for left-padded batches; two rows per batch size (see the module)."""
    import copy

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    gen_cfg = copy.deepcopy(hf.generation_config)
    gen_cfg.update(do_sample=False, eos_token_id=no_eos_id(ours.config.vocab_size),
                   pad_token_id=0, bos_token_id=None,
                   max_new_tokens=new_tokens, min_new_tokens=None, temperature=None,
                   top_p=None, top_k=None)
    vocab = ours.config.vocab_size
    rows = []
    with torch.no_grad():
        for B in batch_sizes:
            idx, mask = (t.to(device) for t in batch_prompts(B, vocab, lengths, seed=B))
            runners = {
                "llmbook generate": lambda idx=idx, mask=mask: generate(
                    ours, idx, new_tokens, temperature=0, attention_mask=mask),
                "HF generate": lambda idx=idx, mask=mask: hf.generate(
                    idx, attention_mask=mask, generation_config=gen_cfg),
            }
            outputs = {name: fn() for name, fn in runners.items()}    # warm-up, the tokens
            runs: dict[str, list[float]] = {name: [] for name in runners}
            cpu_runs: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(repeats):
                for name, fn in runners.items():                     # interleaved
                    with Stopwatch(device) as sw:
                        fn()
                    runs[name].append(B * new_tokens / sw.wall)
                    cpu_runs[name].append(B * new_tokens / max(sw.cpu, 1e-9))
            same = bool(torch.equal(outputs["llmbook generate"].cpu(),
                                    outputs["HF generate"].cpu()))
            hf_tps = statistics.median(runs["HF generate"])
            hf_cpu = statistics.median(cpu_runs["HF generate"])
            for name in runners:
                tps, cpu = statistics.median(runs[name]), statistics.median(cpu_runs[name])
                rows.append({"model": model_name, "batch_size": B, "impl": name,
                             "tokens_per_s": tps, "tokens_per_s_runs": runs[name],
                             "tokens_per_cpu_s": cpu, "prompt_len": int(idx.shape[1]),
                             "ratio_vs_transformers": tps / hf_tps,
                             "ratio_cpu_vs_transformers": cpu / hf_cpu,
                             "same_tokens": same})
    return rows


def _batched_models(quick: bool, device: torch.device) -> tuple[GPT, torch.nn.Module, str]:
    """The tiny random Llama-style model (``quick``) or SmolLM2-135M, both ways."""
    if quick:
        torch.manual_seed(0)
        ours = GPT(GPTConfig.preset("tiny-llama", n_layer=2, block_size=64)).to(device).eval()
        return ours, to_hf(ours).to(device).eval(), "tiny-llama (random)"
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from llmbook.data import smollm2_path
    from llmbook.interop import from_hf

    hf_logging.disable_progress_bar()
    hf = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=torch.float32).eval()
    ours = from_hf(hf).to(device).eval()
    return ours, hf.to(device), "SmolLM2-135M-Instruct"


def run_batched(device: torch.device, quick: bool = False,
                batch_sizes: tuple[int, ...] = BATCH_SIZES, repeats: int = 3,
                new_tokens: int = 32, threads: int | None = 1) -> dict:
    """The ``--batched`` measurement as a JSON-ready dict (keys: see ``main --help``)."""
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    ours, hf, name = _batched_models(quick, device)
    load_before = _load_average()
    rows = bench_batched(ours, hf, device, batch_sizes, repeats, new_tokens,
                         lengths=(4, 12) if quick else (8, 24), model_name=name)
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "device": _describe(device), "torch": torch.__version__,
            "transformers": _transformers_version(), "python": platform.python_version(),
            "threads": torch.get_num_threads(), "repeats": repeats, "quick": quick,
            "model": name, "dtype": "float32", "new_tokens": new_tokens,
            "batched": rows, "load_average": {"before": load_before, "after": _load_average()}}


def format_batched(result: dict) -> str:
    """The ``--batched`` result as a plain-text table."""
    lines = [(f"{result['model']} on {result['device']}, torch {result['torch']}, "
              f"transformers {result['transformers']}, threads {result['threads']}, "
              f"{result['new_tokens']} new tokens per row, median of {result['repeats']}"),
             (f"{'batch':>5} {'impl':<18} {'tokens/s':>10} {'vs HF':>6} "
              f"{'vs HF CPU-time':>14} same tokens")]
    for r in result["batched"]:
        lines.append(f"{r['batch_size']:>5} {r['impl']:<18} {r['tokens_per_s']:>10,.1f} "
                     f"{r['ratio_vs_transformers']:>6.2f} "
                     f"{r['ratio_cpu_vs_transformers']:>14.2f} {r['same_tokens']}")
    lines.append("(tokens/s: generated tokens of all rows per wall-clock second; vs HF: "
                 "llmbook / transformers in the same run)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ run
def run(configs: list[BenchConfig], device: torch.device, repeats: int = 3,
        compile_: bool = False, threads: int | None = 1) -> dict:
    """Measure every config; returns the JSON-ready result (keys: see ``main --help``)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "device": _describe(device), "torch": torch.__version__,
        "transformers": _transformers_version(), "python": platform.python_version(),
        "threads": torch.get_num_threads(), "repeats": repeats, "compile": compile_,
        "memory": ("torch.cuda.max_memory_allocated" if device.type == "cuda"
                   else "params + grads + AdamW state + saved activations"),
        "configs": {}, "train": [], "generate": [],
    }
    load_before = _load_average()
    for cfg in configs:
        result["configs"][cfg.name] = {**cfg.__dict__}
        result["train"] += bench_training(cfg, device, repeats, compile_)
        result["generate"] += bench_generation(cfg, device, repeats)
    # How busy the machine was: a load above the core count means the wall-clock figures
    # include waiting for a core (the CPU-time ratios are then the ones to read).
    result["load_average"] = {"before": load_before, "after": _load_average()}
    return result


def _load_average() -> float | None:
    """The 1-minute load average (processes running or waiting for a core), if known."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def machine() -> dict:
    """What the numbers were measured on: CPU model, cores, OS (and the GPU, if any)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def format_table(result: dict) -> str:
    """The result as two plain-text tables (training, generation)."""
    head = (f"device: {result['device']}, torch {result['torch']}, threads "
            f"{result['threads']}, median of {result['repeats']}")
    train_head = (f"{'config':<20} {'training':<26} {'tokens/s':>10} {'ratio':>6} "
                  f"{'ratio CPU-time':>14} {'mem MiB':>8} {'MFU':>6}")
    lines = [head, "", train_head]
    for r in result["train"]:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
        lines.append(f"{r['config']:<20} {r['impl']:<26} {r['tokens_per_s']:>10,.0f} "
                     f"{r['ratio']:>6.2f} {r['ratio_cpu']:>14.2f} {r['mem_mib']:>8.1f} "
                     f"{mfu:>6}")
    gen_head = (f"{'config':<20} {'generation':<26} {'ms/token':>10} {'speed':>6} "
                f"{'speed CPU-time':>14} same tokens")
    if result.get("compile"):
        lines += ["", "first training step (includes torch.compile), wall seconds: " + ", ".join(
            f"{r['impl']} {r['first_step_s']:.1f}" for r in result["train"])]
    lines += ["", gen_head]
    for r in result["generate"]:
        lines.append(f"{r['config']:<20} {r['impl']:<26} {r['ms_per_token']:>10.2f} "
                     f"{r['ratio']:>6.2f} {r['ratio_cpu']:>14.2f} {r['same_tokens_as_first']}")
    lines.append(f"(memory: {result['memory']}; ratio and speed: relative to the first row, "
                 "from wall-clock medians; the CPU-time columns use process CPU time)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m llmbook.bench",
        description="Training tokens/s and generation ms/token of llmbook's GPT vs Hugging "
                    "Face GPT-2 (interleaved repeats, median, ratio to the first row).",
        epilog="JSON keys: date, machine [cpu, cores, os, gpu], load_average [before, after], device, torch, transformers, python, threads, repeats, compile, "
               "memory, configs, quick, train [config, impl, tokens_per_s, "
               "tokens_per_s_runs, tokens_per_cpu_s, ratio, ratio_cpu, mem_mib, mfu, "
               "first_loss, first_step_s], generate [config, impl, ms_per_token, ms_per_token_runs, "
               "cpu_ms_per_token, ratio, ratio_cpu, same_tokens_as_first]. With --batched: date, "
               "machine, device, torch, transformers, python, threads, repeats, quick, model, "
               "dtype, new_tokens, load_average, batched [model, batch_size, impl, "
               "tokens_per_s, tokens_per_s_runs, tokens_per_cpu_s, prompt_len, "
               "ratio_vs_transformers, ratio_cpu_vs_transformers, same_tokens].")
    parser.add_argument("--quick", action="store_true",
                        help="a seconds-long smoke run on a toy config (numbers mean little)")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                        help=f"comma-separated, from {sorted(CONFIGS)} "
                             f"(default: {','.join(DEFAULT_CONFIGS)}; gpt2 is for GPUs)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved repeats per figure (default 3; 1 with --quick)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1; 0 = leave torch's default)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile every model (rows are labelled '(compiled)'; "
                             "the first step's time, compilation included, is reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--speedrun", action="store_true",
                        help="time to a target loss: the book's recipe vs nanoGPT's model.py")
    parser.add_argument("--nanogpt", type=Path, default=None,
                        help="scratch folder holding nanoGPT's model.py (for --speedrun)")
    parser.add_argument("--target", type=float, default=None,
                        help="target validation loss for --speedrun (default: the bigram's)")
    parser.add_argument("--batched", action="store_true",
                        help="batched generation tokens/s vs batch size, llmbook vs "
                             "transformers on SmolLM2 (tiny random model with --quick)")
    parser.add_argument("--batch-sizes", default=None,
                        help="for --batched: comma-separated (default 1,2,4,8,16,32; "
                             "1,2,4 with --quick)")
    parser.add_argument("--new-tokens", type=int, default=None,
                        help="for --batched: tokens generated per row (default 32; 4 with "
                             "--quick)")
    args = parser.parse_args(argv)
    if args.batched:
        from llmbook.device import get_device

        device = torch.device(args.device) if args.device else get_device()
        try:
            sizes = tuple(int(b) for b in (args.batch_sizes or (
                "1,2,4" if args.quick else ",".join(map(str, BATCH_SIZES)))).split(","))
        except ValueError:
            parser.error(f"--batch-sizes must be comma-separated integers, got "
                         f"{args.batch_sizes!r}")
        if not sizes or min(sizes) < 1:
            parser.error(f"--batch-sizes must be integers >= 1, got {args.batch_sizes!r}")
        new_tokens = args.new_tokens or (4 if args.quick else 32)
        if new_tokens < 1:
            parser.error(f"--new-tokens must be >= 1, got {new_tokens}")
        result = run_batched(device, args.quick, sizes, args.repeats or (1 if args.quick else 3),
                             new_tokens, args.threads or None)
        print(format_batched(result))
        if args.json:
            write_json_atomic(args.json, result)
            print(f"wrote {args.json}")
        return result
    if args.speedrun:
        result = speedrun("quick" if args.quick else "cpu", args.repeats or 3,
                          args.threads or None, args.nanogpt, args.target)
        print(format_speedrun(result))
        if args.json:
            write_json_atomic(args.json, result)
            print(f"wrote {args.json}")
        return result

    from llmbook.device import get_device

    device = torch.device(args.device) if args.device else get_device()
    if args.quick:
        configs = [QUICK]
    else:
        names = [n.strip() for n in args.configs.split(",") if n.strip()]
        unknown = [n for n in names if n not in CONFIGS]
        if unknown:
            parser.error(f"unknown config(s) {unknown}; choose from {sorted(CONFIGS)}")
        configs = [CONFIGS[n] for n in names]
    repeats = args.repeats or (1 if args.quick else 3)
    result = run(configs, device, repeats=repeats, compile_=args.compile,
                 threads=args.threads or None)
    result["quick"] = args.quick
    print(format_table(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return result


# ------------------------------------------------------------------------ speedrun
SPEEDRUN_SIZES = {  # scale -> steps, eval every, validation tokens, shape overrides
    "quick": (12, 4, 600, {"n_layer": 1, "n_head": 2, "n_embd": 32}, 32, 8),
    "cpu": (1500, 50, 20_000, {"n_layer": 4, "n_head": 4, "n_embd": 128}, 128, 16),
}


def _nanogpt_builder(folder: Path):
    """``build(setup, vocab_size, seed)`` for nanoGPT's ``model.py`` in ``folder``."""
    import contextlib
    import importlib.util
    import io

    spec = importlib.util.spec_from_file_location("nanogpt_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def build(setup, vocab_size: int, seed: int):
        torch.manual_seed(seed)
        m = setup.model
        cfg = module.GPTConfig(block_size=setup.block_size, vocab_size=vocab_size,
                               n_layer=m["n_layer"], n_head=m["n_head"], n_embd=m["n_embd"],
                               dropout=0.0, bias=False)
        with contextlib.redirect_stdout(io.StringIO()):      # it prints its size
            model = module.GPT(cfg)
            opt = model.configure_optimizers(setup.weight_decay, setup.lr, setup.betas, "cpu")
        return model, opt
    return build


def speedrun(size: str = "cpu", repeats: int = 3, threads: int | None = 1,
             nanogpt_dir: Path | None = None, target: float | None = None) -> dict:
    """Time to ``target`` for the book's recipe and nanoGPT (see the module docstring)."""
    from llmbook import pretrained
    from llmbook import speedrun as sr
    from llmbook.ngram import NGramLM

    if size not in SPEEDRUN_SIZES:
        raise ValueError(f"size={size!r} is not one of {sorted(SPEEDRUN_SIZES)}")
    if threads:
        torch.set_num_threads(threads)
    steps, every, n_val, shape, T, B = SPEEDRUN_SIZES[size]
    _, train_ids, val_ids = pretrained.prepare("austen", "ci" if size == "quick" else "cpu")
    val_ids = val_ids[:n_val]
    vocab = int(max(train_ids.max(), val_ids.max())) + 1
    if target is None:                       # the bigram's loss on the same tokens
        lm = NGramLM.fit(train_ids.tolist(), n=2, smoothing="kneser_ney",
                         vocab=list(range(vocab)))
        target = math.log(lm.perplexity(val_ids.tolist()))
    common = {"block_size": T, "batch_size": B}
    book = sr.BOOK.but("book recipe", model=shape, **common)
    nano = sr.BASELINE.but("nanoGPT model.py", model=shape, **common)
    builders, note = {}, "nanoGPT's model.py"
    folder = nanogpt_dir or (Path(os.environ["NANOGPT_DIR"]) if "NANOGPT_DIR" in os.environ
                             else None)
    if folder is not None and (folder / "model.py").exists():
        builders[nano.name] = _nanogpt_builder(folder)
    else:
        nano = nano.but("GPT-2 + AdamW (nanoGPT settings)")
        note = "no nanoGPT model.py given: the book's GPT-2 with nanoGPT's AdamW stands in"
    traces = sr.race([nano, book], train_ids, val_ids, vocab, steps, every, target,
                     seeds=range(repeats), builders=builders)
    rows = sr.summarise(traces, baseline=nano.name)
    return {"size": size, "threads": torch.get_num_threads(), "repeats": repeats,
            "target": target, "steps": steps, "reference": note, "rows": rows,
            "traces": [vars(t) for t in traces]}


def format_speedrun(result: dict) -> str:
    """The speedrun table as text."""
    lines = [f"time to validation loss {result['target']:.3f} (Austen BPE, "
             f"{result['threads']} thread(s), {result['repeats']} seeds interleaved, "
             "process CPU seconds of training steps)", f"reference: {result['reference']}",
             f"{'recipe':34} {'CPU s':>8} {'tokens':>10} {'speed-up':>16} {'final loss':>10}"]
    for r in result["rows"]:
        if r["cpu_s"] is None:
            lines.append(f"{r['setup']:34} {'not reached':>8} {'':>10} {'':>16} "
                         f"{r['final_val']:10.3f}")
            continue
        spread = f"{r['speedup']:.2f} ({r['speedup_min']:.2f}-{r['speedup_max']:.2f})"
        lines.append(f"{r['setup']:34} {r['cpu_s']:8.1f} {r['tokens']:10,.0f} {spread:>16} "
                     f"{r['final_val']:10.3f}")
    return "\n".join(lines)


def write_json_atomic(path: Path, result: dict) -> None:
    """Write ``result`` as JSON to ``path`` by way of a temporary file and a rename, so a
    crash never leaves a half-written result where an old one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    main(sys.argv[1:])
