"""Looking inside a GPT with forward hooks: the residual stream, the logit lens, induction
scores, activation patching, gradient-times-input attribution and linear probes.

Every function takes the book's :class:`llmbook.models.GPT` (the tiny GPTs, or SmolLM2
through :func:`llmbook.interop.from_hf`) and leaves it as it found it: hooks are removed
when the call returns, even after an error.

The residual stream has ``n_layer + 1`` readings, numbered ``0 .. n_layer``: reading 0 is
the input of block 0 (token embedding, plus learned positions where the model has them),
reading ``i`` the output of block ``i - 1``. The last reading, through the final norm
``ln_f`` and ``lm_head``, gives the model's logits.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from llmbook._validate import finite, nonneg_int, positive_int

__all__ = [
    "control_labels",
    "fit_probe",
    "grad_x_input",
    "hooks",
    "induction_scores",
    "logit_lens",
    "patch_residual",
    "patching_map",
    "probe_accuracy",
    "recording_attention",
    "repeated_tokens",
    "residual_stream",
    "run_with_residuals",
]


# ----------------------------------------------------------------------------- hooks

@contextmanager
def hooks(*pairs: tuple[nn.Module, Callable], pre: bool = False) -> Iterator[None]:
    """Register ``(module, fn)`` forward hooks (``pre=True``: forward pre-hooks) for the
    duration of a ``with`` block; they are removed on exit, also after an error."""
    handles = []
    try:
        for module, fn in pairs:
            if not isinstance(module, nn.Module):
                raise TypeError(f"hooks takes (module, fn) pairs, got {type(module).__name__}")
            register = module.register_forward_pre_hook if pre else module.register_forward_hook
            handles.append(register(fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def recording_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Keep the attention weights of every layer while the ``with`` block runs (the
    scratch attention path). On exit the yielded list holds ``n_layer`` tensors
    ``(B, n_head, T, T)`` from the last forward pass, so weights and gradients can come
    from one pass: ``with recording_attention(m) as maps: attr = grad_x_input(m, ...)``."""
    _check_model(model)
    attns = [block.attn for block in model.blocks]
    maps: list[torch.Tensor] = []
    for a in attns:
        a.record_weights = True
    try:
        yield maps
        maps.extend(a.last_weights for a in attns if a.last_weights is not None)
    finally:
        for a in attns:
            a.record_weights, a.last_weights = False, None


def _check_model(model: nn.Module) -> None:
    for attr in ("blocks", "ln_f", "lm_head", "wte"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be an llmbook GPT (with .{attr}), got "
                            f"{type(model).__name__}")


def _check_idx(idx: object, name: str = "idx") -> torch.Tensor:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"{name} must be a (B, T) tensor of token ids, got {shape}")
    return idx


def _check_reading(model: nn.Module, layer: object) -> int:
    n = len(model.blocks)
    layer = nonneg_int("layer", layer)
    if layer > n:
        raise ValueError(f"layer must be a residual reading 0..{n} (n_layer = {n}), got {layer}")
    return layer


# ------------------------------------------------------------------- residual stream

