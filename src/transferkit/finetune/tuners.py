"""Tuners: how a featurizer's own weights are adapted to a task, one kind per featurizer kind.

- :class:`NetworkTuner` trains an image backbone end to end with Lightning (probe-initialised head, top stages
  unfrozen one per epoch with discriminative learning rates, pretrained BatchNorm statistics kept, optional L2-SP),
  or from random initialisation (``from_scratch``).
- :class:`ContrastiveTuner` tunes a sentence encoder on pairs built from the labels (SetFit's recipe), then the
  head is fit on the tuned embeddings.

This module is the one schema of tuning options. Each option is one dataclass field made by :func:`option`: its
default, its constraints (scikit-learn's parameter-constraint vocabulary, checked by :meth:`Tuner.validated` with a
message that names the option and its limit) and its help text. A tuner is a scikit-learn parameter object, nested in
a strategy (``FineTune(tuner=NetworkTuner(unfreeze=2))``; ``strategy__tuner__unfreeze`` in a grid search), and the
CLI makes one flag per field (:func:`cli_options`). Adding an option is adding a field here. Importing this module
imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from ..errors import BadInputError

BN_STATISTICS = ("frozen", "train")
CONTRASTIVE_LOSSES = ("batch", "pairs")


def option(default, *constraints, help: str, flag: str | None = None, parse=None):
    """One tuning option: its default, the constraints its value must meet (any one of them: :func:`whole`,
    :func:`number`, :func:`one_of`, ``"boolean"``), its help text, and for the CLI another flag name or a parser of
    the flag's text."""
    return field(default=default, metadata={"constraints": list(constraints), "help": help, "flag": flag,
                                            "parse": parse})


def whole(low: int = 1) -> tuple:
    """A whole number from ``low`` up."""
    return ("interval", "integral", low, None, "left")


def number(low: float, high: float, closed: str) -> tuple:
    """A real number between ``low`` and ``high``; ``closed``: which ends are allowed (scikit-learn's ``Interval``)."""
    return ("interval", "real", low, high, closed)


def one_of(*values: str) -> tuple:
    return ("options", values)


def _sklearn_constraint(c):
    """A constraint above as scikit-learn's parameter validation spells it (imported only when a tuner is checked:
    scikit-learn costs a second at CLI start-up)."""
    from numbers import Integral, Real

    from sklearn.utils._param_validation import Interval, StrOptions

    if isinstance(c, tuple) and c[0] == "interval":
        return Interval(Integral if c[1] == "integral" else Real, c[2], c[3], closed=c[4])
    if isinstance(c, tuple) and c[0] == "options":
        return StrOptions(set(c[1]))
    return c


def _unfreeze(text: str) -> int | str:
    return text if text == "all" else int(text)


@dataclass(eq=False)
class Tuner:
    """A tuner's options are its dataclass fields. ``get_params`` / ``set_params`` are scikit-learn's parameter
    protocol (``clone``, nested ``strategy__tuner__epochs`` in a grid search), written here so that the CLI, which
    builds its flags from these fields, does not import scikit-learn to show ``--help``."""

    featurizer_kind: ClassVar[str]
    modality: ClassVar[str]
    strategies: ClassVar[tuple[str, ...]]  # the strategies that train with it

    def get_params(self, deep: bool = True) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def set_params(self, **params) -> Tuner:
        names = self.get_params()
        for name, value in params.items():
            if name not in names:
                raise BadInputError(f"{type(self).__name__} has no option {name!r}; its options are "
                                    f"{', '.join(names)}.")
            setattr(self, name, value)
        return self

    def validated(self) -> Self:
        """Every option checked against its constraints; the message names the option and its limit."""
        from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

        constraints = {f.name: [_sklearn_constraint(c) for c in f.metadata["constraints"]] for f in fields(self)}
        try:
            validate_parameter_constraints(constraints, self.get_params(), type(self).__name__)
        except InvalidParameterError as exc:
            raise BadInputError(str(exc)) from None
        return self

    def to_dict(self) -> dict:
        return self.get_params()


