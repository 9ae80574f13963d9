"""The Lightning module that trains an image classifier network, from scratch or fine-tuning a pretrained one.

For fine-tuning it takes a :class:`Plan`: parameter groups from input to head with one learning rate each
(discriminative rates), how many of the top groups train at each epoch (gradual unfreezing), and an optional L2-SP
pull towards the pretrained weights. BatchNorm layers keep their pretrained running statistics (eval mode): always
in frozen stages, and by default in the trained stages too (``Plan.bn_statistics``).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # lightning 2.6 against torch 2.14, harmless
    import lightning as L

from .groups import Plan

LOSSES = ("softmax", "sigmoid", "identity")  # one class (cross-entropy), several labels (binary), numbers (squared)


class ClassifierModule(L.LightningModule):
    """Training with AdamW and a warm-up + cosine schedule; logs loss (and accuracy for one class per item). The loss
    follows the head's ``output``: cross-entropy over classes (``softmax``), binary cross-entropy per label
    (``sigmoid``; ``class_weights`` then weighs each label's positives), squared error of standardised numbers
    (``identity``)."""

    def __init__(
        self,
        network: nn.Module,
        *,
        lr: float,
        weight_decay: float,
        epochs: int,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.1,
        plan: Plan | None = None,
        output: str = "softmax",
    ) -> None:
        super().__init__()
        if output not in LOSSES:
            raise ValueError(f"output must be one of {LOSSES}, got {output!r}")
        self.output = output
        self.network = network
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.label_smoothing = label_smoothing
        self.plan = plan
        self.register_buffer("class_weights", class_weights if class_weights is not None else None, persistent=False)
        if plan is not None and plan.l2sp > 0:
            params = dict(network.named_parameters())
            body = [n for g in plan.groups[:-1] for n in g]
            self._l2sp_names = body
            for i, name in enumerate(body):
                self.register_buffer(f"_sp{i}", params[name].detach().clone(), persistent=False)
        self._apply_freeze(0)  # before Lightning wraps the module (DDP registers only trainable parameters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    # -- freezing ----------------------------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._apply_freeze(self.current_epoch)

    def _apply_freeze(self, epoch: int) -> None:
        if self.plan is None:
            return
        params = dict(self.network.named_parameters())
        n_trainable = self.plan.trainable(epoch)
        for i, group in enumerate(self.plan.groups):
            train = i >= len(self.plan.groups) - n_trainable
            for name in group:
                params[name].requires_grad_(train)
        set_frozen_batchnorm_eval(self.network, every_layer=self.plan.bn_statistics == "frozen")

    # -- steps ---------------------------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x.contiguous(memory_format=torch.channels_last))
        loss = self._loss(logits.float(), y, training=True)
        if self.plan is not None and self.plan.l2sp > 0:
            params = dict(self.network.named_parameters())
            drift = sum(((params[n] - getattr(self, f"_sp{i}")) ** 2).sum()
                        for i, n in enumerate(self._l2sp_names) if params[n].requires_grad)
            loss = loss + 0.5 * self.plan.l2sp * drift
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(y), sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x.contiguous(memory_format=torch.channels_last))
        loss = self._loss(logits.float(), y, training=False)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(y), sync_dist=True)
        if self.output == "softmax":
            acc = (logits.argmax(1) == y).float().mean()
            self.log("val_acc", acc, prog_bar=True, batch_size=len(y), sync_dist=True)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, training: bool) -> torch.Tensor:
        if self.output == "sigmoid":
            return F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.class_weights if training else None)
        if self.output == "identity":
            return F.mse_loss(logits[:, 0], y.reshape(-1))
        if training:
            return F.cross_entropy(logits, y, weight=self.class_weights, label_smoothing=self.label_smoothing)
        return F.cross_entropy(logits, y)

    def configure_optimizers(self):
        params = dict(self.network.named_parameters())
        if self.plan is None:
            named = [(params, self.lr)]
        else:
            n_max = max(self.plan.trainable_at_epoch)
            top = self.plan.groups[len(self.plan.groups) - n_max:]
            named = [({n: params[n] for n in g}, lr) for g, lr in zip(top, self.plan.lrs[len(self.plan.lrs) - n_max:])]
        groups = []
        for named_params, lr in named:
            decay = [p for n, p in named_params.items() if p.ndim > 1]
            no_decay = [p for n, p in named_params.items() if p.ndim <= 1]
            wd = 0.0 if (self.plan is not None and self.plan.l2sp > 0) else self.weight_decay
            groups += [{"params": decay, "weight_decay": wd, "lr": lr}, {"params": no_decay, "weight_decay": 0.0, "lr": lr}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.lr)
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = cosine_schedule(optimizer, steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def set_frozen_batchnorm_eval(network: nn.Module, every_layer: bool = False) -> None:
    """BatchNorm layers whose parameters do not train keep their running statistics (eval mode).

    With ``every_layer`` all of them do, trainable ones included (their scale and shift still learn). On small data
    this keeps the features the probe-initialised head was fit on: batch statistics of a few augmented images
    differ from the pretrained ones, and the head would first have to recover from that shift.
    """
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if every_layer or not any(p.requires_grad for p in module.parameters(recurse=False)):
                module.eval()


WARMUP_FRACTION = 0.1


def cosine_schedule(optimizer, steps: int):
    """transformers' cosine decay to 0 after a linear warm-up over the first ``WARMUP_FRACTION`` of the steps; a run
    too short to warm up (under 5 steps) starts at the full rate, so that its first step trains."""
    from transformers import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=round(steps * WARMUP_FRACTION),
                                           num_training_steps=steps)
