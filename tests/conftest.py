"""Shared fixtures: an isolated cache and local zoo (nothing under the user's home), the bundled example data, tiny
backbones for the contract suite (a small timm network in the local zoo, a small sentence encoder folder), and one
fitted model reused by tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "clipart"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test writes its feature cache and local zoo under a temporary folder, never into the user's home, and
    never reaches the network."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSFERKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("TRANSFERKIT_MODELS", str(tmp_path_factory.mktemp("zoo")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _float32_exports():
    """In this process, tests run as on a CPU without integer dot products (``runtime.native_int8``), whatever the
    machine: the exports ``predict`` caches hold float32 graphs only, and no test pays for the zoo backbones' int8
    graphs unless it asks for them (the int8 tests set ``native_int8`` themselves)."""
    from transferkit import runtime

    mp = pytest.MonkeyPatch()
    mp.setattr(runtime, "native_int8", lambda: False)
    yield
    mp.undo()


TINY_IMAGE = "tiny-effnet"


@pytest.fixture(scope="session")
def tiny_backbone(_isolated_cache) -> str:
    """A small timm network (``test_efficientnet``, random weights, 64 px) registered in the (temporary) local zoo:
    every strategy runs on it in seconds. It says nothing about accuracy; the contract suite needs none."""
    import torch

    from transferkit.preprocessing import Preprocessing
    from transferkit.zoo import ModelSpec, register_local_model
    from transferkit.zoo._images import architecture

    spec = ModelSpec(name="test_efficientnet", modality="image", kind="timm", source="none", arch="test_efficientnet",
                     classifier="classifier")
    torch.manual_seed(0)
    network = architecture(spec, 0)
    pre = Preprocessing(input_size=64, mean=(0.5,) * 3, std=(0.5,) * 3)
    register_local_model(TINY_IMAGE, network, spec, pre, {"data": "random init, for tests"}, overwrite=True)
    return TINY_IMAGE


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A small sentence encoder folder (2 layers, 32 dimensions, random weights, MiniLM's tokenizer)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel

    try:
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models

    from transferkit.zoo import resolve
    from transferkit.zoo._text import encoder_folder

    folder = tmp_path_factory.mktemp("encoders") / "tiny-encoder"
    transformer = models.Transformer(str(encoder_folder(resolve("minilm", "text"))), max_seq_length=64)
    config = BertConfig(vocab_size=transformer.auto_model.config.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    name = next(n for n, _ in transformer.named_children())
    setattr(transformer, name, BertModel(config))
    SentenceTransformer(modules=[transformer, models.Pooling(32, "mean"), models.Normalize()]).save(str(folder))
    return str(folder)


@pytest.fixture(scope="session")
def example_train() -> Path:
    return EXAMPLE / "train"


@pytest.fixture(scope="session")
def example_test() -> Path:
    return EXAMPLE / "test"


@pytest.fixture(scope="session")
def small_train(tmp_path_factory, example_train) -> Path:
    """Three classes x 6 images copied from the bundled example: enough to fit, quick to extract."""
    root = tmp_path_factory.mktemp("small")
    for cls in ("birds", "fruit", "beverages"):
        (root / cls).mkdir()
        for src in sorted((example_train / cls).glob("*.png"))[:6]:
            shutil.copy(src, root / cls / src.name)
    return root


@pytest.fixture(scope="session")
def tiny_image_model(small_train, tiny_backbone, tmp_path_factory) -> Path:
    """A saved features model of the tiny backbone on ``small_train`` (3 classes x 6 images), for tests that only read
    it: predicting, exporting, serving, pushing."""
    from transferkit import Features, ImageClassifier

    folder = tmp_path_factory.mktemp("tiny-model") / "model"
    ImageClassifier(tiny_backbone, Features(), verbose=False).fit(small_train).save(folder)
    return folder


@pytest.fixture(scope="session")
def fitted_features(example_train):
    from transferkit import ImageClassifier

    return ImageClassifier(strategy="features", verbose=False).fit(example_train)


TOPICS = {
    "sport": [
        "The striker scored twice in the second half and the home side won the league match.",
        "She won the tennis final in three sets after saving two match points.",
        "The marathon runner broke the course record by forty seconds.",
        "Our goalkeeper saved a penalty in the last minute of the cup tie.",
        "The cricket team declared at lunch and bowled the visitors out before tea.",
        "He swam the fastest butterfly leg of the relay at the championships.",
        "The coach dropped two defenders after the heavy defeat on Saturday.",
        "Fans celebrated in the stadium when the basketball team clinched the title.",
    ],
    "food": [
        "Knead the dough for ten minutes, then let it rise until it doubles in size.",
        "This soup tastes better with roasted garlic, fresh thyme and a pinch of salt.",
        "Whisk the eggs with sugar before folding in the flour for a light sponge cake.",
        "The restaurant serves grilled fish with lemon butter and crisp potatoes.",
        "Simmer the tomato sauce slowly and add basil just before serving the pasta.",
        "Marinate the chicken overnight in yogurt, cumin and chilli for a tender curry.",
        "Toast the spices in a dry pan to bring out their flavour before grinding them.",
        "A spoonful of honey balances the sharp vinegar in this salad dressing.",
    ],
    "weather": [
        "Heavy rain and strong winds are expected along the coast tonight.",
        "Tomorrow will be sunny with highs of twenty five degrees in the afternoon.",
        "Snow is forecast over the hills, with icy roads likely by the morning.",
        "A thunderstorm warning is in place as humid air moves in from the south.",
        "Fog will clear by midday, leaving a dry and mild weekend for most areas.",
        "Temperatures will drop below freezing overnight under clear skies.",
        "The hurricane strengthened over warm water and is moving towards the islands.",
        "Light drizzle in the morning will give way to bright spells later.",
    ],
}


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory) -> Path:
    """24 short sentences in three topics, written for the tests, as a CSV with text and label columns."""
    import csv

    path = tmp_path_factory.mktemp("texts") / "train.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for label, sentences in TOPICS.items():
            for sentence in sentences:
                writer.writerow([sentence, label])
    return path


@pytest.fixture(scope="session")
def text_features_model(text_csv):
    from transferkit import TextClassifier

    return TextClassifier(strategy="features", verbose=False).fit(text_csv)


def reseal(folder: Path) -> Path:
    """Rewrite a model folder's manifest.json over its files as they are now: what someone who edits a folder on
    purpose does. The manifest then passes, and whatever stands behind it (the allow-list, the class checks) is what
    a test meets. Written here with hashlib, apart from transferkit's own code."""
    import hashlib
    import json

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    names = {"transferkit.json", "report.json", *(p.relative_to(folder).as_posix() for p in folder.glob("*/*")
                                                  if p.name in ("config.json", "model.safetensors"))}
    manifest["sha256"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in sorted(names)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture()
def pool_folder(tmp_path, small_train):
    """Shifted copies (inverted colours) of the small training set's images, flat, plus a copy of a labeled image
    and an unreadable file."""
    folder = tmp_path / "pool"
    folder.mkdir()
    for path in sorted(small_train.rglob("*.png")):
        image = Image.open(path).convert("RGB")
        Image.eval(image, lambda v: 255 - v).save(folder / f"{path.parent.name}-{path.name}")
    shutil.copy(next(iter(sorted(small_train.rglob("*.png")))), folder / "a-copy.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder
