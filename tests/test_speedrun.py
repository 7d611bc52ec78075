"""llmbook.speedrun (time to target, same validation tokens), the speed-run model options,
and ``python -m llmbook.bench --speedrun`` at a tiny size (no timing asserted)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from llmbook import speedrun as sr
from llmbook.models import GPT, GPTConfig

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16}


def _tokens(n: int, vocab: int = 12, seed: int = 0) -> torch.Tensor:
    """A repetitive sequence with a little noise: quick to learn."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % vocab
    noise = torch.randint(0, vocab, (n,), generator=g)
    return torch.where(torch.rand(n, generator=g) < 0.1, noise, base)


def test_token_losses_match_a_direct_cross_entropy():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, block_size=8, **TINY)).eval()
    ids = _tokens(21)
    got = sr.token_losses(model, ids)
    assert got.shape == (20,)
    with torch.no_grad():                      # windows of 8 inputs: [0:8], [8:16], [16:20]
        want = torch.cat([F.cross_entropy(model(ids[None, a:b])[0][0], ids[a + 1:b + 1],
                                          reduction="none") for a, b in [(0, 8), (8, 16),
                                                                         (16, 20)]])
    torch.testing.assert_close(got, want)
    assert sr.val_loss(model, ids) == pytest.approx(want.mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="1-D"):
        sr.token_losses(model, ids[None])


@pytest.mark.parametrize("schedule", sr.SCHEDULES)
def test_lr_factor_warms_up_then_decays(schedule):
    s = sr.BASELINE.but("x", schedule=schedule, warmup=0.1)
    f = [sr.lr_factor(s, t, 100) for t in range(100)]
    assert f[0] == pytest.approx(0.1) and max(f) == pytest.approx(1.0)
    assert f[-1] < 0.15 and all(a >= b - 1e-12 for a, b in zip(f[10:], f[11:]))


def test_setup_rejects_unknown_choices():
    with pytest.raises(ValueError, match="optimizer"):
        sr.Setup(optimizer="sgd")
    with pytest.raises(ValueError, match="schedule"):
        sr.Setup(schedule="step")


def test_speed_run_options_build_and_train():
    cfg = GPTConfig(vocab_size=12, block_size=8, activation="relu2", qk_norm=True,
                    norm="rmsnorm", position="rope", tie_embeddings=False,
                    zero_init_proj=True, **TINY)
    model = GPT(cfg)
    assert model.blocks[0].attn.proj.weight.abs().sum() == 0
    assert model.lm_head.weight.abs().sum() == 0
    with pytest.raises(ValueError, match="activation"):
        GPTConfig(activation="swish")


def test_qk_norm_bounds_attention_logits_under_scaled_weights():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=12, block_size=8, qk_norm=True, **TINY)
    model = GPT(cfg).eval()
    idx = _tokens(8)[None]
    with torch.no_grad():
        before = model(idx)[0]
        model.blocks[0].attn.qkv.weight[:32].mul_(10.0)    # q and k rows 10x larger
        after = model(idx)[0]
    torch.testing.assert_close(before, after, atol=1e-4, rtol=1e-4)


def test_race_reaches_a_target_and_summarises():
    data = _tokens(4000)
    train_ids, val_ids = data[:3500], data[3500:]
    base = sr.BASELINE.but("base", model=TINY, block_size=16, batch_size=8, lr=1e-3)
    fast = base.but("fast", lr=1e-2)
    traces = sr.race([base, fast], train_ids, val_ids, 12, max_steps=60, eval_every=10,
                     target=2.0, seeds=(0, 1))
    assert [t.name for t in traces] == ["base", "fast", "base", "fast"]
    for t in traces:
        assert t.steps[0] == 0 and t.val[0] > 2.0          # untrained: about ln 12
        assert all(b >= a for a, b in zip(t.cpu_s, t.cpu_s[1:]))
    fast_runs = [t for t in traces if t.name == "fast"]
    assert all(t.target_cpu_s is not None and t.val[-1] <= 2.0 for t in fast_runs)
    rows = sr.summarise(traces)
    assert [r["setup"] for r in rows] == ["base", "fast"]
    assert rows[1]["seeds"] == 2 and rows[1]["reached"] == 2


def test_muon_setup_trains():
    data = _tokens(3000)
    s = sr.BASELINE.but("muon", model=TINY, block_size=16, batch_size=8, optimizer="muon",
                        lr=1e-2, muon_lr=0.05, weight_decay=0.0, schedule="wsd")
    (t,) = sr.race([s], data[:2500], data[2500:], 12, max_steps=40, eval_every=20)
    assert t.val[-1] < t.val[0] - 0.5


def test_bench_speedrun_flag_runs_at_a_tiny_size(tmp_path, capsys):
    from llmbook.bench import main

    before = torch.get_num_threads()
    path = tmp_path / "speedrun.json"
    try:
        result = main(["--speedrun", "--quick", "--repeats", "1", "--json", str(path)])
    finally:
        torch.set_num_threads(before)
    assert "time to validation loss" in capsys.readouterr().out
    saved = json.loads(path.read_text())
    assert [r["setup"] for r in saved["rows"]][1] == "book recipe"
    assert math.isfinite(result["target"]) and result["repeats"] == 1
    for row in saved["rows"]:
        assert {"cpu_s", "tokens", "speedup", "final_val"} <= row.keys()
        assert math.isfinite(row["final_val"])
