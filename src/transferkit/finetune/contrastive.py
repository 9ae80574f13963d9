"""Contrastive fine-tuning of a sentence encoder on pairs built from a few labels.

The encoder learns to give texts of one class cosine similarity 1 and texts of different classes 0 (the objective of
sentence-transformers' ``CosineSimilarityLoss``, SetFit's). Few labels make many pairs, so a few dozen examples are
enough to adapt the embedding to the task; a linear head is then fit on the new embeddings. Two ways to pick pairs
(``ContrastiveTuner.loss``):

- ``"batch"``: class-balanced batches of texts, and every pair inside a batch: a batch of 16 texts embedded once
  gives 120 pairs. Positives and negatives are weighted equally (SetFit balances them by sampling);
- ``"pairs"``: SetFit's recipe: each text with one text of its own class and one of another class per round, each
  distinct text of a batch of pairs embedded once.

Without classes (several labels per text, numbers), a pair's target is how alike the two texts' labels are
(``similarity``: the share of labels they have in common, or one minus the numbers' distance over their range), and
batches are drawn at random; pairs at or above one half count as positives when the two kinds are weighted.
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


def train_contrastive(encoder, texts: list[str], y: np.ndarray | None, config: ContrastiveTuner, seed: int = 0,
                      precision: str = "auto", progress: bool = True, similarity: np.ndarray | None = None) -> dict:
    """Fine-tune ``encoder`` (a :class:`~transferkit.featurizers.SentenceEncoder`) in place; returns what it did.
    ``y``: each text's class; or ``similarity``, each pair's target (a symmetric matrix of values in [0, 1]), with
    the ``"batch"`` loss."""
    try:
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.losses import CosineSimilarityLoss

    torch.manual_seed(seed)
    model = encoder.model
    if similarity is None:
        y = np.asarray(y)
        similarity = (y[:, None] == y[None, :]).astype(np.float32)
    elif config.loss != "batch":
        raise ValueError("graded pair targets train with the 'batch' loss")
    if config.loss == "batch":
        n = len(texts)
        per_epoch = max(1, math.ceil(config.rounds * n / config.batch_size))
        draw = ((lambda rng: class_balanced_batch(np.asarray(y), config.batch_size, rng)) if y is not None else
                (lambda rng: rng.choice(n, min(config.batch_size, n), replace=False)))
        batches = [draw(np.random.default_rng([seed, s])) for s in range(config.epochs * per_epoch + 1)]
        probe_batches, batches = batches[:1], batches[1:]  # scored before and after: did the encoder learn them?

        def loss_of(batch):
            return _batch_loss(encoder, texts, similarity, batch, config)
    else:
        loss_fn = CosineSimilarityLoss(model)
        pairs = make_pairs(y, max(1, config.rounds // 4), seed)  # a text is embedded about 4 times per round
        orders = [pairs] + [pairs[np.random.default_rng(seed + epoch).permutation(len(pairs))]
                            for epoch in range(1, config.epochs)]  # each epoch's order, shuffled once
        batches = [order[b: b + config.batch_size] for order in orders for b in range(0, len(order), config.batch_size)]
        probe_batches = [pairs[:64]]

        def loss_of(batch):
            return _pair_loss(loss_fn, encoder, texts, batch, config)
    steps = len(batches)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    from transformers import get_linear_schedule_with_warmup

    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=int(config.warmup * steps),
                                               num_training_steps=steps)  # too short to warm up: the first step trains
    resolved = resolve_precision(precision, encoder.device.type)
    loss_before = _mean_loss(loss_of, encoder, probe_batches)
    model.train()
    start = time.perf_counter()
    pairs = 0
    with progress_bar("Contrastive fine-tuning", total=steps, enabled=progress) as advance:
        for batch in batches:
            with autocast(resolved, encoder.device.type):
                loss = loss_of(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            pairs += len(batch) * (len(batch) - 1) // 2 if config.loss == "batch" else len(batch)
            advance(1)
    model.eval()
    return {"pairs": int(pairs), "steps": int(steps), "train_seconds": time.perf_counter() - start,
            "pair_loss_before": loss_before, "pair_loss_after": _mean_loss(loss_of, encoder, probe_batches),
            "contrastive": config.to_dict(), "precision": resolved}


def class_balanced_batch(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` texts (fewer when there are fewer), as many from each class as the batch allows and at
    least two from each class it holds, so that every text has a positive pair; classes are drawn at random when the
    batch cannot hold two of each."""
    classes = np.unique(y)
    if len(classes) * 2 > size:
        classes = rng.choice(classes, max(1, size // 2), replace=False)
    per = max(2, size // len(classes))
    chosen = [rng.choice(members, min(per, len(members)), replace=False)
              for members in (np.flatnonzero(y == c) for c in classes)]
    batch = np.concatenate(chosen)
    left = np.setdiff1d(np.flatnonzero(np.isin(y, classes)), batch)
    if len(batch) < size and len(left):  # fill the remainder at random
        batch = np.concatenate([batch, rng.choice(left, min(size - len(batch), len(left)), replace=False)])
    return batch


def _batch_loss(encoder, texts: list[str], similarity: np.ndarray, batch: np.ndarray,
                config: ContrastiveTuner) -> torch.Tensor:
    """Squared error of the cosine similarity of every pair in the batch to its target (1 for the same class, 0 for
    another; graded without classes), the positives' mean (target at least one half) and the negatives' weighted
    equally."""
    tokens, _ = encoder.tokenize([texts[i] for i in batch], max_tokens=config.train_tokens)
    emb = torch.nn.functional.normalize(encoder.forward(tokens).float(), dim=1)
    upper = torch.triu_indices(len(batch), len(batch), 1, device=emb.device)
    cosine = (emb @ emb.T)[upper[0], upper[1]]
    target = torch.as_tensor(similarity[np.ix_(batch, batch)], dtype=torch.float32,
                             device=emb.device)[upper[0], upper[1]]
    same = target >= 0.5
    parts = [((cosine[same] - target[same]) ** 2).mean()] if same.any() else []
    parts += [((cosine[~same] - target[~same]) ** 2).mean()] if (~same).any() else []
    return torch.stack(parts).mean()


def _mean_loss(loss_of, encoder, batches: list) -> float:
    encoder.model.eval()
    with torch.no_grad():
        return float(np.mean([float(loss_of(batch)) for batch in batches]))


def _pair_loss(loss_fn, encoder, texts: list[str], batch: np.ndarray, config: ContrastiveTuner) -> torch.Tensor:
    """The loss of a batch of pairs, each distinct text embedded once (few labels: pairs share most texts)."""
    unique, position = np.unique(batch[:, :2], return_inverse=True)
    position = torch.from_numpy(position.reshape(-1, 2))
    tokens, _ = encoder.tokenize([texts[i] for i in unique], max_tokens=config.train_tokens)
    emb = encoder.forward(tokens)
    labels = torch.as_tensor(batch[:, 2], dtype=torch.float32, device=emb.device)
    return loss_fn.compute_loss_from_embeddings([emb[position[:, 0].to(emb.device)], emb[position[:, 1].to(emb.device)]], labels)
