"""Generating text from a trained language model, one token at a time.

``sample(model, vocab, prime="The ", length=200, temperature=0.8, top_k=None)``:

1. run the prime string through the model to build up its hidden state;
2. repeatedly turn the last logits into probabilities ``softmax(logits / temperature)``,
   keep only the ``top_k`` most likely tokens if asked, draw one, feed it back in.

Temperature below 1 sharpens the distribution (safer, more repetitive text); above 1 flattens
it (more surprising, more mistakes); ``temperature=0`` always takes the most likely token.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """Logits (..., V) -> probabilities (..., V) after temperature and top-k filtering.

    ``temperature == 0`` gives a one-hot distribution on the argmax.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float()
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    return torch.softmax(logits / temperature, dim=-1)


@contextmanager
def _onednn_off():
    """Switch oneDNN off for a while (``mkldnn.flags`` would also warn about TF32 on every call)."""
    backend = torch.backends.mkldnn
    previous = backend.enabled
    backend.enabled = False
    try:
        yield
    finally:
        backend.enabled = previous


@torch.no_grad()
def sample(
    model,
    vocab,
    prime: str = "The ",
    length: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """Return ``prime`` followed by ``length`` sampled characters (or words).

    ``model(x, hidden) -> (logits, hidden)`` as ``CharRNN``; ``vocab`` has ``encode``/``decode``.
    Characters of ``prime`` outside the vocabulary raise a ``ValueError`` naming them.
    """
    if not prime:
        raise ValueError("the prime string must not be empty: the model needs a first character")
    missing = vocab.unknown(prime) if hasattr(vocab, "unknown") else []
    if missing:
        raise ValueError(
            f"the prime string contains characters the model has never seen: {missing!r}; remove or replace them."
        )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(vocab.encode(prime), device=device).unsqueeze(0)  # (1, len(prime))
    out = []
    try:
        # oneDNN's fused LSTM is slow on one-character steps on the CPU: off while sampling.
        with _onednn_off():
            logits, hidden = model(x)
            for _ in range(length):
                probs = next_token_distribution(logits[0, -1], temperature, top_k)
                token = torch.multinomial(probs, 1, generator=generator)
                out.append(int(token))
                logits, hidden = model(token.view(1, 1), hidden)
    finally:
        model.train(was_training)
    generated = vocab.decode(out)
    return prime + (generated if isinstance(generated, str) else " " + " ".join(generated))
