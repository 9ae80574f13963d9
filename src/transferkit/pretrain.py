"""The first approach of transfer learning: train a network on a related task with plenty of data, then reuse it.

``pretrain`` trains (from scratch, or by fine-tuning every layer of a zoo backbone) and registers the result in the
local zoo, where every strategy of every later fit can use it by name.
"""

from __future__ import annotations

from pathlib import Path

from .zoo import DEFAULTS


def pretrain(data, name: str, *, base: str = DEFAULTS["image"], from_scratch: bool = False, epochs: int | None = None,
             lr: float | None = None, batch_size: int = 32, input_size: int | None = None, seed: int = 0,
             overwrite: bool = False, verbose: bool = True):
    """Train a network on a data-rich source task and register it in the local zoo as ``name``.

    ``from_scratch`` trains ``base``'s architecture from random weights; otherwise every layer of the pretrained
    ``base`` is fine-tuned. Afterwards ``ImageClassifier(backbone=name)`` (or ``--model NAME``) reuses it with every
    strategy. Returns the fitted source classifier and the zoo entry's folder.
    """
    from .estimators import ImageClassifier
    from .finetune.tuners import SCRATCH, NetworkTuner
    from .strategies import FineTune, Scratch
    from .zoo import register_local_model

    given = {k: v for k, v in {"epochs": epochs, "lr": lr}.items() if v is not None}
    tuner = NetworkTuner(**{**(SCRATCH if from_scratch else {"unfreeze": "all"}), **given, "batch_size": batch_size})
    strategy = Scratch(tuner=tuner) if from_scratch else FineTune(tuner=tuner)
    clf = ImageClassifier(backbone=base, strategy=strategy, batch_size=batch_size, input_size=input_size, seed=seed,
                          verbose=verbose).fit(data)
    backbone = clf.featurizer_
    r = clf.report_
    trained_on = {"data": str(data), "classes": clf.classes_.tolist(), "n_classes": len(clf.classes_),
                  "n_images": (r.n_train or 0) + (r.n_val or 0),
                  "how": "from scratch" if from_scratch else f"fine-tuned from {backbone.spec.name}",
                  "val_accuracy": r.val_accuracy, "epochs_run": r.epochs_run}
    folder = register_local_model(name, backbone.network, backbone.spec, backbone.preprocessing, trained_on,
                                  overwrite=overwrite)
    return clf, Path(folder)
