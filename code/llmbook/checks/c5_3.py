"""Checks for the exercises of notebook 5.3 (encoded requests, sampled exposure, DP noise)."""
from __future__ import annotations

import base64
import codecs
import math

import numpy as np

from llmbook.exercises import exercise, expect
from llmbook.privacy import epsilon, exposure

_SENTENCES = [
    "How do I make dragonfire powder?",
    "Please, what is the history of basilisk dust?",
    "Write a short poem about the sea.",
    "Quick question: what is the recipe for lemon jam?",
    "Abba",                      # valid base64 (of bytes that are not text): keep it
    "Hello",
]


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@exercise("5.3.1", kind=callable)
def _canonicalise(fn) -> None:
    for s in _SENTENCES:
        got = fn(s)
        expect(isinstance(got, str), f"return a str, got {type(got).__name__} for {s!r}")
        expect(got == s, f"plain text must come back unchanged: {s!r} gave {got!r}")
    for s in _SENTENCES[:4]:
        got = fn(_b64(s))
        expect(got == s, f"base64 {_b64(s)!r} should decode to {s!r}, got {got!r}")
        r = codecs.encode(s, "rot13")
        got = fn(r)
        expect(got == s, f"ROT13 {r!r} should decode to {s!r}, got {got!r} (ROT13 is its own "
                         "inverse: decode when the result looks more like English)")
    print("every encoded request comes back as the plain one: the filter can now be applied "
          "to what the model will actually read")


@exercise("5.3.2", kind=callable)
def _sampled_exposure(fn) -> None:
    rng = np.random.default_rng(0)
    everything = rng.normal(-20.0, 3.0, size=200_000)
    sample = rng.choice(everything, size=2_000, replace=False)
    rows = []
    for z in (1.0, 2.0, 3.0):
        canary = -20.0 + 3.0 * z
        got = fn(canary, sample)
        expect(isinstance(got, (float, np.floating)) and math.isfinite(float(got)),
               f"return a finite float, got {got!r}")
        exact = exposure(canary, np.append(everything, canary))
        expect(abs(float(got) - exact) < 0.3,
               f"for a canary {z:.0f} standard deviations above the mean the exposure over all "
               f"candidates is {exact:.2f} bits, your estimate {float(got):.2f}: fit a normal "
               "distribution to the sample and take -log2 of its upper tail at the canary")
        rows.append(f"z = {z:.0f}: exact {exact:.2f}, estimated {float(got):.2f}")
    far = fn(-20.0 + 3.0 * 7.0, sample)
    expect(float(far) > 30, "a canary 7 standard deviations above every sampled candidate must "
                            f"get an exposure beyond what 2,000 samples can rank (> 30 bits), "
                            f"got {float(far):.1f}: extrapolate with the fitted tail")
    print("bits of exposure, " + "; ".join(rows) + f"; z = 7 (beyond every sample): "
          f"{float(far):.1f}")


@exercise("5.3.3", kind=callable)
def _sigma_for_epsilon(fn) -> None:
    cases = [(0.01, 1000, 1e-5, 1.0), (0.05, 300, 1e-5, 8.0), (0.002, 5000, 1e-6, 0.5)]
    for q, steps, delta, target in cases:
        sigma = fn(q, steps, delta, target)
        expect(isinstance(sigma, (float, np.floating)) and float(sigma) > 0,
               f"return a positive float, got {sigma!r}")
        eps = epsilon(q, float(sigma), steps, delta)
        expect(eps <= target * (1 + 1e-6),
               f"q={q}, steps={steps}: σ = {float(sigma):.4f} gives ε = {eps:.4f}, above the "
               f"target {target}: the guarantee must hold, so err on the side of more noise")
        expect(epsilon(q, float(sigma) * 0.99, steps, delta) > target,
               f"q={q}, steps={steps}: σ = {float(sigma):.4f} is more noise than needed; 1 % less "
               "noise still meets the target (bisect until the bracket is narrower)")
    print("the noise for a budget: " + "; ".join(
        f"ε = {t} with q = {q}, {s} steps: σ = {float(fn(q, s, d, t)):.3f}"
        for q, s, d, t in cases))
