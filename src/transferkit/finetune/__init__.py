"""Tuning featurizers: image networks with Lightning (fine-tuning and training from scratch), sentence encoders
with contrastive pairs. ``tuners`` holds their settings and imports no torch; the engines are imported on use."""

from .tuners import SCRATCH as SCRATCH
from .tuners import ContrastiveTuner as ContrastiveTuner
from .tuners import NetworkTuner as NetworkTuner
from .tuners import Tuner as Tuner
from .tuners import tuner_for as tuner_for
