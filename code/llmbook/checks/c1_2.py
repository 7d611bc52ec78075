"""Checks for notebook 1.2 (tokens)."""
from __future__ import annotations

import torch

from llmbook.exercises import exercise, expect


def _reference_merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@exercise("1.2.1")
def merge_pair(fn) -> None:
    """``fn(ids, pair, new_id) -> list``: replace non-overlapping pairs, left to right."""
    got = fn([1, 2, 3, 1, 2], (1, 2), 9)
    expect(isinstance(got, (list, tuple)), f"return a list of ids, not {type(got).__name__}")
    expect(list(got) == [9, 3, 9], f"merge_pair([1, 2, 3, 1, 2], (1, 2), 9) should be [9, 3, 9], "
                                   f"got {list(got)}")
    got = list(fn([5, 5, 5], (5, 5), 7))
    expect(got != [5, 7], "for [5, 5, 5] and the pair (5, 5) you merged the *last* two; "
                          "scan from the left: the answer is [7, 5].")
    expect(got != [7, 7], "for [5, 5, 5] and the pair (5, 5) you merged overlapping pairs; "
                          "a position can only be used once: the answer is [7, 5].")
    expect(got == [7, 5], f"merge_pair([5, 5, 5], (5, 5), 7) should be [7, 5], got {got}")
    cases = [([], (1, 2), 3), ([1], (1, 2), 3), ([2, 1], (1, 2), 3), ([1, 2, 1, 2, 2], (1, 2), 0),
             ([4, 4, 4, 4], (4, 4), 8)]
    for ids, pair, new in cases:
        want, got = _reference_merge(ids, pair, new), list(fn(list(ids), pair, new))
        expect(got == want, f"merge_pair({ids}, {pair}, {new}) should be {want}, got {got}")
    ids = [1, 2, 3]
    fn(ids, (1, 2), 9)
    expect(ids == [1, 2, 3], "your function changed its input list; return a new list instead.")


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
