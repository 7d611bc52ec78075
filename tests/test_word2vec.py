"""Skip-gram with negative sampling: pairs, loss, training, and clear errors."""
import pytest
import torch
import torch.nn.functional as F
from llmbook.word2vec import (
    SkipGram,
    epoch_pairs,
    keep_probability,
    noise_distribution,
    sgns_loss,
    train_skipgram,
)


def test_pairs_with_no_subsampling_are_every_pair_within_each_centres_reach():
    ids = torch.arange(12)
    keep = torch.ones(12)
    g = torch.Generator().manual_seed(3)
    centre, context = epoch_pairs(ids, keep, 3, g)
    # replay the same draws to learn each centre's reach, then enumerate by brute force
    g = torch.Generator().manual_seed(3)
    torch.rand(12, generator=g)
    reach = torch.randint(1, 4, (12,), generator=g)
    want = sorted((i, j) for i in range(12) for j in range(12)
                  if i != j and abs(i - j) <= reach[i])
    assert sorted(zip(centre.tolist(), context.tolist())) == want


def test_frequent_words_are_subsampled_and_rare_ones_kept():
    freq = torch.tensor([1e6, 10.0, 1.0])
    keep = keep_probability(freq, t=1e-4)
    assert keep[0] < 0.02 and keep[1] == keep[2] == 1.0
    noise = noise_distribution(freq)
    assert noise.sum().item() == pytest.approx(1.0)
    assert noise[0] / noise[1] == pytest.approx((1e6 / 10) ** 0.75, rel=1e-4)


def test_loss_is_binary_cross_entropy_with_logits():
    g = torch.Generator().manual_seed(0)
    v, u, un = (torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g),
                torch.randn(8, 3, 5, generator=g))
    logits = torch.cat([(v * u).sum(-1, keepdim=True), (un @ v[..., None])[..., 0]], 1)
    labels = torch.cat([torch.ones(8, 1), torch.zeros(8, 3)], 1)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / 8
    assert sgns_loss(v, u, un).item() == pytest.approx(bce.item(), rel=1e-6)


def two_topic_corpus(n=20000, seed=0):
    """Words 0-4 only ever appear near each other, and words 5-9 likewise."""
    g = torch.Generator().manual_seed(seed)
    topics = torch.randint(0, 2, (n // 10,), generator=g).repeat_interleave(10)
    return topics * 5 + torch.randint(0, 5, (len(topics),), generator=g)


def test_training_puts_words_that_share_contexts_together():
    ids = two_topic_corpus()
    freq = torch.bincount(ids, minlength=10).float()
    model, losses = train_skipgram(ids, freq, dim=8, window=2, epochs=3, batch_size=256, lr=0.05,
                                   t=1.0)
    vec = model.vectors()
    cos = vec @ vec.T - 2 * torch.eye(10)                       # a word is not its own neighbour
    topic = torch.arange(10) // 5
    assert torch.equal(topic[cos.argmax(1)], topic)             # every nearest word: same topic
    same = (topic[:, None] == topic[None]) & ~torch.eye(10, dtype=torch.bool)
    assert cos[same].min() > cos[topic[:, None] != topic[None]].max()
    assert sum(losses[-10:]) < sum(losses[:10])
    again, _ = train_skipgram(ids, freq, dim=8, window=2, epochs=3, batch_size=256, lr=0.05,
                              t=1.0)
    assert torch.equal(again.v.weight, model.v.weight)          # seeded


def test_bad_input_is_refused_with_a_clear_message():
    freq = torch.ones(4)
    with pytest.raises(ValueError, match=r"ids must lie in 0 \.\. 3 .*got values from 0 to 7"):
        train_skipgram(torch.tensor([0, 7, 1]), freq)
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        train_skipgram(torch.tensor([0.0, 1.0]), freq)
    with pytest.raises(ValueError, match="freq must hold finite counts > 0"):
        keep_probability(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="batch_size=1024 is more than the"):
        train_skipgram(torch.tensor([0, 1, 2, 3] * 5), freq, t=1.0)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        train_skipgram(torch.tensor([0, 1, 2, 3]), freq, epochs=0)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        SkipGram(4, 0)
    assert len(epoch_pairs(torch.tensor([2]), freq, 5, torch.Generator())[0]) == 0