@torch.no_grad()
def run_with_residuals(model: nn.Module, idx: torch.Tensor, **kwargs
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of ``idx (B, T)`` (``kwargs`` go to the model, e.g.
    ``attention_mask``): its logits ``(B, T, V)`` and the residual stream at every
    reading, ``(n_layer + 1, B, T, C)``.

    Reading 0 is captured by a pre-hook on block 0, reading ``i`` by a hook on the output
    of block ``i - 1``.
    """
    _check_model(model)
    idx = _check_idx(idx)
    seen: list[torch.Tensor] = []
    handle = model.blocks[0].register_forward_pre_hook(
        lambda mod, args: seen.append(args[0]))
    try:
        with hooks(*[(b, lambda mod, args, out: seen.append(out)) for b in model.blocks]):
            logits = model(idx, **kwargs)[0]
    finally:
        handle.remove()
    return logits, torch.stack(seen)


def residual_stream(model: nn.Module, idx: torch.Tensor, **kwargs) -> torch.Tensor:
    """The residual stream of ``idx (B, T)`` at every reading: ``(n_layer + 1, B, T, C)``
    (see :func:`run_with_residuals`)."""
    return run_with_residuals(model, idx, **kwargs)[1]


@torch.no_grad()
def logit_lens(model: nn.Module, idx: torch.Tensor, position: int | None = None,
               **kwargs) -> torch.Tensor:
    """Each reading of the residual stream through the final norm and the unembedding
    (the logit lens, nostalgebraist 2020): ``(n_layer + 1, B, T, vocab_size)`` logits,
    or ``(n_layer + 1, B, vocab_size)`` at one ``position`` only (cheaper for a large
    vocabulary). The last reading is the model's own output. ``kwargs`` go to the
    model (e.g. ``attention_mask`` for a left-padded batch)."""
    resid = residual_stream(model, idx, **kwargs)
    if position is not None:
        T = idx.size(1)
        if nonneg_int("position", position) >= T:
            raise ValueError(f"position must be < T = {T}, got {position}")
        resid = resid[:, :, position]
    return model.lm_head(model.ln_f(resid))


# ------------------------------------------------------------------- induction heads

def repeated_tokens(n_seqs: int, half: int, low: int, high: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``n_seqs`` rows of ``half`` random token ids in ``[low, high)``, each row repeated
    once: ``(n_seqs, 2 * half)`` int64. In the second half every next token can be read
    off the first half."""
    positive_int("n_seqs", n_seqs)
    positive_int("half", half)
    nonneg_int("low", low)
    positive_int("high", high)
    if high <= low:
        raise ValueError(f"high must exceed low, got low={low}, high={high}")
    first = torch.randint(low, high, (n_seqs, half), generator=generator)
    return torch.cat([first, first], dim=1)


@torch.no_grad()
def induction_scores(model: nn.Module, idx: torch.Tensor, prefix: int = 0) -> torch.Tensor:
    """Per-head induction scores ``(n_layer, n_head)`` on repeated sequences.

    ``idx (B, prefix + 2 * half)``: ``prefix`` tokens (e.g. a BOS) then a random half
    repeated once (see :func:`repeated_tokens`). A query at position ``t`` of the second
    half sees the same token at ``t - half``; an induction head attends to the token
    *after* it, ``t - half + 1``. The score is that attention weight, averaged over the
    queries of the second half and the rows: 1 = a perfect induction head, about
    ``1 / t`` for uniform attention.
    """
    _check_model(model)
    idx = _check_idx(idx)
    nonneg_int("prefix", prefix)
    T = idx.size(1) - prefix
    if T < 4 or T % 2:
        raise ValueError(f"idx must hold prefix={prefix} tokens then an even number >= 4 "
                         f"of repeated tokens, got T = {idx.size(1)}")
    half = T // 2
    maps = torch.stack(model.attention_maps(idx))               # (L, B, H, T, T)
    q = torch.arange(prefix + half, prefix + T, device=maps.device)
    k = q - half + 1
    return maps[..., q, k].mean(dim=(1, 3))                      # (L, H)


# -------------------------------------------------------------- activation patching

@torch.no_grad()
def patch_residual(model: nn.Module, idx: torch.Tensor, layer: int, position: int,
                   value: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, T, V)`` of ``idx`` with residual reading ``layer`` at ``position``
    replaced by ``value (B, C)``; everything downstream is recomputed."""
    _check_model(model)
    idx = _check_idx(idx)
    layer = _check_reading(model, layer)
    T = idx.size(1)
    position = nonneg_int("position", position)
    if position >= T:
        raise ValueError(f"position must be < T = {T}, got {position}")
    C = model.config.n_embd
    if not isinstance(value, torch.Tensor) or value.shape != (idx.size(0), C):
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"value must be (B={idx.size(0)}, C={C}), got {got}")

    def swap(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, position] = value.to(x.dtype)
        return x

    if layer == 0:
        def pre(mod, args, kwargs):
            return (swap(args[0]), *args[1:]), kwargs
        handle = model.blocks[0].register_forward_pre_hook(pre, with_kwargs=True)
        try:
            return model(idx)[0]
        finally:
            handle.remove()
    with hooks((model.blocks[layer - 1], lambda mod, args, out: swap(out))):
        return model(idx)[0]


@torch.no_grad()
def patching_map(model: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor,
                 answer: int, wrong: int, readings: list[int] | None = None,
                 chunk: int = 256) -> torch.Tensor:
    """Activation patching: for every reading ``l`` and position ``p``, run ``corrupt``
    with the residual at ``(l, p)`` taken from the ``clean`` run and measure the logit
    difference ``logit[answer] - logit[wrong]`` at the last position, normalised so that
    0 = the corrupted run and 1 = the clean run. Returns ``(len(readings), T)``
    (``readings`` default: all ``0 .. n_layer``).

    ``clean`` and ``corrupt`` are ``(1, T)`` with the same ``T``. Positions before the
    first token that differs hold the same residual in both runs (the model is causal)
    and get exactly 0 without a run. The other ``(l, p)`` pairs run as the rows of
    batches of up to ``chunk`` sequences, row ``r`` patched by hooks at its own reading.
    """
    clean, corrupt = _check_idx(clean, "clean"), _check_idx(corrupt, "corrupt")
    if clean.shape != corrupt.shape or clean.size(0) != 1:
        raise ValueError(f"clean and corrupt must both be (1, T) with the same T, got "
                         f"{tuple(clean.shape)} and {tuple(corrupt.shape)}")
    V = model.config.vocab_size
    for name, tok in (("answer", answer), ("wrong", wrong)):
        if nonneg_int(name, tok) >= V:
            raise ValueError(f"{name} must be a token id < vocab_size={V}, got {tok}")
    readings = list(range(len(model.blocks) + 1)) if readings is None else [
        _check_reading(model, r) for r in readings]
    positive_int("chunk", chunk)
    logits, resid = run_with_residuals(model, torch.cat([clean, corrupt]))
    d_clean, d_corrupt = (logits[:, -1, answer] - logits[:, -1, wrong]).tolist()
    if abs(d_clean - d_corrupt) < 1e-6:
        raise ValueError("clean and corrupt give the same logit difference: nothing to "
                         "restore (choose prompts whose answers differ)")
    T = clean.size(1)
    first = int((clean[0] != corrupt[0]).nonzero()[0]) if (clean != corrupt).any() else T
    pairs = [(i, l, p) for i, l in enumerate(readings) for p in range(first, T)]
    out = torch.zeros(len(readings), T)
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        swap = _row_patcher(resid, torch.tensor([l for _, l, _ in part]),
                            torch.tensor([p for _, _, p in part], dtype=torch.long))
        pre = model.blocks[0].register_forward_pre_hook(
            lambda mod, args, swap=swap: (swap(args[0], 0), *args[1:]))
        try:
            with hooks(*[(b, lambda mod, args, o, layer=i + 1, swap=swap: swap(o, layer))
                         for i, b in enumerate(model.blocks)],
                       (model.ln_f, lambda mod, args, o: o[:, -1:])):   # last only
                last = model(corrupt.expand(len(part), T))[0][:, -1]      # (R, V)
        finally:
            pre.remove()
        score = ((last[:, answer] - last[:, wrong]) - d_corrupt) / (d_clean - d_corrupt)
        for (i, _, p), v in zip(part, score.tolist(), strict=True):
            out[i, p] = v
    return out


def _row_patcher(resid: torch.Tensor, at: torch.Tensor, pos: torch.Tensor
                 ) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """``swap(x, layer)``: row ``r`` of ``x (R, T, C)`` gets ``resid[layer, 0, pos[r]]``
    at position ``pos[r]`` when ``at[r] == layer``; other rows are left alone."""
    rows = torch.arange(len(at))

    def swap(x: torch.Tensor, layer: int) -> torch.Tensor:
        sel = at == layer
        if not sel.any():
            return x
        x = x.clone()
        x[rows[sel], pos[sel]] = resid[layer, 0, pos[sel]].to(x.dtype)
        return x

    return swap


# ----------------------------------------------------------------------- attribution

def grad_x_input(model: nn.Module, idx: torch.Tensor, position: int,
                 token: int | torch.Tensor) -> torch.Tensor:
    """Gradient-times-input attribution of ``logit[position, token]`` to every input
    token (``token``: one id, or one per row ``(B,)``): ``(B, T)``, the sum over ``C`` of ``embedding * d logit / d embedding`` (the
    token embedding ``wte``'s output). Positions after ``position`` get exactly 0 (the
    model is causal)."""
    _check_model(model)
    idx = _check_idx(idx)
    T = idx.size(1)
    if nonneg_int("position", position) >= T:
        raise ValueError(f"position must be < T = {T}, got {position}")
    V = model.config.vocab_size
    B = idx.size(0)
    if isinstance(token, torch.Tensor):
        if token.shape != (B,) or token.is_floating_point():
            raise ValueError(f"token must be an id or (B={B},) ids, got {token!r:.60}")
        bad = (token < 0) | (token >= V)
        if bad.any():
            raise ValueError(f"token ids must be in [0, {V}), got {token[bad][0].item()}")
        token = token.to(idx.device)
    else:
        if nonneg_int("token", token) >= V:
            raise ValueError(f"token must be an id < vocab_size={V}, got {token}")
        token = torch.full((B,), token, device=idx.device)
    kept: list[torch.Tensor] = []

    def keep(mod, args, out):
        out = out.detach().requires_grad_(True)
        kept.append(out)
        return out

    with torch.enable_grad(), hooks((model.wte, keep)):
        logits = model(idx)[0]
        chosen = logits[torch.arange(B), position, token]
        (grad,) = torch.autograd.grad(chosen.sum(), kept[0])
    return (grad * kept[0].detach()).sum(-1)


# ----------------------------------------------------------------------------- probes

def control_labels(types: torch.Tensor, labels: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A control task (Hewitt & Liang 2019): every token *type* gets one random label,
    drawn from the empirical distribution of ``labels``, and each token ``types (N,)``
    takes its type's label. A probe can score well on it only by memorising types, so
    its accuracy there measures what the probe can do without the property."""
    if not isinstance(types, torch.Tensor) or types.dim() != 1 or types.is_floating_point():
        raise ValueError(f"types must be a 1-D integer tensor, got {types!r:.60}")
    if not isinstance(labels, torch.Tensor) or labels.shape != types.shape:
        raise ValueError(f"labels must be a tensor of the shape of types {tuple(types.shape)}")
    uniq, inverse = torch.unique(types, return_inverse=True)
    counts = torch.bincount(labels.long()).double()
    per_type = torch.multinomial(counts / counts.sum(), len(uniq), replacement=True,
                                 generator=generator)
    return per_type[inverse]


def fit_probe(X: torch.Tensor, y: torch.Tensor, weight_decay: float = 1e-4,
              max_iter: int = 200) -> nn.Linear:
    """A linear probe: multinomial logistic regression ``X (N, C) -> y (N,)``, fitted by
    L-BFGS on the mean cross-entropy plus ``weight_decay * |W|^2 / 2``. The features are
    standardised inside the probe (its first layer folds in the mean and scale)."""
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X must be a float (N, C) tensor, got {X!r:.60}")
    if not isinstance(y, torch.Tensor) or y.shape != (X.size(0),) or y.is_floating_point():
        raise ValueError(f"y must be an integer (N={X.size(0)},) tensor of labels")
    weight_decay = finite("weight_decay", weight_decay, ge=0.0)
    positive_int("max_iter", max_iter)
    X, y = X.detach().float(), y.long()
    mu, sd = X.mean(0), X.std(0).clamp_min(1e-6)
    Z = (X - mu) / sd
    n_classes = int(y.max()) + 1
    probe = nn.Linear(X.size(1), n_classes)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=max_iter, tolerance_grad=1e-6,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(probe(Z), y) + weight_decay / 2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():                          # fold the standardisation in
        w = probe.weight / sd
        probe.bias -= (w * mu).sum(1)
        probe.weight.copy_(w)
    return probe.requires_grad_(False)


@torch.no_grad()
def probe_accuracy(probe: nn.Linear, X: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """``(correct, n)`` of a probe on ``X (N, C)``, ``y (N,)``: feed it to
    :func:`llmbook.metrics.proportion_ci` for the interval."""
    if not isinstance(X, torch.Tensor) or X.dim() != 2 or X.size(1) != probe.in_features:
        raise ValueError(f"X must be (N, {probe.in_features}), got {X!r:.60}")
    if not isinstance(y, torch.Tensor) or y.shape != (X.size(0),):
        raise ValueError(f"y must be (N={X.size(0)},)")
    correct = int((probe(X.float()).argmax(-1) == y).sum())
    return correct, int(y.numel())
