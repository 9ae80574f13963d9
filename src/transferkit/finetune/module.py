"""The Lightning module that trains an image classifier network (from scratch now; fine-tuning builds on it)."""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F


class ClassifierModule(L.LightningModule):
    """Cross-entropy training with AdamW and a warm-up + cosine schedule; logs loss and accuracy."""

    def __init__(
        self,
        network: nn.Module,
        *,
        lr: float,
        weight_decay: float,
        epochs: int,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        self.network = network
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", class_weights if class_weights is not None else None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, weight=self.class_weights, label_smoothing=self.label_smoothing)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self._loss(self(x.contiguous(memory_format=torch.channels_last)), y)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(1) == y).float().mean()
        self.log("val_loss", loss, prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", acc, prog_bar=True, batch_size=len(y), sync_dist=True)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.network.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=self.lr
        )
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, total=steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def warmup_cosine(step: int, total: int, warmup_fraction: float = 0.1) -> float:
    """Learning-rate factor: linear warm-up over the first 10% of steps (at least one), then cosine decay to 0."""
    warmup = max(1, round(total * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
