"""The scratch baseline: the same architecture from random init, trained by Lightning, saved and reloaded."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import ImageClassifier, zoo
from transferkit.finetune import TrainConfig


@pytest.mark.slow
def test_scratch_trains_saves_and_reloads_identically(small_train, tmp_path):
    clf = ImageClassifier(strategy="scratch", epochs=2, batch_size=8, verbose=False).fit(small_train)
    assert clf.head_ is None and clf.network_classes_ == 3
    assert clf.metrics_["epochs_run"] == 2 and clf.metrics_["n_val"] == 3
    # Random init, not the pretrained weights:
    pretrained = zoo.create_backbone(zoo.resolve("lite0"))
    assert not np.allclose(clf.network_.conv_stem.weight.detach().numpy(), pretrained.conv_stem.weight.detach().numpy())
    clf.save(tmp_path / "scratch")
    loaded = ImageClassifier.load(tmp_path / "scratch", verbose=False)
    files = sorted(small_train.rglob("*.png"))
    assert np.array_equal(loaded.predict_proba(files), clf.predict_proba(files))


@pytest.mark.parametrize("field, value, message", [("epochs", 0, "epochs must be at least 1"),
                                                   ("lr", 5.0, "lr must be between 0 and 1"),
                                                   ("precision", "fp8", "precision must be")])
def test_train_config_validates_each_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("total", [1, 2, 15, 400])
def test_learning_rate_schedule_warms_up_then_decays_for_any_length(total):
    from transferkit.finetune.module import warmup_cosine

    factors = [warmup_cosine(s, total) for s in range(total)]
    assert all(0 <= f <= 1 for f in factors) and max(factors) == 1.0
    if total > 2:
        assert factors[-1] < factors[len(factors) // 2] < 1.0
