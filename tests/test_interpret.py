"""llmbook.interpret: hooks checked against direct computations."""
from __future__ import annotations

import pytest
import torch
from llmbook.interpret import (
    control_labels,
    fit_probe,
    grad_x_input,
    hooks,
    induction_scores,
    logit_lens,
    patch_residual,
    patching_map,
    probe_accuracy,
    recording_attention,
    repeated_tokens,
    residual_stream,
    run_with_residuals,
)
from llmbook.models import GPT, GPTConfig

CONFIGS = {
    "gpt2": {"vocab_size": 50, "block_size": 32, "n_layer": 3, "n_head": 4, "n_embd": 32},
    "llama": {"vocab_size": 50, "block_size": 32, "n_layer": 3, "n_head": 4, "n_embd": 32,
              "n_kv_head": 2, "norm": "rmsnorm", "position": "rope", "mlp": "swiglu",
              "bias": False},
}


def model_for(kind: str, dtype=torch.float32) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**CONFIGS[kind])).to(dtype).eval()


def ids(B: int = 2, T: int = 10, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 50, (B, T), generator=torch.Generator().manual_seed(seed))


def no_hooks_left(model: GPT) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("kind", CONFIGS)
def test_last_lens_reading_is_the_models_logits(kind):
    model, x = model_for(kind), ids()
    lens = logit_lens(model, x)
    assert lens.shape == (4, 2, 10, 50)
    assert torch.allclose(lens[-1], model(x)[0], atol=1e-5)
    assert torch.allclose(logit_lens(model, x, position=3), lens[:, :, 3])
    assert no_hooks_left(model)


def test_readings_against_a_direct_computation():
    model, x = model_for("gpt2"), ids()
    logits, resid = run_with_residuals(model, x)
    h = model.wte(x) + model.wpe(x.size(1))
    assert torch.allclose(resid[0], h)
    for i, block in enumerate(model.blocks):
        h = block(h, causal=True)
        assert torch.allclose(resid[i + 1], h, atol=1e-6)
    assert torch.allclose(logits, model.lm_head(model.ln_f(h)), atol=1e-5)


def test_left_padded_batch_reads_like_each_row_alone():
    model = model_for("llama")
    a, b = ids(1, 6, 2), ids(1, 9, 3)
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), a], 1), b])
    mask = torch.ones_like(batch)
    mask[0, :3] = 0
    lens = logit_lens(model, batch, position=8, attention_mask=mask)
    assert torch.allclose(lens[:, 0], logit_lens(model, a, position=5)[:, 0], atol=1e-5)
    assert torch.allclose(lens[:, 1], logit_lens(model, b, position=8)[:, 0], atol=1e-5)


@pytest.mark.parametrize("kind", CONFIGS)
def test_patching_with_own_activations_changes_nothing(kind):
    model, x = model_for(kind), ids()
    resid = residual_stream(model, x)
    ref = model(x)[0]
    for layer in (0, 1, 3):
        for pos in (0, 9):
            out = patch_residual(model, x, layer, pos, resid[layer, :, pos])
            assert torch.allclose(out, ref, atol=1e-5)
    assert no_hooks_left(model)


def test_patching_changes_only_what_follows():
    model = model_for("gpt2")
    x, y = ids(1, 10, 4), ids(1, 10, 5)
    other = residual_stream(model, y)
    out = patch_residual(model, x, 2, 6, other[2, :, 6])
    ref = model(x)[0]
    assert torch.allclose(out[:, :6], ref[:, :6], atol=1e-6)
    assert not torch.allclose(out[:, 6:], ref[:, 6:], atol=1e-4)
    # the last reading at the last position is the whole answer
    last = patch_residual(model, x, 3, 9, other[3, :, 9])
    assert torch.allclose(last[0, 9], model(y)[0][0, 9], atol=1e-5)


@pytest.mark.parametrize("kind", CONFIGS)
def test_patching_map_matches_one_run_per_cell(kind):
    model = model_for(kind)
    clean, corrupt = ids(1, 7, 6), ids(1, 7, 6).clone()
    corrupt[0, 2:4] = (corrupt[0, 2:4] + 7) % 50
    # the tokens the corruption lowers and raises most: the two runs' logit differences
    # are then far apart, so normalising by them does not amplify float rounding
    with torch.no_grad():
        gain = model(clean)[0][0, -1] - model(corrupt)[0][0, -1]
    a, w = int(gain.argmax()), int(gain.argmin())
    grid = patching_map(model, clean, corrupt, a, w, chunk=5)
    resid = residual_stream(model, clean)
    d = [(lg[0, -1, a] - lg[0, -1, w]).item() for lg in (model(clean)[0], model(corrupt)[0])]
    assert d[0] - d[1] > 0.02, d
    for layer in range(4):
        for pos in range(7):
            lg = patch_residual(model, corrupt, layer, pos, resid[layer, :, pos])
            want = ((lg[0, -1, a] - lg[0, -1, w]).item() - d[1]) / (d[0] - d[1])
            assert abs(grid[layer, pos].item() - want) < 1e-4, (layer, pos)
    assert (grid[:, :2] == 0).all() and abs(grid[3, 6].item() - 1) < 1e-4
    part = patching_map(model, clean, corrupt, a, w, readings=[1, 3])
    assert torch.allclose(part, grid[[1, 3]], atol=1e-5)
    assert no_hooks_left(model)


