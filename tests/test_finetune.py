"""Fine-tuning an encoder classifier (llmbook.finetune) on a tiny random BERT."""
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from llmbook.finetune import EncoderClassifier, fit_classifier, predict_logits, tokenize_batch

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "movie", "was", "a",
         "day", "very", "and", "it"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS))
    return BertTokenizerFast(vocab=str(vocab))


def make_model(seed=0, masked_pool=True):
    torch.manual_seed(seed)
    enc = BertModel(BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32,
                               num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64))
    return EncoderClassifier(enc, masked_pool=masked_pool)


def toy_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    texts, labels = [], []
    for _ in range(n):
        y = int(torch.randint(2, (1,), generator=g))
        filler = [WORDS[6 + int(k)] for k in torch.randint(8, (int(torch.randint(1, 6, (1,),
                  generator=g)),), generator=g)]
        word = WORDS[3 * y + int(torch.randint(3, (1,), generator=g))]
        texts.append(" ".join(filler + [word]))
        labels.append(y)
    return texts, labels


def test_learns_a_separable_task_and_is_seeded(tokenizer):
    texts, labels = toy_data()
    model = make_model()
    losses = fit_classifier(model, tokenizer, texts, labels, max_len=16, epochs=10,
                            batch_size=8, lr=1e-3, head_lr=1e-2)
    assert len(losses) == 10 * 8
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4
    test, y_test = toy_data(32, seed=1)
    pred = predict_logits(model, tokenizer, test, max_len=16).argmax(-1)
    assert (pred == torch.tensor(y_test)).float().mean() > 0.9
    again = fit_classifier(make_model(), tokenizer, texts, labels, max_len=16, epochs=10,
                           batch_size=8, lr=1e-3, head_lr=1e-2)
    assert again == losses


def test_every_weight_is_trained(tokenizer):
    texts, labels = toy_data(16)
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit_classifier(model, tokenizer, texts, labels, max_len=16, epochs=1, batch_size=8)
    after = model.state_dict()
    assert not torch.equal(before["head.weight"], after["head.weight"])
    key = "encoder.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(before[key], after[key])


def test_padding_with_a_mask_changes_nothing_without_it_does(tokenizer):
    texts, _ = toy_data(12, seed=2)
    model = make_model()
    short = predict_logits(model, tokenizer, texts, max_len=16, batch_size=4)
    long = predict_logits(model, tokenizer, texts, max_len=16, batch_size=4, pad_to=64)
    assert torch.allclose(short, long, atol=1e-5)
    model.masked_pool = False
    short = predict_logits(model, tokenizer, texts, max_len=16, batch_size=4)
    long = predict_logits(model, tokenizer, texts, max_len=16, batch_size=4, pad_to=64)
    assert not torch.allclose(short, long, atol=1e-3)


def test_tokenize_batch_truncates_before_padding(tokenizer):
    text = " ".join(WORDS * 3)
    a = tokenize_batch(tokenizer, [text, "good"], max_len=8)
    b = tokenize_batch(tokenizer, [text, "good"], max_len=8, pad_to=20)
    assert a["input_ids"].shape == (2, 8) and b["input_ids"].shape == (2, 20)
    assert torch.equal(a["input_ids"], b["input_ids"][:, :8])
    assert b["attention_mask"].sum(1).tolist() == a["attention_mask"].sum(1).tolist()


def test_bad_arguments_are_named(tokenizer):
    model = make_model()
    with pytest.raises(ValueError, match="labels must lie in"):
        fit_classifier(model, tokenizer, ["good"], [2], max_len=8)
    with pytest.raises(ValueError, match="labels must have one entry per text"):
        fit_classifier(model, tokenizer, ["good", "bad"], [1], max_len=8)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        fit_classifier(model, tokenizer, ["good"], [1], max_len=8, lr=float("nan"))
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit_classifier(model, tokenizer, ["good"], [1], max_len=8, epochs=0)
    with pytest.raises(TypeError, match="model must be an EncoderClassifier"):
        fit_classifier(torch.nn.Linear(2, 2), tokenizer, ["good"], [1], max_len=8)
    with pytest.raises(ValueError, match="texts must be a non-empty list"):
        predict_logits(model, tokenizer, "good", max_len=8)
    with pytest.raises(ValueError, match="pad_to must be >= max_len"):
        tokenize_batch(tokenizer, ["good"], max_len=8, pad_to=4)
    with pytest.raises(ValueError, match="hidden_size must be given"):
        EncoderClassifier(torch.nn.Identity())
    with pytest.raises(ValueError, match=r"must both be \(B, T\)"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.long))