@dataclass(eq=False)
class NetworkTuner(Tuner):
    """Fine-tune an image network on the training split; early stopping and checkpoints on validation loss."""

    featurizer_kind: ClassVar[str] = "image-backbone"
    modality: ClassVar[str] = "image"
    strategies: ClassVar[tuple[str, ...]] = ("finetune", "scratch")

    epochs: int = option(12, whole(), help="Maximum epochs.")
    lr: float = option(3e-4, number(0, 1, "neither"),
                       help="Peak learning rate of the head; each stage below trains at layer_decay times the rate "
                            "above it.")
    unfreeze: int | str = option(3, whole(0), one_of("all"), parse=_unfreeze,
                                 help="How many top stages to retrain, or 'all'; the head always trains.")
    layer_decay: float = option(0.7, number(0, 1, "right"),
                                help="Each stage trains at this fraction of the learning rate of the stage above.")
    l2sp: float = option(0.0, number(0, 1e6, "left"),
                         help="Pull the weights towards their pretrained values (L2-SP); 0 is off, try 0.01.")
    bn_statistics: str = option("frozen", one_of(*BN_STATISTICS),
                                help="'frozen' keeps BatchNorm's pretrained statistics; 'train' re-estimates them in "
                                     "retrained stages.")
    weight_decay: float = option(0.05, number(0, 1, "left"), help="AdamW's weight decay.")
    patience: int = option(6, whole(), help="Epochs without a better validation loss before stopping.")
    label_smoothing: float = option(0.1, number(0, 1, "left"), help="Label smoothing of the loss.")
    grad_clip: float = option(0.0, number(0, 1e6, "left"), help="Clip the gradients' norm at this value; 0 is off.")
    batch_size: int = option(32, whole(), flag="--train-batch-size", help="Images per training batch.")
    augment: bool = option(True, "boolean",
                           help="Random crops, flips and colour jitter while training (off for data where a mirror "
                                "image means something else, such as digits).")
    devices: int = option(1, whole(), help="Devices (GPUs, or CPU processes) to train on with DDP.")
    num_nodes: int = option(1, whole(), help="Machines to train on with DDP (launch with torchrun or SLURM).")
    num_workers: int = option(1, whole(0), help="Processes that decode and augment images while training.")


# Training from random initialisation has nothing to keep: every layer trains at one higher rate, for longer.
SCRATCH = {"epochs": 30, "lr": 2e-3, "unfreeze": "all"}


@dataclass(eq=False)
class ContrastiveTuner(Tuner):
    """Tune a sentence encoder so that texts of a class embed close together (cosine target 1) and texts of other
    classes apart (0), then fit the head on the new embeddings.

    ``loss``: ``"batch"`` (default): class-balanced batches of ``batch_size`` texts, every pair within a batch
    learned at once, positives and negatives weighted equally: each text embedded once per batch gives
    ``batch_size - 1`` pairs. ``"pairs"``: SetFit's recipe, sampled pairs (one same-class, one other-class partner
    per text and round). ``rounds``: how many times each labeled text is embedded per epoch. ``refit``: after
    validating on the split, tune a second encoder on every label (twice the time). benchmarks/text_tuning.py
    compares the losses."""

    featurizer_kind: ClassVar[str] = "sentence-encoder"
    modality: ClassVar[str] = "text"
    strategies: ClassVar[tuple[str, ...]] = ("finetune",)  # scratch on texts is TF-IDF: nothing to tune

    loss: str = option("batch", one_of(*CONTRASTIVE_LOSSES),
                       help="'batch': every pair within class-balanced batches; 'pairs': SetFit's sampled pairs.")
    rounds: int = option(20, whole(), help="How many times each text is embedded in contrastive tuning.")
    epochs: int = option(1, whole(), help="Passes over the pairs.")
    lr: float = option(2e-5, number(0, 1, "neither"), help="Peak learning rate.")
    batch_size: int = option(16, whole(), flag="--train-batch-size", help="Texts per training batch.")
    train_tokens: int = option(128, whole(),
                               help="The window texts are truncated to while pairs are learned.")
    warmup: float = option(0.1, number(0, 1, "left"),
                           help="Share of the steps over which the learning rate warms up.")
    refit: bool = option(False, "boolean", help="After validating on the split, tune again on every label.")


