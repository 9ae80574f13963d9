"""Shared fixtures: a per-session feature cache, the bundled example data, and one fitted model reused by tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "clipart"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test writes its feature cache under a temporary folder, never into the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSFERKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()


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
