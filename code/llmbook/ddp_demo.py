"""Data-parallel training with ``torch.distributed``: one training step of a small GPT in
several processes, each on its share of the batch, with ``DistributedDataParallel``
averaging the gradients, and the AdamW state sharded across the processes (ZeRO stage 1,
written by hand: each rank keeps the moments of its own parameters only and broadcasts
them after its update); then the same step with PyTorch's FSDP (``fully_shard``), which
shards the parameters too.

    python -m llmbook.ddp_demo --world-size 2          # CPU processes, gloo backend
    torchrun --nproc_per_node=8 -m llmbook.ddp_demo --backend nccl   # 8 GPUs

``run(world_size)`` launches the processes from Python (``torch.multiprocessing``, spawn)
and returns what rank 0 saw; ``single_process_step()`` is the same step in one process on
the whole batch, the reference the distributed one must equal.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from llmbook._validate import finite, positive_int
from llmbook.models import GPT, GPTConfig

__all__ = ["demo_model", "demo_batch", "single_process_step", "shard_params", "run",
           "free_port", "state_bytes"]

LR = 1e-2


def demo_model(seed: int = 0) -> GPT:
    """The small GPT every rank builds identically (seeded): 2 layers, 64 wide."""
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=128, block_size=32, n_layer=2, n_head=4, n_embd=64)
    return GPT(cfg)


def demo_batch(batch_size: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch ``(x, y)``, each ``(batch_size, 32)`` int64 (random token ids)."""
    positive_int("batch_size", batch_size)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 128, (batch_size, 33), generator=g)
    return ids[:, :-1], ids[:, 1:]


def shard_params(params: list[torch.Tensor], world_size: int) -> list[int]:
    """Owner rank of each parameter: greedy, largest first, onto the least-loaded rank,
    so every rank holds about ``1 / world_size`` of the elements."""
    positive_int("world_size", world_size)
    load = [0] * world_size
    owner = [0] * len(params)
    for i in sorted(range(len(params)), key=lambda i: -params[i].numel()):
        r = min(range(world_size), key=load.__getitem__)
        owner[i] = r
        load[r] += params[i].numel()
    return owner


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of the tensors an optimizer keeps (AdamW: two moments per parameter)."""
    return sum(v.numel() * v.element_size() for s in opt.state.values()
               for v in s.values() if isinstance(v, torch.Tensor) and v.dim() > 0)


def single_process_step(batch_size: int = 8) -> dict:
    """The reference: one step on the whole batch in this process.

    Returns ``grads`` and ``params`` (after one AdamW step), name -> tensor, and
    ``state_bytes`` (the full optimizer state) and ``param_bytes``.
    """
    model = demo_model()
    x, y = demo_batch(batch_size)
    _, loss = model(x, y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    opt.step()
    return {"loss": loss.item(), "grads": grads,
            "params": {n: p.detach().clone() for n, p in model.named_parameters()},
            "state_bytes": state_bytes(opt),
            "param_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}


def _step(rank: int, world_size: int, batch_size: int, device: torch.device) -> dict:
    """The distributed step on this rank (the process group is set up)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = demo_model().to(device)
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    x, y = demo_batch(batch_size)
    rows = x.size(0) // world_size                     # this rank's share of the batch
    x, y = (t[rank * rows:(rank + 1) * rows].to(device) for t in (x, y))
    _, loss = ddp(x, y)
    loss.backward()                                    # DDP all-reduces (averages) grads
    grads = {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()}
    params = list(model.parameters())
    owner = shard_params(params, world_size)
    mine = [p for p, r in zip(params, owner) if r == rank]
    opt = torch.optim.AdamW(mine, lr=LR)               # moments for my shard only
    opt.step()
    for p, r in zip(params, owner):                    # owners send their updated shard
        dist.broadcast(p.data, src=r)
    total = torch.tensor([loss.item()], device=device)
    dist.all_reduce(total)
    return {"grads": grads, "loss": total.item() / world_size,
            "params": {n: p.detach().cpu().clone() for n, p in model.named_parameters()},
            "state_bytes": state_bytes(opt),
            "param_bytes": sum(p.numel() * p.element_size() for p in params)}


def _fsdp_step(rank: int, world_size: int, batch_size: int, device: torch.device) -> dict:
    """The same step with FSDP (``fully_shard`` per block and on the whole model): each
    rank stores ``1 / world_size`` of every parameter and of its AdamW moments, and
    gathers the full weights only while a block runs."""
    from torch.distributed.fsdp import fully_shard

    model = demo_model().to(device)
    for block in model.blocks:
        fully_shard(block)
    fully_shard(model)
    x, y = demo_batch(batch_size)
    rows = x.size(0) // world_size
    x, y = (t[rank * rows:(rank + 1) * rows].to(device) for t in (x, y))
    _, loss = model(x, y)
    loss.backward()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    opt.step()
    local = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
    moments = sum(v.to_local().numel() * v.element_size() for st in opt.state.values()
                  for v in st.values() if hasattr(v, "to_local"))
    full = {n: p.full_tensor().detach().cpu().clone() for n, p in model.named_parameters()}
    return {"params": full, "state_bytes": moments, "param_bytes": local}


