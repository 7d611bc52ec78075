"""Checks for the exercises of notebook 5.1 (quantisation)."""
from __future__ import annotations

import numpy as np
import torch

from llmbook.exercises import exercise, expect
from llmbook.quantize import dequantize, groupwise, q4_1_dequantize


@exercise("5.1.1")
def _q4_1_encode(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.1.1', q4_1_encode)")
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 64)).astype(np.float32)
    raw = fn(w.copy())
    expect(isinstance(raw, np.ndarray), "return a NumPy array of bytes")
    expect(raw.dtype == np.uint8, f"the bytes must be uint8, got {raw.dtype}")
    expect(raw.shape == (4, 40), f"64 weights per row are 2 blocks of 20 bytes: shape (4, 40), "
                                 f"got {raw.shape}")
    blocks = raw.reshape(4, 2, 20)
    d = blocks[..., 0:2].copy().view("<f2").astype(np.float32)[..., 0]
    m = blocks[..., 2:4].copy().view("<f2").astype(np.float32)[..., 0]
    lo = w.reshape(4, 2, 32).min(-1)
    expect(np.allclose(m, lo, atol=1e-2), "bytes 2–3 of a block are m, the block's minimum, "
                                          "as float16")
    expect(np.allclose(d, (w.reshape(4, 2, 32).max(-1) - lo) / 15, atol=1e-3),
           "bytes 0–1 are d = (max - min) / 15 as float16")
    back = q4_1_dequantize(raw).numpy()
    err = np.abs(back - w).reshape(4, 2, 32).max(-1)
    expect(bool((err <= d / 2 + 2e-3).all()), "some weight is more than half a step away: are the "
           "codes packed with weight j in the low nibble and j + 16 in the high nibble?")
    try:
        import gguf

        ref = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q4_1)
        agree = np.mean(q4_1_dequantize(ref).numpy() == back)
        expect(bool(agree > 0.97), f"only {agree:.0%} of the decoded weights equal those of gguf's "
               "own encoder: check the rounding of the codes")
    except ImportError:
        pass


@exercise("5.1.2")
def _symmetric(fn) -> None:
    expect(callable(fn), "pass the function itself: check('5.1.2', symmetric_groupwise)")
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 64, generator=g) + 0.5          # skewed: mostly positive
    got = fn(w.clone(), 4, 16)
    expect(isinstance(got, torch.Tensor) and got.shape == w.shape,
           f"return the dequantised weights, shape {tuple(w.shape)}")
    grp = w.reshape(-1, 16)
    s = grp.abs().amax(1, keepdim=True) / 7
    want = (torch.round(grp / s).clamp(-7, 7) * s).reshape(w.shape)
    if torch.allclose(got, w):
        expect(False, "that returns the weights unchanged: round them to the grid s * q")
    expect(torch.allclose(got, want, atol=1e-6),
           "4 bits symmetric means q in -7…7 and s = max|w| / 7 for each group of 16")
    sym = (got - w).pow(2).mean()
    asym = (dequantize(groupwise(w, 4, 16)) - w).pow(2).mean()
    print(f"on this skewed matrix: symmetric error {sym:.5f}, asymmetric (with a zero "
          f"point) {asym:.5f}: the zero point {'helps' if asym < sym else 'does not help'}")
