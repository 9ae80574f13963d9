"""Is a low fastai score fastai's training or the harness? The body ``fewshot.run_fastai`` builds, with the packaged
Lite0 weights and the same fastai data pipeline, frozen, under scikit-learn's ``LogisticRegression``: if this scores
like the plain probe, the weights and preprocessing are right and the rest is what ``fine_tune`` does.

    python benchmarks/fastai_check.py --task mnist --k 20 --seed 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import suite_data  # noqa: E402
from fewshot import machine  # noqa: E402


def main() -> None:
    import torch
    from fastai.vision.all import ImageDataLoaders, Normalize, Resize, set_seed, vision_learner
    from sklearn.linear_model import LogisticRegression

    from transferkit import zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    task = suite_data.load_task(args.task)
    items, labels = task.sample(args.k, args.seed)
    spec = zoo.resolve("tf_efficientnet_lite0")
    pre = spec.preprocessing
    set_seed(args.seed, reproducible=True)
    dls = ImageDataLoaders.from_lists("/", [str(p) for p in items], list(labels), valid_pct=0.2, seed=args.seed,
                                      bs=32, item_tfms=Resize(pre.input_size),
                                      batch_tfms=[Normalize.from_stats(pre.mean, pre.std)], num_workers=0)
    learn = vision_learner(dls, spec.arch, pretrained=False)
    result = learn.model[0].model.load_state_dict(zoo.create_backbone(spec, num_classes=0).state_dict(), strict=False)
    assert not result.unexpected_keys and all("classifier" in k for k in result.missing_keys), result
    body = learn.model[0].eval()

    def features(paths) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([body(xb).mean((2, 3)).numpy() for (xb,) in learn.dls.test_dl([str(p) for p in paths])])

    head = LogisticRegression(max_iter=1000).fit(features(items), list(labels))
    accuracy = float((head.predict(features(task.test_items)) == np.array(task.test_labels)).mean())
    where = machine()
    print(f"{args.task} k={args.k} seed={args.seed}: fastai's Lite0 body, frozen, + LogisticRegression: test accuracy "
          f"{accuracy:.3f} ({len(task.test_items)} test items; {where['cpu']}, {where['threads']} threads)")


if __name__ == "__main__":
    main()
