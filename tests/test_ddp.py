"""Data parallelism: two gloo processes give the single-process step (never hangs:
``run`` stops the processes after ``timeout_s``)."""
import pytest
import torch

from llmbook import ddp_demo


@pytest.fixture(scope="module")
def steps():
    reference = ddp_demo.single_process_step(batch_size=8)
    result = ddp_demo.run(world_size=2, batch_size=8, timeout_s=120)
    return reference, result, ddp_demo.compare(result, reference)


def test_ddp_gradients_equal_the_single_process_step(steps):
    reference, result, diff = steps
    assert diff["grad"] < 1e-6
    for r in result["ranks"]:                          # every rank holds the same average
        for n, g in reference["grads"].items():
            torch.testing.assert_close(r["grads"][n], g, rtol=1e-5, atol=1e-6)
    assert result["ranks"][0]["loss"] == pytest.approx(reference["loss"], rel=1e-5)


def test_sharded_optimizer_state_is_split_and_the_update_is_the_same(steps):
    reference, result, diff = steps
    per_rank = diff["state_bytes"]
    assert sum(per_rank) == reference["state_bytes"]
    assert max(per_rank) < 0.55 * reference["state_bytes"]
    # Adam's first step is lr * g / (|g| + eps): equal up to float noise of tiny g
    assert diff["param"] < 0.01 * ddp_demo.LR


def test_fsdp_shards_parameters_and_moments(steps):
    reference, result, diff = steps
    assert diff["fsdp_param"] < 0.01 * ddp_demo.LR
    assert sum(diff["fsdp_param_bytes"]) == reference["param_bytes"]
    assert sum(diff["fsdp_state_bytes"]) == reference["state_bytes"]


def test_shards_are_balanced_and_the_gpu_command_names_nccl():
    params = [torch.zeros(n) for n in (100, 60, 50, 10)]
    owner = ddp_demo.shard_params(params, 2)
    load = [sum(p.numel() for p, r in zip(params, owner) if r == k) for k in (0, 1)]
    assert load == [110, 110]
    assert ddp_demo.command(8) == ("torchrun --nproc_per_node=8 -m llmbook.ddp_demo "
                                   "--backend nccl")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="batch_size=7"):
        ddp_demo.run(world_size=2, batch_size=7)
    with pytest.raises(ValueError, match="timeout_s"):
        ddp_demo.run(timeout_s=0)
