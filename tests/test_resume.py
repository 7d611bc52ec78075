"""Resuming training after a crash: a run killed with SIGKILL in the middle and resumed
from its last checkpoint ends with weights bit-identical to an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from llmbook import checkpoint
from llmbook.models import GPT, GPTConfig
from llmbook.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

# Dropout > 0, so the torch RNG state must be restored too, not only the data sampler's.
SETUP = """
import torch
from llmbook.models import GPT, GPTConfig
from llmbook.train import TrainConfig

torch.set_num_threads(1)
DATA = (torch.arange(3000) * 7 % 23).long()
CFG = TrainConfig(max_steps=40, batch_size=4, block_size=16, lr=3e-3, warmup_steps=5,
                  eval_interval=1, eval_batches=1, log_interval=10, progress=False, seed=3)

def make_model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=32,
                         dropout=0.1))
"""

CHILD = SETUP + """
import sys, time
from llmbook.train import train

def slow(step, model):          # slow enough for the parent to kill mid-run
    time.sleep(0.15)

train(make_model(), DATA, config=CFG, on_eval=slow, checkpoint_dir=sys.argv[1],
      checkpoint_interval=4)
print("finished")
"""


def _namespace() -> dict:
    ns: dict = {}
    exec(SETUP, ns)                                            # noqa: S102 (our own code)
    return ns


def _saved_step(directory: Path) -> int:
    try:
        return json.loads((directory / "train_state.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_sigkill_mid_run_then_resume_is_bit_identical(tmp_path):
    ns = _namespace()
    reference = ns["make_model"]()
    train(reference, ns["DATA"], config=ns["CFG"])

    ckpt = tmp_path / "ckpt"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, str(script), str(ckpt)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _saved_step(ckpt) < 12 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, f"the run ended before it was killed: {child.stderr.read()}"
        time.sleep(0.2)                               # land anywhere, maybe inside a save
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    killed_at = _saved_step(ckpt) or _saved_step(ckpt.with_name(".ckpt.old"))
    assert 12 <= killed_at < 40

    resumed = ns["make_model"]()
    torch.manual_seed(12345)                  # the resume must not depend on this state
    hist = train(resumed, ns["DATA"], config=ns["CFG"], checkpoint_dir=ckpt,
                 checkpoint_interval=4, resume_from=ckpt)
    assert len(hist.train_loss) == 40 and len(hist.lr) == 40
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resuming"
    final = checkpoint.load(ckpt)
    assert all(torch.equal(a, b) for a, b in zip(final.state_dict().values(),
                                                 reference.state_dict().values()))


class Crash(RuntimeError):
    pass


def test_resume_after_an_exception_matches_and_checks_config(tmp_path):
    ns = _namespace()
    cfg = TrainConfig(**{**ns["CFG"].__dict__, "max_steps": 12, "eval_interval": 5})
    ref = ns["make_model"]()
    ref_hist = train(ref, ns["DATA"], config=cfg)

    def crash_at_10(step, model):
        if step == 10:
            raise Crash("the session disconnected")

    ckpt = tmp_path / "c"
    with pytest.raises(Crash):
        train(ns["make_model"](), ns["DATA"], config=cfg, on_eval=crash_at_10,
              checkpoint_dir=ckpt, checkpoint_interval=4)
    assert json.loads((ckpt / "train_state.json").read_text())["step"] == 8
    again = ns["make_model"]()
    hist = train(again, ns["DATA"], config=cfg, resume_from=ckpt, checkpoint_dir=ckpt)
    assert hist.train_loss == ref_hist.train_loss and hist.lr == ref_hist.lr
    assert hist.eval_steps == ref_hist.eval_steps == [5, 10, 12]
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 ref.state_dict().values()))
    with pytest.warns(UserWarning, match="already at step 12 of 12"):
        train(ns["make_model"](), ns["DATA"], config=cfg, resume_from=ckpt)

    other = TrainConfig(**{**cfg.__dict__, "lr": 1e-3})
    with pytest.raises(ValueError, match=r"different TrainConfig \(lr: saved 0.003, now 0.001\)"):
        train(ns["make_model"](), ns["DATA"], config=other, resume_from=ckpt)
    wrong = GPT(GPTConfig(vocab_size=23, block_size=16, n_layer=1, n_head=2, n_embd=32))
    with pytest.raises(ValueError, match="not the model's"):
        train(wrong, ns["DATA"], config=cfg, resume_from=ckpt)
    with pytest.raises(FileNotFoundError, match="no training state"):
        checkpoint.save(ns["make_model"](), tmp_path / "bare")
        train(ns["make_model"](), ns["DATA"], config=cfg, resume_from=tmp_path / "bare")
