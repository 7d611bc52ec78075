"""The benchmark runs and reports what it documents (no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from llmbook.bench import CONFIGS, flops_per_token, gpu_peak_flops, main
from llmbook.models import GPT


def _run_bench(argv: list[str], path) -> dict:
    """Run the benchmark's CLI with ``--json path`` (restoring torch's thread count, which
    it sets) and return the JSON it wrote."""
    before = torch.get_num_threads()
    try:
        main([*argv, "--json", str(path)])
    finally:
        torch.set_num_threads(before)
    return json.loads(path.read_text())


def test_help_works():
    done = subprocess.run([sys.executable, "-m", "llmbook.bench", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0
    assert "--quick" in done.stdout and "--json" in done.stdout


def test_quick_run_writes_documented_json(tmp_path, capsys):
    result = _run_bench(["--quick", "--device", "cpu"], tmp_path / "bench.json")
    printed = capsys.readouterr().out
    assert "tokens/s" in printed and "ms/token" in printed
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


def test_batched_quick_run_writes_documented_json(tmp_path, capsys):
    result = _run_bench(["--batched", "--quick", "--device", "cpu", "--batch-sizes", "1,3",
                         "--new-tokens", "3"], tmp_path / "batched.json")
    printed = capsys.readouterr().out
    assert "tokens/s" in printed and "vs HF" in printed
    for key in ("date", "machine", "device", "torch", "transformers", "threads", "repeats",
                "quick", "model", "dtype", "new_tokens", "batched", "load_average"):
        assert key in result
    rows = result["batched"]
    assert [(r["batch_size"], r["impl"]) for r in rows] == [
        (1, "llmbook generate"), (1, "HF generate"), (3, "llmbook generate"), (3, "HF generate")]
    for r in rows:
        assert {"model", "batch_size", "impl", "tokens_per_s", "tokens_per_s_runs",
                "tokens_per_cpu_s", "prompt_len", "ratio_vs_transformers",
                "ratio_cpu_vs_transformers", "same_tokens"} <= r.keys()
        assert r["tokens_per_s"] > 0 and len(r["tokens_per_s_runs"]) == result["repeats"]
        # same weights, greedy, left padding: both libraries decode the same tokens
        assert r["same_tokens"] is True
    for ours, theirs in zip(rows[::2], rows[1::2]):
        assert theirs["ratio_vs_transformers"] == 1.0
        assert ours["ratio_vs_transformers"] == pytest.approx(
            ours["tokens_per_s"] / theirs["tokens_per_s"])


def test_batch_prompts_are_left_padded():
    from llmbook.bench import batch_prompts

    idx, mask = batch_prompts(5, 100, lengths=(2, 6), seed=1)
    assert idx.shape == mask.shape and idx.shape[0] == 5
    assert bool(mask[:, -1].all())                              # every row ends real
    assert bool((idx[mask == 0] == 0).all()) and bool((idx[mask == 1] > 0).all())
    lens = mask.sum(1)
    assert int(lens.min()) >= 2 and int(lens.max()) <= 6
    assert all(bool(row[int(row.numel() - n):].all()) for row, n in zip(mask, lens))


@pytest.mark.parametrize("argv", [["--batched", "--batch-sizes", "0"],
                                  ["--batched", "--batch-sizes", "x,2"],
                                  ["--batched", "--quick", "--new-tokens", "-1"]])
def test_bad_batched_options_are_refused(argv):
    with pytest.raises(SystemExit):
        main(argv)
