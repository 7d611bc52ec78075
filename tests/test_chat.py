"""llmbook.chat: reusing the KV cache across turns gives the tokens of recomputing
everything, and both equal a brute-force greedy loop with no cache at all."""
from __future__ import annotations

import pytest
import torch
from llmbook.chat import Chat, template_suffix
from llmbook.models import GPT, GPTConfig


@pytest.fixture(scope="module")
def tokenizer():
    from llmbook import data
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(data.smollm2_path())


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=len(tokenizer), block_size=512, n_layer=2, n_head=2,
                    n_embd=32, position="rope", norm="rmsnorm", mlp="swiglu", bias=False)
    m = GPT(cfg).eval()
    with torch.no_grad():                       # make the end token likely now and then
        m.lm_head.weight[tokenizer.eos_token_id] *= 40
    return m


def brute_force(model, tokenizer, questions, max_new_tokens):
    """Re-render the conversation each turn, then greedy decoding without any cache."""
    ids, messages, answers = [], [], []
    for q in questions:
        messages.append({"role": "user", "content": q})
        text = tokenizer.decode(ids, skip_special_tokens=False,
                                clean_up_tokenization_spaces=False)
        full = tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=True)
        assert full.startswith(text)
        ids = ids + tokenizer.encode(full[len(text):], add_special_tokens=False)
        answer = []
        with torch.no_grad():
            while len(answer) < max_new_tokens:
                logits, _ = model(torch.tensor([ids + answer]))
                answer.append(int(logits[0, -1].argmax()))
                if answer[-1] == tokenizer.eos_token_id:
                    break
        ids = ids + answer
        content = answer[:-1] if answer[-1] == tokenizer.eos_token_id else answer
        messages.append({"role": "assistant", "content": tokenizer.decode(
            content, skip_special_tokens=False, clean_up_tokenization_spaces=False)})
        answers.append(messages[-1]["content"])
    return ids, answers


QUESTIONS = ["How do I install the book?", "And on Colab?", "Thanks. What is a KV cache?"]


def test_cache_reuse_equals_recomputing_and_brute_force(model, tokenizer):
    want_ids, want_answers = brute_force(model, tokenizer, QUESTIONS, 12)
    for reuse in (True, False):
        chat = Chat(model, tokenizer, reuse_cache=reuse, max_len=256)
        answers = [chat.say(q, max_new_tokens=12) for q in QUESTIONS]
        assert answers == want_answers, reuse
        assert chat.ids == want_ids, reuse
        assert len(chat.stats) == 3
    # with reuse the prefill is only the new text: much shorter than the conversation
    reused = Chat(model, tokenizer, max_len=256)
    fresh = Chat(model, tokenizer, reuse_cache=False, max_len=256)
    for q in QUESTIONS:
        reused.say(q, 12)
        fresh.say(q, 12)
    assert reused.stats[0].prefill_tokens == fresh.stats[0].prefill_tokens
    for a, b in zip(reused.stats[1:], fresh.stats[1:]):
        assert a.prefill_tokens < b.prefill_tokens
    assert fresh.stats[-1].prefill_tokens == len(fresh.ids) - fresh.stats[-1].new_tokens
    assert reused._cache.length == len(reused.ids) - 1


def test_rendered_text_matches_the_template(model, tokenizer):
    chat = Chat(model, tokenizer, system="You answer questions about a book.", max_len=256)
    for q in QUESTIONS[:2]:
        chat.say(q, max_new_tokens=8)
    # the tokens fed are the rendered conversation (up to the last answer's end token)
    rendered = tokenizer.apply_chat_template(chat.messages, tokenize=False)
    text = tokenizer.decode(chat.ids, skip_special_tokens=False,
                            clean_up_tokenization_spaces=False)
    assert rendered.startswith(text)
    assert rendered[len(text):].strip() in ("", "<|im_end|>")
    assert chat.messages[0] == {"role": "system", "content": "You answer questions about a book."}
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user",
                                                  "assistant"]


class RewritingTokenizer:
    """A template that keeps only the last message: earlier turns are rewritten."""

    eos_token_id = 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return f"<{messages[-1]['role']}>{messages[-1]['content']}<a>"


def test_errors(model, tokenizer):
    with pytest.raises(TypeError, match="llmbook GPT"):
        Chat(torch.nn.Linear(2, 2), tokenizer)
    with pytest.raises(TypeError, match="apply_chat_template"):
        Chat(model, object())
    with pytest.raises(ValueError, match="max_len"):
        Chat(model, tokenizer, max_len=10_000)
    with pytest.raises(TypeError, match="reuse_cache"):
        Chat(model, tokenizer, reuse_cache="yes")
    chat = Chat(model, tokenizer, max_len=64)
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        chat.say("   ")
    with pytest.raises(ValueError, match="max_new_tokens"):
        chat.say("hi", max_new_tokens=0)
    with pytest.raises(ValueError, match="over max_len=64"):
        chat.say("hi", max_new_tokens=60)
    with pytest.raises(ValueError, match="rewrites earlier turns"):
        template_suffix(RewritingTokenizer(), [{"role": "user", "content": "b"}], "<user>a<a>")
    with pytest.raises(ValueError, match="non-empty list"):
        template_suffix(tokenizer, [], "")