def test_induction_scores_against_loops():
    model = model_for("gpt2")
    x = repeated_tokens(3, 6, 5, 50, torch.Generator().manual_seed(0))
    assert x.shape == (3, 12) and torch.equal(x[:, :6], x[:, 6:])
    maps = model.attention_maps(x)
    want = torch.zeros(3, 4)
    for layer in range(3):
        for h in range(4):
            vals = [maps[layer][b, h, t, t - 5] for b in range(3) for t in range(6, 12)]
            want[layer, h] = torch.stack(vals).mean()
    assert torch.allclose(induction_scores(model, x), want, atol=1e-6)
    bos = torch.cat([torch.zeros(3, 1, dtype=torch.long), x], 1)
    assert induction_scores(model, bos, prefix=1).shape == (3, 4)


def test_grad_x_input_sums_to_the_directional_derivative():
    model = model_for("llama", torch.float64)
    x = ids(2, 8)
    attr = grad_x_input(model, x, 5, torch.tensor([3, 7]))
    assert attr.shape == (2, 8) and (attr[:, 6:] == 0).all()
    eps = 1e-6

    def logit_at(scale: float) -> torch.Tensor:
        with hooks((model.wte, lambda mod, args, out: out * scale)), torch.no_grad():
            lg = model(x)[0]
        return lg[torch.arange(2), 5, torch.tensor([3, 7])]

    deriv = (logit_at(1 + eps) - logit_at(1 - eps)) / (2 * eps)
    assert torch.allclose(attr.sum(1), deriv, atol=1e-6)
    one = grad_x_input(model, x, 5, 3)
    assert torch.allclose(one[0], attr[0])
    assert no_hooks_left(model)


def test_attention_recorded_during_a_gradient_pass():
    model, x = model_for("llama"), ids()
    with recording_attention(model) as maps:
        attr = grad_x_input(model, x, 9, 4)
    ref = model.attention_maps(x)
    assert len(maps) == 3 and all(torch.allclose(a, b, atol=1e-6)
                                  for a, b in zip(maps, ref, strict=True))
    assert torch.allclose(attr, grad_x_input(model, x, 9, 4), atol=1e-6)
    assert not any(b.attn.record_weights for b in model.blocks)


def test_control_labels_follow_types():
    types = torch.tensor([4, 1, 4, 9, 1, 4] * 50)
    labels = torch.tensor([0, 1, 1, 0, 1, 0] * 50)
    ctl = control_labels(types, labels, torch.Generator().manual_seed(0))
    for t in types.unique():
        assert ctl[types == t].unique().numel() == 1
    again = control_labels(types, labels, torch.Generator().manual_seed(0))
    assert torch.equal(ctl, again)
    many = torch.arange(4000)
    share = control_labels(many, (many % 4 == 0).long(), torch.Generator().manual_seed(1))
    assert abs(share.float().mean().item() - 0.25) < 0.03


def test_probe_agrees_with_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(600, 8, generator=g) * torch.linspace(0.5, 3, 8) + 2
    y = ((X[:, 0] - 2) - 0.5 * (X[:, 3] - 2) + 0.3 * torch.randn(600, generator=g) > 0).long()
    probe = fit_probe(X[:400], y[:400], weight_decay=1e-3)
    ref = sklearn.LogisticRegression(C=1.0, max_iter=1000).fit(X[:400].numpy(),
                                                               y[:400].numpy())
    ours = probe(X[400:]).argmax(-1).numpy()
    agree = (ours == ref.predict(X[400:].numpy())).mean()
    assert agree > 0.97
    correct, n = probe_accuracy(probe, X[400:], y[400:])
    assert n == 200 and correct / n > 0.85
    sep = torch.cat([torch.zeros(50, 2), torch.ones(50, 2)]) + 0.01 * torch.randn(100, 2)
    lab = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    assert probe_accuracy(fit_probe(sep, lab), sep, lab) == (100, 100)


def test_bad_input_is_named():
    model, x = model_for("gpt2"), ids()
    resid = residual_stream(model, x)
    with pytest.raises(ValueError, match="layer must be a residual reading 0..3"):
        patch_residual(model, x, 4, 0, resid[0, :, 0])
    with pytest.raises(ValueError, match="position must be < T = 10"):
        patch_residual(model, x, 1, 10, resid[0, :, 0])
    with pytest.raises(ValueError, match="value must be"):
        patch_residual(model, x, 1, 2, resid[0])
    with pytest.raises(ValueError, match="same T"):
        patching_map(model, ids(1, 5), ids(1, 6), 1, 2)
    with pytest.raises(ValueError, match="nothing to restore"):
        patching_map(model, ids(1, 5), ids(1, 5), 1, 2)
    with pytest.raises(ValueError, match="even number"):
        induction_scores(model, ids(2, 7))
    with pytest.raises(ValueError, match="idx must be a"):
        logit_lens(model, x[0])
    with pytest.raises(TypeError, match="llmbook GPT"):
        logit_lens(torch.nn.Linear(2, 2), x)
    with pytest.raises(ValueError, match="token must be"):
        grad_x_input(model, x, 3, 50)
    with pytest.raises(ValueError, match="high must exceed low"):
        repeated_tokens(2, 4, 10, 10)
    with pytest.raises(ValueError, match="y must be"):
        fit_probe(torch.randn(5, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(RuntimeError), hooks((model.blocks[0], lambda *a: None)):
        raise RuntimeError("inside")
    assert no_hooks_left(model)
