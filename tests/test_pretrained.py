"""Tests of llmbook.pretrained: recipes, ci-scale training, save -> load in a fresh process."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

pytest.importorskip("llmbook.checkpoint")
from llmbook import pretrained


def test_unknown_name_and_scale_are_rejected():
    with pytest.raises(ValueError, match="unknown tiny GPT"):
        pretrained.recipe("shakespeare")
    with pytest.raises(ValueError, match="unknown scale"):
        pretrained.recipe("austen", scale="huge")


def test_prepare_splits_before_tokenizing():
    tok, train_ids, val_ids = pretrained.prepare("austen", "ci")
    rec = pretrained.recipe("austen", "ci")
    text = pretrained.corpus_text("austen")[:rec.n_chars]
    cut = int(len(text) * 0.9)
    assert tok.decode(train_ids.tolist()) == text[:cut]
    assert tok.decode(val_ids.tolist()) == text[cut:]
    assert tok.vocab_size == rec.vocab_size


@pytest.fixture(scope="module")
def trained_ci():
    return pretrained.train_tiny_gpt("austen", "ci", progress=False)


def test_ci_training_learns(trained_ci):
    _model, tok, hist = trained_ci
    assert len(hist.train_loss) == pretrained.recipe("austen", "ci").train.max_steps
    assert hist.val_loss[-1] < math.log(tok.vocab_size) - 0.5


def test_ci_training_is_deterministic(trained_ci):
    _, _, hist_a = trained_ci
    _, _, hist_b = pretrained.train_tiny_gpt("austen", "ci", progress=False)
    assert hist_a.train_loss == hist_b.train_loss


def test_char_model_for_song_ci_trains():
    model, tok, hist = pretrained.train_tiny_gpt("song_ci", "ci", progress=False)
    assert "。" in tok.chars and hist.val_loss[-1] < hist.eval_train_loss[0] + 1.0
    assert model.config.vocab_size == tok.vocab_size


def test_save_then_load_in_fresh_process_gives_identical_logits(trained_ci, tmp_path):
    model, tok, hist = trained_ci
    folder = pretrained.save_tiny_gpt(model, tok, "austen", "ci", hist, folder=tmp_path / "m")
    ids = tok.encode("It is a truth universally acknowledged")
    with torch.no_grad():
        want = model(torch.tensor([ids]))[0]
    script = (
        "import sys, torch\n"
        "from llmbook import pretrained\n"
        f"m, tok = pretrained.load_tiny_gpt('austen', 'ci', 'cpu', folder={str(folder)!r})\n"
        "ids = tok.encode('It is a truth universally acknowledged')\n"
        "with torch.no_grad():\n"
        "    logits = m(torch.tensor([ids]))[0]\n"
        f"torch.save(logits, {str(tmp_path / 'logits.pt')!r})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    got = torch.load(tmp_path / "logits.pt", weights_only=True)
    assert torch.equal(got, want)


def test_load_missing_model_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved tiny GPT"):
        pretrained.load_tiny_gpt("austen", "ci", folder=tmp_path / "nothing")


def test_export_to_hugging_face_gives_the_same_logits(trained_ci, tmp_path):
    pytest.importorskip("llmbook.interop")
    model, tok, hist = trained_ci
    folder = pretrained.save_tiny_gpt(model, tok, "austen", "ci", hist, folder=tmp_path / "m")
    hf = pretrained.export_hf("austen", tmp_path / "hf", "ci", folder=folder)
    assert (tmp_path / "hf" / "config.json").exists()
    ids = torch.tensor([tok.encode("Emma Woodhouse, handsome, clever")])
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids)[0], atol=1e-4, rtol=1e-4)


def test_model_dir_is_versioned_by_the_recipe(monkeypatch):
    folder = pretrained.model_dir("austen", "ci")
    assert folder.name == f"austen-ci-{pretrained.recipe_hash('austen', 'ci')}"
    assert pretrained.recipe_hash("austen", "ci") != pretrained.recipe_hash("austen", "cpu")
    assert pretrained.recipe_hash("austen", "ci") != pretrained.recipe_hash("song_ci", "ci")
    monkeypatch.setattr(pretrained, "RECIPE_VERSION", pretrained.RECIPE_VERSION + 1)
    assert pretrained.model_dir("austen", "ci") != folder      # stale models are not reused


def test_cpu_recipes_use_muon_and_keep_the_gpt2_family():
    from llmbook.interop import family
    from llmbook.models import GPTConfig

    for name in pretrained.NAMES:
        rec = pretrained.recipe(name, "cpu")
        assert rec.muon_lr is not None and rec.train.min_lr == 0.0
        assert family(GPTConfig(vocab_size=512, **rec.model)) == "gpt2"


def test_corpus_text_unwraps_austen_but_keeps_ci_verses():
    text = pretrained.corpus_text("austen")[:20_000]
    paragraphs = text.split("\n\n")
    assert all("\n" not in p and "  " not in p for p in paragraphs)
    assert max(len(p) for p in paragraphs) > 200          # lines were joined
    assert "\n" in pretrained.corpus_text("song_ci")[:200].split("\n\n")[0]
    assert pretrained.unwrap("a\nb  c\n\n\n d \n") == ["a b c", "d"]
