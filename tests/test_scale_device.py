"""llmbook.scale, llmbook.device, llmbook.setup, llmbook.book and llmbook.viz."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

import llmbook
from llmbook import book, device, scale, viz


@pytest.mark.parametrize("name, expected", [("ci", 1), ("cpu", 2), ("gpu", 3)])
def test_pick_follows_the_env_var(monkeypatch, name, expected):
    monkeypatch.setenv("LLMBOOK_SCALE", name)
    assert llmbook.current_scale() == name
    assert llmbook.pick(ci=1, cpu=2, gpu=3) == expected


def test_gpu_falls_back_to_cpu_value():
    assert scale.pick(ci=1, cpu=2, scale="gpu") == 2


def test_env_var_is_case_and_space_insensitive(monkeypatch):
    monkeypatch.setenv("LLMBOOK_SCALE", "  CPU ")
    assert scale.current_scale() == "cpu"


def test_unknown_scale_names_the_variable(monkeypatch):
    monkeypatch.setenv("LLMBOOK_SCALE", "huge")
    with pytest.raises(ValueError, match="LLMBOOK_SCALE='huge'"):
        scale.current_scale()
    with pytest.raises(ValueError, match="unknown scale 'tiny'"):
        scale.pick(ci=1, cpu=2, scale="tiny")


@pytest.mark.parametrize("cuda, expected", [(True, "gpu"), (False, "cpu")])
def test_default_scale_depends_on_cuda(monkeypatch, cuda, expected):
    monkeypatch.delenv("LLMBOOK_SCALE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert scale.current_scale() == expected


def test_get_device_rejects_bad_input():
    assert device.get_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "xla"):
        with pytest.raises(ValueError, match=f"unknown device '{bad}'"):
            device.get_device(bad)
    with pytest.raises(TypeError, match="str or torch.device"):
        device.get_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_missing_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        device.get_device("cuda")


def test_cpu_runs_in_fp32_without_scaler():
    assert device.autocast_dtype("cpu") is None
    with device.autocast("cpu"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
    assert not device.grad_scaler("cpu").is_enabled()
    assert device.describe("cpu") == "device cpu · fp32"


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_cuda_precision_recipe(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    assert device.autocast_dtype("cuda") == expected
    text = device.describe("cuda")
    assert "Tesla T4" in text and ("GradScaler" in text) == (not bf16)


def test_seed_everything_repeats_every_generator():
    def draw():
        llmbook.seed_everything(7)
        return random.random(), np.random.rand(), torch.rand(1).item()

    assert draw() == draw()
    with pytest.raises(ValueError, match="non-negative int"):
        llmbook.seed_everything(-1)


def test_start_prints_a_banner_and_returns_the_env(capsys, monkeypatch):
    monkeypatch.setenv("LLMBOOK_SCALE", "ci")
    env = llmbook.start(seed=3)
    out = capsys.readouterr().out
    assert env.scale == "ci" and env.seed == 3 and env.device.type in device.KNOWN_TYPES
    assert "scale ci" in out and "seed 3" in out and f"torch {torch.__version__}" in out


def test_glue_passes_plain_numbers(monkeypatch):
    assert book.glue("x", torch.tensor(2.5)) == 2.5
    assert isinstance(book.glue("y", np.float64(1.5)), float)
    with pytest.raises(ValueError, match="identifier-like"):
        book.glue("not a name", 1)


def test_viz_setup_sets_defaults_and_a_cjk_fallback():
    import matplotlib.pyplot as plt

    viz.setup()
    assert plt.rcParams["axes.grid"] is True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        family = viz.cjk_font()
    if family is None:
        assert any("fonts-noto-cjk" in str(w.message) for w in caught)
    else:
        assert family in plt.rcParams["font.family"]
