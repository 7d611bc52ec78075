"""Checks for notebook 1.2 (tokens)."""
from __future__ import annotations

import torch

from llmbook.exercises import exercise, expect


_BPE_TRAIN = ("It is a truth universally acknowledged, that a single man in possession of "
              "a good fortune, must be in want of a wife. However little known the feelings "
              "or views of such a man may be on his first entering a neighbourhood, this "
              "truth is so well fixed in the minds of the surrounding families, that he is "
              "considered the rightful property of some one or other of their daughters. ")
_BPE_TESTS = ["the truth is universally known",
              "Captain Wentworth's unexpected reappearance, in 1814!",
              " neighbourhoods and neighbours\n\nfamilies of daughters",
              "naïve café — 東京"]


def _bpe_reference():
    from llmbook.tokenizers import BPETokenizer

    tok = BPETokenizer.train(_BPE_TRAIN * 3, vocab_size=256 + 90, special_tokens=())
    ids = {b: i for i, b in tok.vocab.items()}
    merges = [(ids[a], ids[b]) for a, b in tok.merges]
    return tok, merges


@exercise("1.2.1")
def bpe_encode(fn) -> None:
    """``fn(text, merges) -> list[int]``: encode with learned merges, as BPETokenizer does."""
    tok, merges = _bpe_reference()
    got = fn("a", merges)
    expect(isinstance(got, (list, tuple)), f"return a list of ids, not {type(got).__name__}")
    expect(list(got) == [97], f"'a' is one byte, 97, and no merge applies; got {list(got)}")
    # hand-made merges where the order matters: 'bc' was learned before 'ab'
    hand = [(98, 99), (97, 98), (97, 256)]           # 256 = bc, 257 = ab, 258 = a+bc
    got = [int(i) for i in fn("abc", hand)]
    expect(got != [257, 99], "with merges [(b, c), (a, b), (a, bc)] you encoded 'abc' as "
                             "[ab, c]: you merged the first learned pair you met, left to "
                             "right. Merge the pair with the *lowest rank* first: b+c, then "
                             "a+bc, giving [258].")
    expect(got == [258], f"with merges [(98, 99), (97, 98), (97, 256)] 'abc' should become "
                         f"[258] (b+c first, then a+bc), got {got}.")
    for text in _BPE_TESTS:
        want, got = tok.encode(text), [int(i) for i in fn(text, list(merges))]
        if got == want:
            continue
        pieces = [tok.vocab.get(i, b"?") for i in got]
        expect(b"".join(pieces) == text.encode("utf-8"),
               f"your ids for {text!r} do not decode back to the text: every id must be a "
               "byte (< 256) or 256 + the index of a merge.")
        crossing = [p for p in pieces if b" " in p[1:] or (p[:1] != b" " and b" " in p)]
        expect(not crossing, f"for {text!r} a token spans a pre-token boundary "
                             f"({crossing[0]!r}): cut the text with pre_tokenize first and "
                             "merge inside each piece only.")
        expect(len(got) >= len(want),
               f"for {text!r} you return fewer tokens ({len(got)}) than BPE ({len(want)}): "
               "a merge can only join a pair that was learned.")
        expect(False, f"for {text!r} BPE gives {want}, you gave {got}. Inside each "
                      "pre-token, always merge the pair that was learned earliest "
                      "(lowest index in merges) first, wherever it sits in the word, "
                      "then look again.")


@exercise("1.2.2")
def pad_batch(fn) -> None:
    """``fn(sequences, pad_id) -> (ids, mask)``: right-padded (B, T) long tensors."""
    seqs = [[5, 6, 7], [8], [9, 10]]
    out = fn(seqs, 0)
    expect(isinstance(out, tuple) and len(out) == 2, "return a pair (ids, mask)")
    ids, mask = out
    expect(isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor),
           "return torch tensors (torch.tensor / torch.full), not lists")
    expect(tuple(ids.shape) == (3, 3), f"ids should have shape (B, T) = (3, 3), got "
                                       f"{tuple(ids.shape)}")
    expect(tuple(mask.shape) == (3, 3), f"mask should have shape (3, 3), got {tuple(mask.shape)}")
    expect(ids.dtype == torch.long, f"ids must be torch.long (embedding lookups need integer "
                                    f"ids), got {ids.dtype}")
    expect(ids[1].tolist() != [0, 0, 8], "you padded on the left; pad on the right: [8, 0, 0]")
    expect(ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]],
           f"padded ids should be [[5, 6, 7], [8, 0, 0], [9, 10, 0]], got {ids.tolist()}")
    expect(mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]],
           f"mask should be 1 at real tokens and 0 at padding: [[1, 1, 1], [1, 0, 0], "
           f"[1, 1, 0]], got {mask.tolist()}")
    ids, mask = fn([[0, 3], [4]], 0)
    expect(mask.tolist() == [[1, 1], [1, 0]],
           "a real token can have the same id as the padding: build the mask from the "
           "lengths, not from ids != pad_id.")
    ids, _ = fn([[1, 2]], 99)
    expect(ids.tolist() == [[1, 2]], "a batch of one sequence needs no padding")
