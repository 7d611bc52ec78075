"""Checkpoints under hostile conditions: failed and killed saves, damaged configs, format
versions, weights that do not fit their config, tokenizers that do not fit the model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from llmbook import checkpoint
from llmbook.models import GPT, GPTConfig
from llmbook.tokenizers import CharTokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(vocab: int = 40, fill: float | None = None) -> GPT:
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=vocab, block_size=16, n_layer=1, n_head=2, n_embd=16))
    if fill is not None:
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(fill)
    return m


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ------------------------------------------------------------------ atomic saves
def test_a_failing_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    good = _model(fill=0.5)
    checkpoint.save(good, tmp_path / "ck")
    (tmp_path / "ck" / "notes.txt").write_text("mine")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(_model(fill=0.25), tmp_path / "ck")
    monkeypatch.undo()
    assert _same(checkpoint.load(tmp_path / "ck"), good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]       # no temp left over
    checkpoint.save(_model(fill=0.25), tmp_path / "ck")
    assert (tmp_path / "ck" / "notes.txt").read_text() == "mine"      # other files kept


def test_non_finite_weights_are_refused_before_touching_the_folder(tmp_path):
    good = _model(fill=0.5)
    checkpoint.save(good, tmp_path / "ck")
    bad = _model()
    with torch.no_grad():
        bad.ln_f.weight[3] = float("nan")
    with pytest.raises(ValueError, match=r"non-finite weights .*ln_f.weight"):
        checkpoint.save(bad, tmp_path / "ck")
    assert _same(checkpoint.load(tmp_path / "ck"), good)


def test_a_save_interrupted_between_its_renames_is_recovered(tmp_path):
    good = _model(fill=0.5)
    checkpoint.save(good, tmp_path / "ck")
    os.replace(tmp_path / "ck", tmp_path / ".ck.old")              # the crash's leftovers
    (tmp_path / ".ck.tmp-abc").mkdir()
    assert _same(checkpoint.load(tmp_path / "ck"), good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


KILL_CHILD = """
import sys, torch
from llmbook import checkpoint
from llmbook.models import GPT, GPTConfig
torch.set_num_threads(1)
m = GPT(GPTConfig(vocab_size=2000, block_size=64, n_layer=2, n_head=2, n_embd=64))
i = 0
while True:
    i += 1
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(float(i))
    checkpoint.save(m, sys.argv[1])
    print(i, flush=True)
"""


def test_sigkill_during_repeated_saves_always_leaves_a_whole_checkpoint(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(KILL_CHILD))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.13, 0.31, 0.57):
        ck = tmp_path / f"ck{delay}"
        child = subprocess.Popen([sys.executable, str(script), str(ck)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert child.stdout.readline().strip() == "1"           # one save is complete
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        loaded = checkpoint.load(ck)
        values = {float(v) for p in loaded.parameters() for v in p.detach().unique()}
        assert len(values) == 1 and values.pop() >= 1                # one whole save


# ---------------------------------------------------------------- validated loads
def _meta(path):
    return json.loads((path / "config.json").read_text())


def _write(path, meta):
    (path / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("key", ["norm", "n_embd", "position", "bias"])
def test_config_with_a_missing_key_is_refused_by_name(tmp_path, key):
    checkpoint.save(_model(), tmp_path)
    meta = _meta(tmp_path)
    del meta["config"][key]
    _write(tmp_path, meta)
    with pytest.raises(ValueError, match=rf"config lacks keys \['{key}'\]"):
        checkpoint.load(tmp_path)


def test_config_added_later_may_be_absent(tmp_path):
    """Keys that format 1 did not have take their defaults (a newer option)."""
    checkpoint.save(_model(), tmp_path)
    meta = _meta(tmp_path)
    meta["config"] = {k: v for k, v in meta["config"].items()
                      if k in checkpoint._FORMAT1_KEYS[GPTConfig]}
    _write(tmp_path, meta)
    checkpoint.load(tmp_path)


@pytest.mark.parametrize("fmt, match", [(None, "no 'format' version"),
                                        (2, "format 2; this llmbook reads formats"),
                                        ("1", "format '1'")])
def test_format_version_is_checked(tmp_path, fmt, match):
    checkpoint.save(_model(), tmp_path)
    meta = _meta(tmp_path)
    if fmt is None:
        del meta["format"]
    else:
        meta["format"] = fmt
    _write(tmp_path, meta)
    with pytest.raises(ValueError, match=match):
        checkpoint.load(tmp_path)


def test_weights_that_do_not_fit_the_config_are_named(tmp_path):
    checkpoint.save(_model(), tmp_path)
    meta = _meta(tmp_path)
    meta["config"]["vocab_size"] = 41
    _write(tmp_path, meta)
    with pytest.raises(ValueError, match=r"shape mismatches \['(wte|lm_head).weight: file \(40, 16\) "
                                         r"vs config \(41, 16\)'"):
        checkpoint.load(tmp_path)
    meta["config"].update(vocab_size=40, n_layer=2)
    _write(tmp_path, meta)
    with pytest.raises(ValueError, match=r"missing tensors \['blocks.1.ln_1.weight'"):
        checkpoint.load(tmp_path)
    meta["config"].update(n_layer=1, bias=False)
    _write(tmp_path, meta)
    with pytest.raises(ValueError, match=r"unexpected tensors \['blocks.0.attn.proj.bias'"):
        checkpoint.load(tmp_path)
    meta["config"].update(bias="False")
    _write(tmp_path, meta)
    with pytest.raises(ValueError, match="bias must be True or False"):
        checkpoint.load(tmp_path)


def test_tokenizer_vocabulary_must_match_the_model():
    tok = CharTokenizer("abcdefghij")
    checkpoint.check_tokenizer(_model(vocab=10), tok)
    with pytest.raises(ValueError, match="tokenizer has vocab_size=10 but the model .*=40"):
        checkpoint.check_tokenizer(_model(vocab=40), tok)


def test_load_tiny_gpt_rejects_a_foreign_tokenizer(tmp_path):
    from llmbook import pretrained

    model = _model(vocab=10)
    pretrained.save_tiny_gpt(model, CharTokenizer("abcdefghij"), "austen", "ci",
                             folder=tmp_path / "m")
    pretrained.load_tiny_gpt("austen", "ci", "cpu", folder=tmp_path / "m")
    pretrained._save_tokenizer(CharTokenizer("abcdefgh"), tmp_path / "m" / "tokenizer.json")
    with pytest.raises(ValueError, match="tokenizer has vocab_size=8"):
        pretrained.load_tiny_gpt("austen", "ci", "cpu", folder=tmp_path / "m")
