"""Tuners: how a featurizer's own weights are adapted to a task, one kind per featurizer kind.

- :class:`NetworkTuner` trains an image backbone end to end with Lightning (probe-initialised head, top stages
  unfrozen one per epoch with discriminative learning rates, pretrained BatchNorm statistics kept, optional L2-SP),
  or from random initialisation (``from_scratch``).
- :class:`ContrastiveTuner` tunes a sentence encoder on pairs built from the labels (SetFit's recipe), then the
  head is fit on the tuned embeddings.

Each is a frozen dataclass: every default is written here once, checked in ``__post_init__`` with a message that
names the field and its limit, and read by the strategies and the CLI. Importing this module imports no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import BadInputError

BN_STATISTICS = ("frozen", "train")


def _at_least(obj, names: tuple[str, ...], low: int) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise BadInputError(f"{name} must be a whole number of at least {low}, got {value!r}.")


def _between(name: str, value, low: float, high: float, *, closed_low: bool = False) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
            (low <= value if closed_low else low < value) and value < high):
        raise BadInputError(f"{name} must be {'at least' if closed_low else 'above'} {low} and below {high}, "
                            f"got {value!r}.")


@dataclass(frozen=True)
class NetworkTuner:
    """Fine-tune an image network on the training split; early stopping and checkpoints on validation loss."""

    epochs: int = 12
    lr: float = 3e-4  # the head's peak rate; each stage below trains at layer_decay times the rate above it
    unfreeze: int | str = 3  # top stages retrained, or "all"; the head always trains
    layer_decay: float = 0.7
    l2sp: float = 0.0  # pull towards the pretrained weights (L2-SP); 0 is off
    bn_statistics: str = "frozen"  # "frozen": BatchNorm keeps its pretrained statistics; "train": re-estimated
    weight_decay: float = 0.05
    patience: int = 6
    label_smoothing: float = 0.1
    batch_size: int = 32
    augment: bool = True  # random crops, flips and colour jitter while training (off: the eval transform)
    devices: int = 1  # GPUs, or CPU processes, trained on with DDP
    num_nodes: int = 1
    num_workers: int = 1

    def __post_init__(self) -> None:
        _at_least(self, ("epochs", "patience", "batch_size", "devices", "num_nodes"), 1)
        _at_least(self, ("num_workers",), 0)
        _between("lr", self.lr, 0, 1)
        _between("layer_decay", self.layer_decay, 0, 1.000001)
        _between("l2sp", self.l2sp, 0, 1e6, closed_low=True)
        _between("weight_decay", self.weight_decay, 0, 1, closed_low=True)
        _between("label_smoothing", self.label_smoothing, 0, 1, closed_low=True)
        if not isinstance(self.augment, bool):
            raise BadInputError(f"augment must be True or False, got {self.augment!r}.")
        if self.bn_statistics not in BN_STATISTICS:
            raise BadInputError(f"bn_statistics must be one of {', '.join(BN_STATISTICS)}, got {self.bn_statistics!r}.")
        if self.unfreeze != "all":
            try:
                n = int(self.unfreeze)
            except (TypeError, ValueError):
                raise BadInputError(f"unfreeze must be a number of top stages or 'all', got {self.unfreeze!r}.") from None
            if n < 0:
                raise BadInputError(f"unfreeze must be at least 0 (0 trains only the new head), got {n}.")
            object.__setattr__(self, "unfreeze", n)

    def to_dict(self) -> dict:
        return asdict(self)


# Training from random initialisation has nothing to keep: every layer trains at one higher rate, for longer.
SCRATCH = {"epochs": 30, "lr": 2e-3, "unfreeze": "all"}


@dataclass(frozen=True)
class ContrastiveTuner:
    """Tune a sentence encoder so that texts of a class embed close together (cosine target 1) and texts of other
    classes apart (0), then fit the head on the new embeddings.

    ``loss``: ``"batch"`` (default): class-balanced batches of ``batch_size`` texts, every pair within a batch
    learned at once, positives and negatives weighted equally: each text embedded once per batch gives
    ``batch_size - 1`` pairs. ``"pairs"``: SetFit's recipe, sampled pairs (one same-class, one other-class partner
    per text and round). ``rounds``: how many times each labeled text is embedded per epoch (``"pairs"`` embeds a
    text shared by pairs of one batch once, so it costs less). Measured on held-out seeds of the few-shot suite's
    text tasks (``benchmarks/text_tuning.py``): ``"batch"`` 1.3 points above ``"pairs"`` at 20 rounds, in 1.5-1.8
    times its time.
    ``refit``: after validating on the split, tune a second encoder on every label (twice the time)."""

    loss: str = "batch"
    rounds: int = 20
    epochs: int = 1
    lr: float = 2e-5
    batch_size: int = 16
    train_tokens: int = 128  # training window: texts are truncated to it while pairs are learned
    warmup: float = 0.1
    refit: bool = False

    def __post_init__(self) -> None:
        _at_least(self, ("rounds", "epochs", "batch_size", "train_tokens"), 1)
        _between("lr", self.lr, 0, 1)
        _between("warmup", self.warmup, 0, 1, closed_low=True)
        if self.loss not in CONTRASTIVE_LOSSES:
            raise BadInputError(f"loss must be one of {', '.join(CONTRASTIVE_LOSSES)}, got {self.loss!r}.")
        if not isinstance(self.refit, bool):
            raise BadInputError(f"refit must be True or False, got {self.refit!r}.")

    def to_dict(self) -> dict:
        return asdict(self)


CONTRASTIVE_LOSSES = ("batch", "pairs")


TUNERS: dict[str, type] = {"image-backbone": NetworkTuner, "sentence-encoder": ContrastiveTuner}


def option_names(tuner: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(tuner))


def make_tuner(featurizer_kind: str, options: dict, *, what: str = "finetune"):
    """The tuner for a featurizer kind with the given options (``None`` values take the tuner's defaults). An option
    the tuner does not have is an error that says which options apply, never silently ignored."""
    if featurizer_kind not in TUNERS:
        tunable = ", ".join(sorted(TUNERS))
        raise BadInputError(f"{what} cannot tune a {featurizer_kind} featurizer (tunable: {tunable}). Use "
                            "strategy='features' with it, or pick a network or sentence encoder.")
    tuner = TUNERS[featurizer_kind]
    given = {k: v for k, v in options.items() if v is not None}
    foreign = sorted(set(given) - set(option_names(tuner)))
    if foreign:
        raise BadInputError(f"{', '.join(foreign)} do{'es' if len(foreign) == 1 else ''} not apply to {what} of a "
                            f"{featurizer_kind}; its options are {', '.join(option_names(tuner))}.")
    return tuner(**given)
