"""Contrastive fine-tuning of a sentence encoder on pairs built from a few labels (the SetFit recipe).

Each labeled text is paired, per round, with one text of its own class (target cosine 1) and one of another class
(target 0); the encoder learns to pull the first together and push the second apart (cosine-similarity loss,
sentence-transformers' ``CosineSimilarityLoss``). Each distinct text in a batch of pairs is embedded once: with few
labels the pairs share most of their texts, so a step costs far fewer forward passes than two per pair. Few labels
make many pairs, so a few dozen examples are enough to adapt the embedding to the task; a linear head is then fit on
the new embeddings.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..progress import progress_bar
from ..runtime import autocast, resolve_precision
from .tuners import ContrastiveTuner


def make_pairs(y: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    """Rows (i, j, same) with one same-class and one other-class partner per text and round, shuffled."""
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    others = {c: np.flatnonzero(y != c) for c in by_class}
    pairs = []
    for _ in range(rounds):
        for i, c in enumerate(y):
            same = by_class[c][by_class[c] != i]
            if len(same):
                pairs.append((i, int(rng.choice(same)), 1))
            pairs.append((i, int(rng.choice(others[c])), 0))
    pairs = np.asarray(pairs, dtype=np.int64)
    return pairs[rng.permutation(len(pairs))]


def train_contrastive(encoder, texts: list[str], y: np.ndarray, config: ContrastiveTuner, seed: int = 0,
                      precision: str = "auto", progress: bool = True) -> dict:
    """Fine-tune ``encoder`` (a :class:`~transferkit.featurizers.SentenceEncoder`) in place; returns what it did."""
    try:
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.losses import CosineSimilarityLoss

    torch.manual_seed(seed)
    model = encoder.model
    loss_fn = CosineSimilarityLoss(model)
    pairs = make_pairs(np.asarray(y), config.rounds, seed)
    steps = config.epochs * math.ceil(len(pairs) / config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    warm = max(1, int(config.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm)) if s >= warm
        else (s + 1) / warm)
    resolved = resolve_precision(precision, encoder.device.type)
    probe_pairs = pairs[:64]  # a fixed sample of the pairs, scored before and after: did the encoder learn them?
    loss_before = _mean_loss(loss_fn, encoder, texts, probe_pairs, config)
    model.train()
    losses = []
    start = time.perf_counter()
    with progress_bar("Contrastive fine-tuning", total=steps, enabled=progress) as advance:
        for epoch in range(config.epochs):
            order = pairs if epoch == 0 else pairs[np.random.default_rng(seed + epoch).permutation(len(pairs))]
            for b in range(0, len(order), config.batch_size):
                batch = order[b : b + config.batch_size]
                with autocast(resolved, encoder.device.type):
                    loss = _pair_loss(loss_fn, encoder, texts, batch, config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
                advance(1)
    model.eval()
    return {"pairs": int(len(pairs)), "steps": int(steps), "train_seconds": time.perf_counter() - start,
            "pair_loss_before": loss_before, "pair_loss_after": _mean_loss(loss_fn, encoder, texts, probe_pairs, config),
            "contrastive": config.to_dict(), "precision": resolved}


def _mean_loss(loss_fn, encoder, texts: list[str], pairs: np.ndarray, config: ContrastiveTuner) -> float:
    encoder.model.eval()
    total = 0.0
    with torch.no_grad():
        for b in range(0, len(pairs), config.batch_size):
            batch = pairs[b : b + config.batch_size]
            total += float(_pair_loss(loss_fn, encoder, texts, batch, config)) * len(batch)
    return total / max(len(pairs), 1)


def _pair_loss(loss_fn, encoder, texts: list[str], batch: np.ndarray, config: ContrastiveTuner) -> torch.Tensor:
    """The loss of a batch of pairs, each distinct text embedded once (few labels: pairs share most texts)."""
    unique, position = np.unique(batch[:, :2], return_inverse=True)
    position = torch.from_numpy(position.reshape(-1, 2))
    tokens, _ = encoder.tokenize([texts[i] for i in unique], max_tokens=config.train_tokens)
    emb = encoder.forward(tokens)
    labels = torch.as_tensor(batch[:, 2], dtype=torch.float32, device=emb.device)
    return loss_fn.compute_loss_from_embeddings([emb[position[:, 0].to(emb.device)], emb[position[:, 1].to(emb.device)]], labels)
