"""Train a network with Lightning: early stopping on validation, checkpoints, seeds, ``accelerator="auto"``, DDP.

Users configure a :class:`~transferkit.finetune.tuners.NetworkTuner`; the Trainer stays behind this function, and
Lightning is imported only when a network is trained.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .data import ImageFiles
from .groups import Plan
from .tuners import NetworkTuner


def _lightning_precision(precision: str) -> str:
    from ..runtime import default_device, resolve_precision

    return "bf16-mixed" if resolve_precision(precision, default_device().type) == "bf16" else "32-true"


def train_network(
    network: nn.Module,
    train: ImageFiles,
    val: ImageFiles,
    config: NetworkTuner,
    workdir: Path,
    *,
    seed: int,
    num_classes: int,
    precision: str = "auto",
    progress: bool = True,
    plan: Plan | None = None,
    resume: bool = False,
    output: str = "softmax",
) -> dict:
    """Train ``network`` in place; it ends with the weights of the best validation epoch. Returns metrics.

    Checkpoints go to ``workdir/checkpoints``; with ``resume`` a run killed mid-way continues from its last one.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # lightning 2.6 against torch 2.14, harmless
        import lightning as L
        from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

        from .module import ClassifierModule

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    L.seed_everything(seed, workers=True, verbose=False)
    weights = _loss_weights(train.targets.numpy(), num_classes, output)
    distributed = config.devices * config.num_nodes > 1
    if plan is not None and distributed:
        # DDP syncs the parameters that train when it wraps the model; stages cannot join later, so under DDP every
        # planned stage trains from the first epoch (no gradual unfreezing).
        plan = replace(plan, trainable_at_epoch=(max(plan.trainable_at_epoch),))
    network.train()  # the module's epoch hook then puts frozen BatchNorm layers back in eval mode
    module = ClassifierModule(
        network.to(memory_format=torch.channels_last),
        lr=config.lr,
        weight_decay=config.weight_decay,
        epochs=config.epochs,
        class_weights=weights,
        label_smoothing=config.label_smoothing,
        plan=plan,
        output=output,
    )
    batch_size = min(config.batch_size, len(train))
    # Under DDP on CPU each rank loads its own batches in-process: a forked loader worker of a rank that already runs
    # threads (gloo, progress bars) can deadlock, and was seen to hang a 2-process run once in CI.
    workers = 0 if distributed and not torch.cuda.is_available() else config.num_workers
    loader_args = {"num_workers": workers, "persistent_workers": workers > 0,
                   "worker_init_fn": _leave_interrupts_to_the_trainer if workers > 0 else None}
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=len(train) > batch_size, **loader_args)
    val_loader = DataLoader(val, batch_size=config.batch_size, shuffle=False, **loader_args)
    checkpoint = ModelCheckpoint(dirpath=workdir / "checkpoints", monitor="val_loss", mode="min", save_last=True)
    stopper = EarlyStopping(monitor="val_loss", mode="min", patience=config.patience)
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator="auto",
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=_lightning_precision(precision),
        gradient_clip_val=config.grad_clip or None,
        callbacks=[checkpoint, stopper, ctrl_c := _ctrl_c(L)],
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=False,
        default_root_dir=str(workdir),
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # our own checkpoints, on resume
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen BatchNorm, on purpose
        last = workdir / "checkpoints" / "last.ckpt"
        resumed_after = _check_checkpoint(last, module) if resume and last.is_file() else None
        try:
            with ctrl_c.watching():
                trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resumed_after is not None else None)
        except SystemExit:
            if trainer.interrupted:  # Lightning turns Ctrl-C into sys.exit(1); say it was an interruption
                import signal

                signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignored further Ctrl-C
                raise KeyboardInterrupt from None
            raise
    best = checkpoint.best_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    return {
        "epochs_run": int(trainer.current_epoch),
        "best_val_loss": float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        "stopped_early": bool(stopper.stopped_epoch),
        "resumed_after_epochs": resumed_after,
    }


def _loss_weights(targets: np.ndarray, num_classes: int, output: str) -> torch.Tensor | None:
    """Classes: balanced weights where the largest class is over 1.5 times the smallest; several labels: each label's
    positives weighed as much as its negatives, as the probe's heads balance them; numbers: none."""
    if output == "sigmoid":
        positives = targets.sum(0).clip(min=1)
        return torch.tensor((len(targets) - positives) / positives, dtype=torch.float32)
    if output != "softmax":
        return None
    counts = np.bincount(targets, minlength=num_classes)
    if counts.max() / max(counts.min(), 1) <= 1.5:
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.flatnonzero(counts)
    balanced = np.ones(num_classes)
    balanced[present] = compute_class_weight("balanced", classes=present, y=targets)
    return torch.tensor(balanced, dtype=torch.float32)


def _check_checkpoint(path: Path, module: nn.Module) -> int:
    """The epochs a checkpoint completed, once it is known to belong to this network (same tensors and shapes): a
    checkpoint of another fit (another class count, another backbone) is a clear error, and stays where it is."""
    from ..errors import BadInputError

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: torch raises several types here
        raise BadInputError(f"The checkpoint {path} cannot be read ({str(exc).splitlines()[0][:200]}). Pass --restart "
                            "to start afresh (it removes that folder).") from None
    saved = {k: tuple(v.shape) for k, v in checkpoint.get("state_dict", {}).items()}
    wanted = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    if saved != wanted:
        differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        raise BadInputError(f"The checkpoint in {path.parent} is from another fit: {len(differ)} tensors differ "
                            f"(e.g. {differ[0]}: {saved.get(differ[0])} there, {wanted.get(differ[0])} here; another "
                            "class count or backbone?). Pass --restart to start afresh, or --out another folder.")
    return int(checkpoint.get("epoch", -1)) + 1


def _ctrl_c(L):
    """A callback that makes Ctrl-C during training certain to stop it. Python drops a KeyboardInterrupt raised while
    a finaliser runs (a ``__del__``, a weakref callback: "Exception ignored in ..."), and training then ran on to its
    end; the handler installed here also records the key, and the next batch raises it again."""
    import contextlib
    import signal
    import threading

    class CtrlC(L.Callback):
        pressed = False

        def _check(self, *_) -> None:
            if self.pressed:
                raise KeyboardInterrupt

        on_train_batch_start = on_validation_batch_start = on_train_epoch_end = _check

        @contextlib.contextmanager
        def watching(self):
            if threading.current_thread() is not threading.main_thread() or \
                    signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
                yield  # signals reach the main thread only; a process that ignores Ctrl-C goes on ignoring it
                return

            def pressed(signum, frame):
                self.pressed = True
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGINT, pressed)
            try:
                yield
            finally:
                signal.signal(signal.SIGINT, previous)

    return CtrlC()


def _leave_interrupts_to_the_trainer(_worker: int) -> None:
    """A loader worker ignores Ctrl-C: the main process stops it and says how to resume, instead of every worker
    printing its own traceback (one was seen as a "Broken pipe" from torch's resource sharer)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
