"""The twenty-line script a user would write instead of transferkit (the baseline of benchmarks/speed.py and of the
few-shot suite): packaged EfficientNet-Lite0 weights in timm, timm's eval transform, raw pooled features,
scikit-learn's LogisticRegression(max_iter=1000).

    python benchmarks/plain_probe.py TRAIN_FOLDER [TEST_FOLDER]
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from timm.data import create_transform, resolve_data_config

from transferkit.zoo import create_backbone, resolve  # only to load the packaged weights into timm's network

model = create_backbone(resolve("tf_efficientnet_lite0"), num_classes=None)
model.reset_classifier(0)
model.eval()
transform = create_transform(**resolve_data_config({}, model=model))


def folder(root):
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with torch.no_grad():
        x = np.concatenate([model(torch.stack([transform(Image.open(f).convert("RGB")) for f in files[i:i + 32]])).numpy()
                            for i in range(0, len(files), 32)])
    return x, [f.parent.name for f in files]


x, y = folder(sys.argv[1])
clf = LogisticRegression(max_iter=1000).fit(x, y)
if len(sys.argv) > 2:
    xt, yt = folder(sys.argv[2])
    print(f"test accuracy {np.mean(clf.predict(xt) == np.array(yt)):.3f}")