def _save(result: dict, rank: int, out: Path) -> None:
    tensors = {f"grad.{k}": v.contiguous() for k, v in result["grads"].items()}
    tensors.update({f"param.{k}": v.contiguous() for k, v in result["params"].items()})
    tensors.update({f"fsdp.{k}": v.contiguous() for k, v in result["fsdp_params"].items()})
    meta = {k: result[k] for k in ("loss", "state_bytes", "param_bytes", "fsdp_state_bytes",
                                   "fsdp_param_bytes")}
    for name, write in ((f"rank{rank}.safetensors", lambda p: save_file(tensors, p)),
                        (f"rank{rank}.json", lambda p: p.write_text(json.dumps(meta)))):
        tmp = out / (name + ".tmp")
        write(tmp)
        os.replace(tmp, out / name)                    # atomic: never a half-written file


def _worker(rank: int, world_size: int, port: int, out: str, batch_size: int,
            timeout_s: float) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=timeout_s))
    try:
        cpu = torch.device("cpu")
        res = _step(rank, world_size, batch_size, cpu)
        fsdp = _fsdp_step(rank, world_size, batch_size, cpu)
        res.update({f"fsdp_{k}": v for k, v in fsdp.items()})
        _save(res, rank, Path(out))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world_size: int = 2, batch_size: int = 8, timeout_s: float = 120.0) -> dict:
    """Launch ``world_size`` CPU processes (gloo) for one step; never waits past
    ``timeout_s`` (the processes are then terminated and ``TimeoutError`` raised).

    Returns ``ranks``: per rank ``{"loss", "state_bytes", "param_bytes", "grads",
    "params"}`` of the DDP + sharded-AdamW step and ``fsdp_state_bytes``,
    ``fsdp_param_bytes``, ``fsdp_params`` (full weights after the step) of the FSDP one.
    """
    positive_int("world_size", world_size)
    positive_int("batch_size", batch_size)
    finite("timeout_s", timeout_s, gt=0)
    if batch_size % world_size:
        raise ValueError(f"batch_size={batch_size} must be a multiple of "
                         f"world_size={world_size}")
    with tempfile.TemporaryDirectory() as out:
        ctx = mp.start_processes(_worker, args=(world_size, free_port(), out, batch_size,
                                                timeout_s),
                                 nprocs=world_size, join=False, start_method="spawn")
        deadline = time.monotonic() + timeout_s
        try:
            while not ctx.join(timeout=1.0):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {world_size} processes did not finish within "
                                       f"timeout_s={timeout_s}")
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.terminate()
        return {"ranks": [_load(Path(out), r) for r in range(world_size)]}


def _load(out: Path, rank: int) -> dict:
    meta = json.loads((out / f"rank{rank}.json").read_text())
    tensors = load_file(out / f"rank{rank}.safetensors")
    meta["grads"] = {k[5:]: v for k, v in tensors.items() if k.startswith("grad.")}
    meta["params"] = {k[6:]: v for k, v in tensors.items() if k.startswith("param.")}
    meta["fsdp_params"] = {k[5:]: v for k, v in tensors.items() if k.startswith("fsdp.")}
    return meta


def compare(result: dict, reference: dict) -> dict:
    """Largest absolute differences between the distributed and single-process step:
    ``grad`` (rank 0's averaged gradients), ``param`` (after the sharded update, over
    every rank), and per-rank optimizer ``state_bytes``."""
    r0 = result["ranks"][0]
    grad = max((r0["grads"][n] - g).abs().max().item() for n, g in reference["grads"].items())
    param = max((r["params"][n] - p).abs().max().item()
                for r in result["ranks"] for n, p in reference["params"].items())
    fsdp = max((r["fsdp_params"][n] - p).abs().max().item()
               for r in result["ranks"] for n, p in reference["params"].items())
    return {"grad": grad, "param": param, "fsdp_param": fsdp,
            "state_bytes": [r["state_bytes"] for r in result["ranks"]],
            "fsdp_state_bytes": [r["fsdp_state_bytes"] for r in result["ranks"]],
            "fsdp_param_bytes": [r["fsdp_param_bytes"] for r in result["ranks"]]}


def command(n_gpus: int) -> str:
    """The command that runs the same step on ``n_gpus`` GPUs of one machine (NCCL)."""
    positive_int("n_gpus", n_gpus)
    return f"torchrun --nproc_per_node={n_gpus} -m llmbook.ddp_demo --backend nccl"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    if "LOCAL_RANK" in os.environ:                     # started by torchrun
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ["LOCAL_RANK"])
        device = torch.device(f"cuda:{local}" if args.backend == "nccl" else "cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(args.backend)
        try:
            batch = max(world, args.batch_size // world * world)    # a multiple of world
            res = _step(rank, world, batch, device)
            fsdp = _fsdp_step(rank, world, batch, device)
            if rank == 0:
                print(f"{world} ranks, loss {res['loss']:.4f}; rank 0 holds AdamW state of "
                      f"{res['state_bytes']:,} bytes (sharded AdamW), weights of "
                      f"{fsdp['param_bytes']:,} bytes and state of "
                      f"{fsdp['state_bytes']:,} bytes (FSDP)")
        finally:
            dist.destroy_process_group()
        return
    ref = single_process_step(args.batch_size)
    diff = compare(run(args.world_size, args.batch_size), ref)
    print(f"{args.world_size} processes vs 1: max |grad diff| {diff['grad']:.2e}, "
          f"max |param diff| after the sharded AdamW step {diff['param']:.2e}")
    print(f"AdamW state bytes per rank {diff['state_bytes']} "
          f"(one process: {ref['state_bytes']:,})")
    print(f"FSDP: max |param diff| {diff['fsdp_param']:.2e}; parameter bytes per rank "
          f"{diff['fsdp_param_bytes']} (one process: {ref['param_bytes']:,}), AdamW state "
          f"bytes per rank {diff['fsdp_state_bytes']}")


if __name__ == "__main__":
    main()
