"""The benchmark runs and reports what it documents (no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from llmbook.bench import CONFIGS, flops_per_token, gpu_peak_flops, main
from llmbook.models import GPT


def test_help_works():
    done = subprocess.run([sys.executable, "-m", "llmbook.bench", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0
    assert "--quick" in done.stdout and "--json" in done.stdout


def test_quick_run_writes_documented_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    before = torch.get_num_threads()
    try:
        main(["--quick", "--device", "cpu", "--json", str(path)])
    finally:
        torch.set_num_threads(before)
    printed = capsys.readouterr().out
    assert "tokens/s" in printed and "ms/token" in printed
    result = json.loads(path.read_text())
    for key in ("device", "torch", "transformers", "threads", "repeats", "memory", "configs",
                "train", "generate", "quick"):
        assert key in result
    assert result["quick"] is True and result["threads"] == 1
    impls = [row["impl"] for row in result["train"]]
    assert impls == ["llmbook GPT", "HF GPT-2 sdpa", "HF GPT-2 eager"]
    for row in result["train"]:
        assert {"config", "impl", "tokens_per_s", "tokens_per_s_runs", "tokens_per_cpu_s",
                "ratio", "ratio_cpu", "mem_mib", "mfu", "first_loss"} <= row.keys()
        assert row["tokens_per_s"] > 0 and row["mem_mib"] > 0
    assert result["train"][0]["ratio"] == 1.0
    # same weights, same batch, same loss: the first losses agree across implementations
    losses = [row["first_loss"] for row in result["train"]]
    assert max(losses) - min(losses) < 1e-4
    gen = result["generate"]
    assert [row["impl"] for row in gen] == ["llmbook KV cache", "llmbook uncached",
                                            "HF generate (cache)"]
    for row in gen:
        assert {"ms_per_token", "ms_per_token_runs", "cpu_ms_per_token", "ratio", "ratio_cpu",
                "same_tokens_as_first"} <= row.keys()
        assert row["same_tokens_as_first"] is True   # greedy: all three decode the same tokens


def test_unknown_config_is_refused():
    with pytest.raises(SystemExit):
        main(["--configs", "nope"])


def test_flops_per_token_formula():
    cfg = CONFIGS["4l128"].gpt_config()
    n = GPT(cfg).num_params(non_embedding=True)
    expected = 6 * n + 12 * 4 * 4 * 32 * 128
    assert flops_per_token(cfg, n) == expected


def test_no_gpu_peak_on_cpu():
    assert gpu_peak_flops(torch.device("cpu")) is None
