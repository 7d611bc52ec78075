"""A multi-turn chat loop that keeps the KV cache from one turn to the next.

A chat model sees the whole conversation every turn, rendered by its **chat template**
(``tokenizer.apply_chat_template``): role markers, the system message, every earlier
question and answer, then the start of the assistant's next answer. Recomputing that
prefix each turn costs a forward pass over a sequence that grows with the
conversation. But the prefix has not changed since the last turn: its keys and values
are still in the :class:`~llmbook.attention.KVCache`. :class:`Chat` keeps the cache and
the exact token ids it holds, and each turn feeds only the **new** tokens: the text the
template adds after the last answer (end of turn, the user's message, the assistant
marker), then the answer, one token at a time.

The conversation is defined by its tokens (``Chat.ids``), not by re-tokenising the
rendered text: an answer's tokens are kept as the model produced them. With
``reuse_cache=False`` every turn starts from an empty cache and recomputes the whole
conversation; both modes produce the same tokens (greedy decoding), which is the test
that the reuse is right.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from llmbook._validate import boolean, positive_int

__all__ = ["Chat", "TurnStats", "template_suffix"]


@dataclass
class TurnStats:
    """One turn: tokens fed in one prefill pass, tokens generated, wall-clock seconds
    of the prefill and of the whole turn."""

    prefill_tokens: int
    new_tokens: int
    prefill_s: float
    total_s: float


def template_suffix(tokenizer, messages: list[dict], history_text: str) -> str:
    """The text the chat template adds to ``history_text`` to render ``messages`` with
    the assistant's generation prompt.

    ``history_text`` is what the model has already seen (the decoded ``Chat.ids``). The
    rendered conversation must start with it; a template that rewrites earlier turns
    (e.g. strips or drops old messages) breaks that, and this raises a ``ValueError``
    instead of silently feeding the model a different conversation.
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"messages must be a non-empty list of dicts, got {messages!r}")
    full = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not full.startswith(history_text):
        i = next((j for j, (a, b) in enumerate(zip(full, history_text)) if a != b),
                 min(len(full), len(history_text)))
        raise ValueError("the chat template does not extend the conversation so far: it "
                         f"differs at character {i} ({history_text[i:i + 30]!r} seen, "
                         f"{full[i:i + 30]!r} rendered); it rewrites earlier turns, so "
                         "the cache cannot be reused")
    return full[len(history_text):]


@dataclass
class Chat:
    """Greedy multi-turn chat with a :class:`~llmbook.models.GPT` and a Hugging Face
    tokenizer that has a chat template.

    Args:
        model: an llmbook ``GPT`` (``forward(idx, cache=...)``, ``new_cache``).
        tokenizer: has ``apply_chat_template``, ``encode``/``decode`` and ``eos_token_id``.
        system: an optional system message (else the template's default, if any).
        reuse_cache: keep the KV cache across turns (True) or recompute the whole
            conversation every turn (False).
        max_len: the cache's capacity in tokens; a turn that would exceed it raises.

    ``say(text)`` appends the user's message, generates the answer (at most
    ``max_new_tokens``, stopping after ``eos_token_id``) and returns its text.
    ``ids`` are all tokens the model has seen or written, ``messages`` the conversation,
    ``stats`` one :class:`TurnStats` per turn.
    """

    model: torch.nn.Module
    tokenizer: object
    system: str | None = None
    reuse_cache: bool = True
    max_len: int = 2048
    messages: list[dict] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    stats: list[TurnStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (hasattr(self.model, "new_cache") and hasattr(self.model, "config")):
            raise TypeError(f"model must be an llmbook GPT (with new_cache), got "
                            f"{type(self.model).__name__}")
        if not hasattr(self.tokenizer, "apply_chat_template"):
            raise TypeError(f"tokenizer must have apply_chat_template, got "
                            f"{type(self.tokenizer).__name__}")
        if getattr(self.tokenizer, "eos_token_id", None) is None:
            raise ValueError("tokenizer.eos_token_id is None: the chat loop needs an "
                             "end-of-turn token to stop at")
        boolean("reuse_cache", self.reuse_cache)
        positive_int("max_len", self.max_len)
        if self.max_len > self.model.config.block_size:
            raise ValueError(f"max_len={self.max_len} exceeds the model's block_size="
                             f"{self.model.config.block_size}")
        if self.system is not None:
            if not isinstance(self.system, str):
                raise TypeError(f"system must be a str or None, got {self.system!r}")
            self.messages.append({"role": "system", "content": self.system})
        self._cache = None

    def _text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    @torch.no_grad()
    def say(self, text: str, max_new_tokens: int = 64) -> str:
        """Add the user's ``text``, generate greedily, return the answer (no end token)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty str, got {text!r}")
        positive_int("max_new_tokens", max_new_tokens)
        t0 = time.perf_counter()
        messages = self.messages + [{"role": "user", "content": text}]
        suffix = template_suffix(self.tokenizer, messages, self._text())
        new = self.tokenizer.encode(suffix, add_special_tokens=False)
        if len(self.ids) + len(new) + max_new_tokens > self.max_len:
            raise ValueError(f"the conversation would reach {len(self.ids) + len(new)} + "
                             f"{max_new_tokens} tokens, over max_len={self.max_len}")
        device = self.model.wte.weight.device
        if self.reuse_cache and self._cache is not None:
            feed = self.ids[self._cache.length:] + new   # the last answer's last token + new
        else:
            self._cache = self.model.new_cache(1, max_len=self.max_len)
            feed = self.ids + new                        # recompute the conversation
        self.ids = self.ids + new
        self.model.eval()
        logits, _ = self.model(torch.tensor([feed], device=device), cache=self._cache)
        prefill_s = time.perf_counter() - t0
        answer: list[int] = []
        eos = self.tokenizer.eos_token_id
        while True:
            nxt = int(logits[0, -1].argmax())
            answer.append(nxt)
            if nxt == eos or len(answer) == max_new_tokens:
                break
            logits, _ = self.model(torch.tensor([[nxt]], device=device), cache=self._cache)
        self.ids = self.ids + answer      # the cache lacks answer[-1]: fed next turn
        content = self.tokenizer.decode(answer[:-1] if answer[-1] == eos else answer,
                                        skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)
        self.messages = messages + [{"role": "assistant", "content": content}]
        self.stats.append(TurnStats(len(feed), len(answer), prefill_s,
                                    time.perf_counter() - t0))
        return content
