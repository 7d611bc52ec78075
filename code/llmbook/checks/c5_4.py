"""Checks for the exercises of notebook 5.4 (vision, contrastive pairs, grounding)."""
from __future__ import annotations

import math

import torch

from llmbook import gridworld as gw
from llmbook.contrastive import clip_loss
from llmbook.exercises import exercise, expect
from llmbook.positions import sinusoidal


@exercise("5.4.1")
def _sincos_2d(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.4.1', sincos_2d)")
    got = fn(3, 4, 16)
    expect(isinstance(got, torch.Tensor), "return a torch tensor")
    expect(tuple(got.shape) == (12, 16), f"3 × 4 patches of 16 channels: shape (12, 16), got "
                                         f"{tuple(got.shape)}")
    rows, cols = sinusoidal(3, 8), sinusoidal(4, 8)
    want = torch.cat([rows.repeat_interleave(4, 0), cols.repeat(3, 1)], dim=1)
    if torch.allclose(got, torch.cat([cols.repeat(3, 1), rows.repeat_interleave(4, 0)], 1)):
        expect(False, "the halves are swapped: the first dim/2 channels encode the row")
    if torch.allclose(got, torch.cat([rows.repeat(4, 1), cols.repeat_interleave(3, 0)], 1)):
        expect(False, "patch k is at row k // w, column k % w (row-major, as patchify)")
    expect(torch.allclose(got, want, atol=1e-6),
           "patch k = (row r, column c) gets [sinusoidal(h, dim/2)[r], sinusoidal(w, dim/2)[c]]")
    big = fn(4, 4, 32)
    sim = torch.nn.functional.normalize(big, dim=1) @ torch.nn.functional.normalize(big, dim=1).T
    near, far = sim[0, 1].item(), sim[0, 15].item()
    print(f"cosine of patch (0, 0) with its neighbour (0, 1): {near:.2f}; with the far corner "
          f"(3, 3): {far:.2f}: nearby patches get similar codes, with nothing to learn")


def _direct_multi_positive(img: torch.Tensor, txt: torch.Tensor, labels: list[int],
                           t: float) -> float:
    """The loss written out with Python sums (the definition of the exercise)."""
    unit = [[a / math.sqrt(sum(x * x for x in v)) for a in v] for v in img.tolist()]
    tnit = [[a / math.sqrt(sum(x * x for x in v)) for a in v] for v in txt.tolist()]
    s = [[sum(a * b for a, b in zip(u, v, strict=True)) / t for v in tnit] for u in unit]
    B = len(s)

    def side(score) -> float:
        total = 0.0
        for i in range(B):
            pos = sum(math.exp(score(i, j)) for j in range(B) if labels[j] == labels[i])
            total -= math.log(pos / sum(math.exp(score(i, j)) for j in range(B)))
        return total / B
    return (side(lambda i, j: s[i][j]) + side(lambda i, j: s[j][i])) / 2


@exercise("5.4.2")
def _multi_positive(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.4.2', multi_positive_loss)")
    g = torch.Generator().manual_seed(0)
    img = torch.randn(6, 4, generator=g, dtype=torch.float64)
    txt = torch.randn(6, 4, generator=g, dtype=torch.float64)
    distinct = torch.arange(6)
    got = fn(img, txt, distinct, 0.5)
    expect(isinstance(got, torch.Tensor) and got.dim() == 0, "return a scalar tensor")
    expect(abs(got.item() - clip_loss(img, txt, 0.5).item()) < 1e-8,
           "with all labels different the loss must equal the symmetric InfoNCE (clip_loss)")
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    got = fn(img, txt, labels, 0.5).item()
    want = _direct_multi_positive(img, txt, labels.tolist(), 0.5)
    plain = clip_loss(img, txt, 0.5).item()
    if abs(got - plain) < 1e-8:
        expect(False, "with repeated labels every text of the same label is a positive: "
                      "sum their exp(similarity) in the numerator")
    expect(abs(got - want) < 1e-8, f"for labels {labels.tolist()} the loss should be "
                                   f"{want:.6f}, got {got:.6f}")
    img.requires_grad_(True)
    fn(img, txt, labels, 0.5).backward()
    expect(img.grad is not None and bool(torch.isfinite(img.grad).all()),
           "the loss must be differentiable (build it from torch operations)")
    print(f"on this batch with repeated labels: plain InfoNCE {plain:.3f}, with every "
          f"same-label pair a positive {got:.3f}: the duplicates are no longer pushed apart")


def _plan_lm():
    from llmbook.ngram import NGramLM

    return NGramLM.fit(gw.plan_corpus(200, seed=0), n=4, smoothing="kneser_ney")


@exercise("5.4.3")
def _noisy_affordance(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.4.3', noisy_affordance)")
    states = []
    for seed in range(12):
        for kind in gw.KINDS:
            w = gw.make_world(seed, kind)
            states.append(w)
            if gw.feasible(w, "pick up the key"):
                states.append(gw.apply(w, "pick up the key"))
    pairs = [(w, s) for w in states for s in gw.SKILLS]
    truth = [gw.feasible(w, s) for w, s in pairs]
    exact = fn(0.0, 0)
    expect(callable(exact), "noisy_affordance(eps, seed) must return a function "
                            "affordance(world, skill)")
    expect([float(exact(w, s)) for w, s in pairs] == [float(t) for t in truth],
           "with eps = 0 the affordance must be the true one, gw.feasible (1.0 or 0.0)")
    flipped = fn(1.0, 0)
    expect([float(flipped(w, s)) for w, s in pairs] == [float(not t) for t in truth],
           "with eps = 1 every answer is wrong: 1.0 where the skill is impossible, else 0.0")
    a, b = fn(0.2, 7), fn(0.2, 7)
    first = [float(a(w, s)) for w, s in pairs] * 3
    again = [float(b(w, s)) for w, s in pairs] * 3
    expect(first == again, "the same seed must give the same answers (use a seeded "
                           "random.Random(seed) inside)")
    noisy = fn(0.2, 1)
    answers = [float(noisy(w, s)) for _ in range(10) for w, s in pairs]
    wrong = sum(ans != float(t) for ans, t in zip(answers, truth * 10, strict=True))
    n = len(answers)
    rate = wrong / n
    expect(abs(rate - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n),
           f"with eps = 0.2 about a fifth of the answers should be wrong, got {rate:.1%} "
           "(draw a fresh coin for every call)")
    lm = _plan_lm()

    def score(history, skill):
        return gw.skill_logprob(lm, history, skill)
    line = []
    for eps in (0.0, 0.1, 0.3):
        ok = sum(gw.saycan(gw.make_world(s, "box"), score, fn(eps, s)).success
                 for s in range(60))
        line.append(f"eps {eps:.1f}: {ok}/60")
    print("SayCan in 'box' worlds with a perception that errs: " + ", ".join(line))
