"""The mixture-of-experts layer: routing, the dense reference, the balancing loss."""
import pytest
import torch

from llmbook.layers import MLP
from llmbook.models import GPTConfig
from llmbook.moe import MoE, balance_loss, count_params, load_balancing_loss, moe_gpt


def _moe(n_experts=4, top_k=2, seed=0):
    torch.manual_seed(seed)
    return MoE(8, n_experts, top_k, hidden=16)


def test_all_experts_with_equal_gates_is_their_average():
    moe = _moe(4, 4)
    torch.nn.init.zeros_(moe.router.weight)           # uniform router: every gate 1/4
    x = torch.randn(3, 5, 8)
    want = torch.stack([e(x) for e in moe.experts]).mean(0)
    torch.testing.assert_close(moe(x), want)


def test_one_expert_is_the_dense_mlp():
    moe = _moe(1, 1)
    mlp = MLP(8, 16)
    mlp.load_state_dict(moe.experts[0].state_dict())
    x = torch.randn(2, 7, 8)
    torch.testing.assert_close(moe(x), mlp(x))


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_sparse_dispatch_equals_the_dense_reference(top_k):
    moe = _moe(4, top_k)
    x = torch.randn(4, 6, 8)
    torch.testing.assert_close(moe(x), moe.dense_forward(x))


def test_gates_sum_to_one_over_the_chosen_experts():
    moe = _moe(6, 3)
    _, gates, chosen = moe.route(torch.randn(10, 8))
    torch.testing.assert_close(gates.sum(-1), torch.ones(10))
    assert chosen.shape == (10, 3) and (chosen.sort(-1).values.diff(dim=-1) > 0).all()


def test_balancing_loss_equals_its_formula():
    torch.manual_seed(1)
    probs = torch.softmax(torch.randn(12, 4), -1)
    chosen = probs.topk(2, -1).indices
    want = 0.0
    for e in range(4):
        f_e = sum(int(e in row) for row in chosen.tolist()) / (12 * 2)
        want += f_e * probs[:, e].mean()
    torch.testing.assert_close(load_balancing_loss(probs, chosen), 4 * want)
    uniform = torch.full((8, 4), 0.25)
    even = torch.arange(8).remainder(4)[:, None]
    torch.testing.assert_close(load_balancing_loss(uniform, even), torch.tensor(1.0))


@pytest.mark.parametrize("top_k", [1, 2])
def test_gradients_reach_the_router_from_the_output_alone(top_k):
    moe = _moe(4, top_k)
    moe(torch.randn(3, 5, 8)).pow(2).sum().backward()
    assert moe.router.weight.grad is not None and moe.router.weight.grad.abs().sum() > 0


def test_balancing_loss_sends_gradient_to_the_router():
    moe = _moe(4, 1)
    moe(torch.randn(16, 8))
    moe.aux_loss.backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_moe_gpt_trains_and_counts_active_parameters():
    cfg = GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model = moe_gpt(cfg, n_experts=4, top_k=2, expert_hidden=32)
    idx = torch.randint(0, 20, (2, 8))
    _, loss = model(idx, idx)
    (loss + 0.01 * balance_loss(model)).backward()
    total, active = count_params(model)
    per_expert = 16 * 32 + 32 + 32 * 16 + 16
    assert total - active == 2 * 2 * per_expert
    assert all(p.grad is not None for p in model.parameters())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="top_k"):
        MoE(8, 2, 3)
    with pytest.raises(ValueError, match="C=8"):
        _moe()(torch.randn(2, 5))
    with pytest.raises(ValueError, match="chosen"):
        load_balancing_loss(torch.rand(4, 3), torch.zeros(5, 1, dtype=torch.long))
