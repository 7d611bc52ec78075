"""llmbook.vision (patches, ViT) and llmbook.contrastive (CLIP-style loss, text encoder)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from llmbook.contrastive import TextEncoder, clip_logits, clip_loss, top1
from llmbook.vision import ViT, patchify


@pytest.mark.parametrize("shape,p", [((2, 1, 8, 8), 2), ((3, 3, 12, 8), 4), ((1, 2, 6, 6), 3)])
def test_patchify_matches_unfold(shape, p):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    ref = F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)
    assert torch.equal(patchify(x, p), ref)


def test_patch_embedding_equals_a_strided_convolution():
    g = torch.Generator().manual_seed(1)
    x, w, b = torch.randn(4, 3, 8, 8, generator=g), torch.randn(16, 3, 2, 2, generator=g), torch.randn(16, generator=g)
    conv = F.conv2d(x, w, b, stride=2).flatten(2).transpose(1, 2)          # (B, N, C)
    linear = patchify(x, 2) @ w.reshape(16, -1).T + b
    torch.testing.assert_close(linear, conv, rtol=1e-5, atol=1e-5)


def test_patchify_refuses_bad_input():
    with pytest.raises(ValueError, match="patch=3 must divide"):
        patchify(torch.zeros(1, 1, 8, 8), 3)
    with pytest.raises(ValueError, match="images must have 4 dims"):
        patchify(torch.zeros(8, 8), 2)
    with pytest.raises(TypeError, match="images must be a float tensor"):
        patchify(torch.zeros(1, 1, 8, 8, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="patch must be a positive int"):
        patchify(torch.zeros(1, 1, 8, 8), 0)


def test_vit_shapes_and_patch_order_matter():
    torch.manual_seed(0)
    vit = ViT(image_size=8, patch=2, n_classes=10, n_embd=32, n_head=4, n_layer=2).eval()
    x = torch.randn(5, 1, 8, 8)
    assert vit(x).shape == (5, 10)
    assert vit.tokens(x).shape == (5, 17, 32)
    assert vit.features(x).shape == (5, 32)
    # one image's result does not depend on the others in the batch
    torch.testing.assert_close(vit(x[:1]), vit(x)[:1], rtol=1e-5, atol=1e-5)
    # positions are learned per patch: swapping two patches changes the output
    with torch.no_grad():
        vit.pos.weight.normal_()
    swapped = x.clone()
    swapped[:, :, :2, :2], swapped[:, :, :2, 2:4] = x[:, :, :2, 2:4], x[:, :, :2, :2]
    assert not torch.allclose(vit(swapped), vit(x))
    trunk = ViT(n_classes=0, n_embd=32)
    assert trunk(x).shape == (5, 32)


def test_vit_learns_a_tiny_task():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()     # top half brighter?
    vit = ViT(n_classes=2, n_embd=32, n_layer=1)
    opt = torch.optim.AdamW(vit.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(vit(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_vit_refuses_bad_config_and_input():
    with pytest.raises(ValueError, match="patch=3 must divide image_size=8"):
        ViT(image_size=8, patch=3)
    with pytest.raises(ValueError, match="n_embd=30 must be divisible by n_head=4"):
        ViT(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_classes must be an int >= 0"):
        ViT(n_classes=-1)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 1, 8, 8\)"):
        ViT()(torch.zeros(2, 3, 8, 8))


def direct_info_nce(img, txt, t):
    """The symmetric InfoNCE written out with Python sums."""
    def unit(v):
        n = math.sqrt(sum(a * a for a in v))
        return [a / n for a in v]
    img, txt = [unit(v) for v in img.tolist()], [unit(v) for v in txt.tolist()]
    s = [[sum(a * b for a, b in zip(u, v, strict=True)) / t for v in txt] for u in img]
    B = len(s)
    i2t = -sum(s[i][i] - math.log(sum(math.exp(x) for x in s[i])) for i in range(B)) / B
    t2i = -sum(s[i][i] - math.log(sum(math.exp(s[j][i]) for j in range(B))) for i in range(B)) / B
    return (i2t + t2i) / 2


@pytest.mark.parametrize("t", [0.07, 0.5, 2.0])
def test_clip_loss_equals_direct_computation(t):
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    assert clip_loss(img, txt, t).item() == pytest.approx(direct_info_nce(img, txt, t), rel=1e-10)
    # symmetric: swapping the modalities gives the same loss; scaling an embedding does not matter
    assert clip_loss(txt, img, t).item() == pytest.approx(clip_loss(img, txt, t).item(), rel=1e-12)
    assert clip_loss(3 * img, txt, t).item() == pytest.approx(clip_loss(img, txt, t).item(), rel=1e-10)


def test_clip_loss_is_low_for_matching_pairs_and_keeps_temperature_gradient():
    e = torch.eye(4)
    assert clip_loss(e, e, 0.05) < 1e-3 < clip_loss(e, e.roll(1, 0), 0.05)
    log_t = torch.tensor(math.log(0.1), requires_grad=True)
    clip_loss(torch.randn(4, 3), torch.randn(4, 3), log_t.exp()).backward()
    assert log_t.grad is not None and torch.isfinite(log_t.grad)
    assert clip_logits(e, e, 0.5).shape == (4, 4)


def test_clip_loss_refuses_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        clip_loss(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        clip_loss(torch.ones(2, 2), torch.ones(2, 2), 0.0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        clip_loss(torch.ones(2, 2), torch.ones(2, 2), torch.tensor(-1.0))
    with pytest.raises(ValueError, match="image_emb must have 2 dims"):
        clip_loss(torch.ones(2), torch.ones(2))
    bad = torch.ones(3, 2)
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"text_emb must be finite, but rows \[1\] hold NaN"):
        clip_loss(torch.ones(3, 2), bad)
    with pytest.raises(ValueError, match=r"image_emb must be finite, but rows \[1\]"):
        clip_logits(bad.clone().fill_(1).index_fill_(0, torch.tensor([1]), float("inf")),
                    torch.ones(3, 2))


def test_top1_is_cosine_nearest():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    q = torch.tensor([[10.0, 1.0], [0.1, 0.9], [-5.0, -4.0]])
    assert top1(q, keys).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="same space"):
        top1(torch.ones(1, 3), keys)


def test_text_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = TextEncoder(vocab_size=6, max_len=5, n_embd=16, n_head=2).eval()
    short = torch.tensor([[1, 2, 0]])
    longer = torch.tensor([[1, 2, 0, 0, 0]])
    torch.testing.assert_close(enc(short), enc(longer), rtol=1e-5, atol=1e-6)
    other = torch.tensor([[1, 3, 0]])
    assert not torch.allclose(enc(short), enc(other))
    with pytest.raises(ValueError, match="ids must lie in 0..5"):
        enc(torch.tensor([[1, 6]]))
    with pytest.raises(ValueError, match="at least one real"):
        enc(torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="max_len=5"):
        enc(torch.ones(1, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        enc(torch.ones(1, 2))
