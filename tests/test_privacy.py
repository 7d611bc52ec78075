"""llmbook.privacy: per-example gradients, DP-SGD's aggregation and the RDP accountant
checked against Opacus (and a loop of ordinary backward passes); exposure by hand."""
import math
import warnings

import numpy as np
import pytest
import torch
from llmbook.privacy import (
    clip_and_noise,
    dp_sgd_step,
    epsilon,
    exposure,
    per_example_grads,
    poisson_batch,
    rdp_sampled_gaussian,
)
from torch import nn
from torch.nn import functional as F


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def _data(b=7):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 5, generator=g), torch.randint(0, 3, (b,), generator=g)


def test_per_example_grads_equal_one_backward_per_example():
    model, (x, y) = _model(), _data()
    got = per_example_grads(model, F.cross_entropy, x, y)
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for name, p in model.named_parameters():
            assert torch.allclose(got[name][i], p.grad, atol=1e-6), (name, i)


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_per_example_grads_match_opacus():
    from opacus import GradSampleModule

    model, (x, y) = _model(), _data()
    ours = per_example_grads(model, F.cross_entropy, x, y)
    gsm = GradSampleModule(_model())
    F.cross_entropy(gsm(x), y).backward()        # opacus: mean loss
    for name, p in gsm._module.named_parameters():
        assert torch.allclose(ours[name], p.grad_sample, atol=1e-6), name


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_clipping_without_noise_matches_opacus_optimizer():
    from opacus.optimizers import DPOptimizer

    x, y = _data(9)
    ref = _model()
    mine = _model()
    from opacus import GradSampleModule
    gsm = GradSampleModule(ref)
    opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.5), noise_multiplier=0.0,
                      max_grad_norm=1.4, expected_batch_size=9)
    F.cross_entropy(gsm(x), y).backward()        # opacus: mean loss
    opt.step()
    dp_sgd_step(mine, F.cross_entropy, x, y, torch.optim.SGD(mine.parameters(), lr=0.5),
                max_norm=1.4, noise_multiplier=0.0, expected_batch_size=9)
    for (n1, p1), (_, p2) in zip(ref.named_parameters(), mine.named_parameters(), strict=True):
        assert torch.allclose(p1, p2, atol=1e-6), n1


def test_clip_and_noise_bounds_each_example_and_adds_the_right_noise():
    g = {"w": torch.randn(50, 3, 4) * 10, "b": torch.randn(50, 4) * 10}
    out, norms = clip_and_noise(g, max_norm=1.0, noise_multiplier=0.0, expected_batch_size=50)
    assert norms.shape == (50,)
    total = torch.sqrt(out["w"].pow(2).sum() + out["b"].pow(2).sum())
    assert total <= 1.0 + 1e-5            # a mean of vectors of norm <= 1
    zero = {"w": torch.zeros(4, 2000)}
    noisy, _ = clip_and_noise(zero, 2.0, 1.5, expected_batch_size=4,
                              generator=torch.Generator().manual_seed(0))
    assert abs(noisy["w"].std().item() - 1.5 * 2.0 / 4) < 0.05


def test_rdp_and_epsilon_match_opacus():
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    orders = list(range(2, 64))
    for q, sigma, steps in [(0.01, 1.1, 1000), (0.05, 0.7, 300), (0.2, 2.0, 50), (1.0, 3.0, 10)]:
        ours = rdp_sampled_gaussian(q, sigma, steps, orders)
        ref = compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
        assert np.allclose(ours, ref, rtol=1e-9), (q, sigma)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eps_ref, _ = get_privacy_spent(orders=orders, rdp=ref, delta=1e-5)
        assert math.isclose(epsilon(q, sigma, steps, 1e-5, orders), eps_ref, rel_tol=1e-9)


def test_epsilon_grows_with_steps_and_falls_with_noise():
    assert epsilon(0.01, 1.0, 100, 1e-5) < epsilon(0.01, 1.0, 1000, 1e-5)
    assert epsilon(0.01, 2.0, 1000, 1e-5) < epsilon(0.01, 1.0, 1000, 1e-5)


def test_poisson_batch_has_the_expected_size():
    sizes = [len(poisson_batch(1000, 0.1, torch.Generator().manual_seed(s))) for s in range(50)]
    assert abs(np.mean(sizes) - 100) < 10


def test_exposure_by_hand():
    scores = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    assert exposure(-1.0, scores) == 2.0                 # first of 4: log2 4 - log2 1
    assert exposure(-3.0, scores) == 2.0 - math.log2(3)
    assert exposure(-1.0, torch.tensor([-1.0, -1.0])) == 1.0   # ties favour the canary


@pytest.mark.parametrize("call, match", [
    (lambda: exposure(-9.0, torch.tensor([-1.0, -2.0])), "include the canary"),
    (lambda: exposure(-1.0, torch.tensor([])), "at least one"),
    (lambda: rdp_sampled_gaussian(0.0, 1.0, 10), "q must be"),
    (lambda: rdp_sampled_gaussian(0.1, 1.0, 10, orders=[1.5]), "orders must be integers"),
    (lambda: epsilon(0.1, 1.0, 10, delta=0.0), "delta must be"),
    (lambda: clip_and_noise({"w": torch.ones(2, 3)}, max_norm=-1.0, noise_multiplier=1.0,
                            expected_batch_size=2), "max_norm must be"),
    (lambda: clip_and_noise({}, 1.0, 1.0, 2), "at least one"),
    (lambda: per_example_grads(_model(), F.cross_entropy, torch.ones(3, 5),
                               torch.zeros(2, dtype=torch.long)), "same number"),
    (lambda: poisson_batch(0, 0.1), "n must be"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_an_empty_poisson_batch_still_adds_noise():
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)
    norms = dp_sgd_step(model, F.cross_entropy, x, y, torch.optim.SGD(model.parameters(), lr=1.0),
                        max_norm=1.0, noise_multiplier=1.0, expected_batch_size=4,
                        generator=torch.Generator().manual_seed(0))
    assert norms.shape == (0,)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