TUNERS: dict[str, type[Tuner]] = {t.featurizer_kind: t for t in (NetworkTuner, ContrastiveTuner)}


def tuner_for(featurizer_kind: str, tuner: Tuner | None, *, what: str = "finetune",
              defaults: dict | None = None) -> NetworkTuner | ContrastiveTuner:
    """The checked tuner for a featurizer kind: ``tuner`` as given, or the kind's default with ``defaults`` (a
    strategy's own, such as :data:`SCRATCH`). A tuner of another kind is an error that names the right one."""
    if featurizer_kind not in TUNERS:
        tunable = ", ".join(sorted(TUNERS))
        raise BadInputError(f"{what} cannot tune a {featurizer_kind} featurizer (tunable: {tunable}). Use "
                            "strategy='features' with it, or pick a network or sentence encoder.")
    wanted = TUNERS[featurizer_kind]
    chosen = wanted(**(defaults or {})) if tuner is None else tuner
    if not isinstance(chosen, (NetworkTuner, ContrastiveTuner)) or not isinstance(chosen, wanted):
        raise BadInputError(f"{what} was given a {type(chosen).__name__}, which tunes {chosen.featurizer_kind}s; a "
                            f"{featurizer_kind} is tuned by {wanted.__name__}(...).")
    chosen.validated()
    return chosen


@dataclass(frozen=True)
class CliOption:
    """One tuning flag of the CLI, made from the tuners' fields of that name."""

    name: str
    flag: str
    type: type
    help: str
    parse: Any = None
    modalities: tuple[str, ...] = ()
    default: Any = None  # None: the tuner's own (the help says which)


def cli_options() -> list[CliOption]:
    """The CLI's tuning flags: one per option name, its help saying which data it applies to and each default."""
    by_name: dict[str, list[tuple[type[Tuner], Any]]] = {}
    for tuner in TUNERS.values():
        for f in fields(tuner):
            by_name.setdefault(f.name, []).append((tuner, f))
    out = []
    for name, owners in by_name.items():
        first = owners[0][1]
        applies = " and ".join(f"{t.modality}s ({', '.join(t.strategies)})" for t, _ in owners)
        defaults = "; ".join(f"{t.modality}s {f.default}" + (f", from scratch {SCRATCH[name]}" if name in SCRATCH and
                                                             "scratch" in t.strategies else "") for t, f in owners)
        help_text = " / ".join(dict.fromkeys(f.metadata["help"] for _, f in owners))
        out.append(CliOption(name, first.metadata["flag"] or "--" + name.replace("_", "-"),
                             bool if isinstance(first.default, bool) else
                             str if first.metadata["parse"] else type(first.default),
                             f"{applies[0].upper()}{applies[1:]}: {help_text} (default: {defaults})",
                             first.metadata["parse"], tuple(t.modality for t, _ in owners)))
    return out


def check_applies(given: dict[str, Any], modality: str, where: str,
                  others: dict[str, str] | None = None) -> None:
    """The one check of "this option applies only to images (texts)": ``given`` maps option names to the values a
    user set (unset ones None or False); tuning options' modalities come from the schema, ``others`` names the
    modality of the rest; ``where`` names the data in the message."""
    options = {o.name: (o.flag, o.modalities) for o in cli_options()}
    options |= {k: ("--" + k.replace("_", "-"), (m,)) for k, m in (others or {}).items()}
    foreign = [options[k][0] for k, v in given.items() if v not in (None, False) and k in options
               and modality not in options[k][1]]
    if foreign:
        other = "texts" if modality == "image" else "images"
        raise BadInputError(f"{', '.join(foreign)} appl{'ies' if len(foreign) == 1 else 'y'} to {other}, and {where} "
                            f"holds {modality}s.")
