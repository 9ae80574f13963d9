"""The strategies for text: how a classifier is made from an encoder and labeled texts.

- ``features``: the frozen encoder's embeddings (cached) under the logistic-regression head.
- ``finetune``: the encoder is first tuned contrastively on pairs built from the labels (SetFit's recipe, fewer
  pairs and a shorter training window so it runs in minutes on a CPU), then the head is fit on its embeddings.
  Validation tunes a copy on the training split; the final encoder is then tuned on every label (``refit``).
- ``scratch``: TF-IDF over words and word pairs with a linear model: the honest "no transfer" baseline.
- ``auto``: measures the frozen features (and TF-IDF when there are enough labels) on a validation split, then
  chooses, saying why.

Each returns a :class:`TextFitted` with one line saying what it did.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .data import stratified_split
from .data.texts import LabeledTexts
from .evaluate import validation_metrics as _val_metrics
from .features import TextFeatureExtractor
from .finetune.contrastive import ContrastiveConfig, train_contrastive
from .heads import LinearHead, class_weighting, fit_logistic_head
from .zoo import TextEncoderSpec, load_text_encoder

TEXT_STRATEGIES = ("features", "finetune", "scratch", "auto")
TFIDF_C_GRID = np.logspace(-1, 3, 9)
TFIDF_FEW_SHOT_C = 10.0  # one example in a class: nothing to cross-validate; TF-IDF rows need a weak penalty
AUTO_FINETUNE_MAX_PER_CLASS = 64  # contrastive tuning pays off in the few-shot range (README, text benchmark)
AUTO_SEPARATED = 0.97  # frozen features this accurate on validation leave little to win
AUTO_TFIDF_MIN_PER_CLASS = 50  # from here on, TF-IDF is measured too: with many labels it can beat frozen features
CONTRASTIVE_PAIRS_PER_SECOND_CPU = 6.0  # MiniLM, 128 tokens, bf16, 2 cores: a rough budget estimate


@dataclass(frozen=True)
class TextFitContext:
    encoder: TextEncoderSpec
    seed: int = 0
    val_fraction: float = 0.2
    precision: str = "auto"
    batch_size: int = 32
    cache_dir: str | None = None
    progress: bool = True
    long_text: str = "truncate"
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    time_budget: float | None = None
    refit: bool = True  # finetune: after validating, tune the final encoder on every label


@dataclass
class TextFitted:
    encoder: object | None  # a SentenceEncoder / WordVectorEncoder, or None for TF-IDF
    head: LinearHead
    vectorizer: object | None  # a fitted TfidfVectorizer for ``scratch``
    tuned: bool  # whether the encoder's weights changed (the bundle then stores them)
    metrics: dict
    reason: str = ""


@dataclass
class TextProbe:
    encoder: object
    y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    features: np.ndarray
    head: LinearHead
    val_accuracy: float
    val_macro_f1: float
    info: dict


def split(data: LabeledTexts, classes: list[str], ctx: TextFitContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.array([classes.index(c) for c in data.labels], dtype=int)
    train_idx, val_idx = stratified_split(data.labels, ctx.val_fraction, ctx.seed)
    return y, train_idx, val_idx


def text_probe(data: LabeledTexts, classes: list[str], ctx: TextFitContext, encoder=None) -> TextProbe:
    """Embed every text (cached), split, and fit the head on the training split."""
    encoder = encoder or load_text_encoder(ctx.encoder)
    extractor = TextFeatureExtractor(encoder, long_text=ctx.long_text, precision=ctx.precision,
                                     batch_size=ctx.batch_size, cache_dir=ctx.cache_dir, progress=ctx.progress)
    extraction = extractor.extract(list(data.texts))
    y, train_idx, val_idx = split(data, classes, ctx)
    x = extraction.features
    head = fit_logistic_head(x[train_idx], y[train_idx], seed=ctx.seed)
    val = _val_metrics(y[val_idx], head.predict_proba(x[val_idx]).argmax(1), len(classes))
    info = {"texts_per_second": extraction.texts_per_second, "n_features_computed": extraction.n_computed,
            "n_features_cached": extraction.n_cached, "n_long_texts": extraction.n_long,
            "long_text": ctx.long_text if encoder.kind != "word-vectors" else "all words",
            "max_tokens": encoder.max_tokens, "precision": extractor.precision}
    return TextProbe(encoder, y, train_idx, val_idx, x, head, val["val_accuracy"], val["val_macro_f1"], info)


def fit_text_features(data: LabeledTexts, classes: list[str], ctx: TextFitContext,
                      probe: TextProbe | None = None) -> TextFitted:
    probe = probe or text_probe(data, classes, ctx)
    head = fit_logistic_head(probe.features, probe.y, seed=ctx.seed, C=probe.head.C)
    metrics = {"val_accuracy": probe.val_accuracy, "val_macro_f1": probe.val_macro_f1,
               "n_train": int(len(probe.train_idx)), "n_val": int(len(probe.val_idx)), "head_C": probe.head.C,
               **probe.info}
    reason = (f"features: frozen {ctx.encoder.name} embeddings + logistic regression (C={probe.head.C:.3g}); "
              f"validation accuracy {probe.val_accuracy:.3f} on {len(probe.val_idx)} held-out texts"
              + _long_note(probe.info))
    return TextFitted(probe.encoder, head, None, False, metrics, reason)


def fit_text_finetune(data: LabeledTexts, classes: list[str], ctx: TextFitContext,
                      probe: TextProbe | None = None) -> TextFitted:
    """Contrastive tuning on pairs from the training split, then the head on the tuned embeddings."""
    base = probe.encoder if probe is not None else load_text_encoder(ctx.encoder)
    if base.kind == "word-vectors":
        from .errors import BadInputError

        raise BadInputError("finetune needs a transformer encoder; word vectors are fixed. Use --strategy features "
                            "with word vectors, or a sentence encoder such as all-MiniLM-L6-v2.")
    y, train_idx, val_idx = (probe.y, probe.train_idx, probe.val_idx) if probe else split(data, classes, ctx)
    encoder = copy.deepcopy(base)  # the probe's encoder stays intact (auto falls back on it)
    texts = list(data.texts)
    info = train_contrastive(encoder, [texts[i] for i in train_idx], y[train_idx], ctx.contrastive, seed=ctx.seed,
                             progress=ctx.progress)
    extractor = TextFeatureExtractor(encoder, long_text=ctx.long_text, precision=ctx.precision,
                                     batch_size=ctx.batch_size, use_cache=False, progress=ctx.progress)
    extraction = extractor.extract(texts, description="Embedding with the tuned encoder")
    x = extraction.features
    train_head = fit_logistic_head(x[train_idx], y[train_idx], seed=ctx.seed)
    val = _val_metrics(y[val_idx], train_head.predict_proba(x[val_idx]).argmax(1), len(classes))
    if ctx.refit:  # validated on the split; the final encoder learns from every label, as the heads do
        encoder = copy.deepcopy(base)
        info_all = train_contrastive(encoder, texts, y, ctx.contrastive, seed=ctx.seed, progress=ctx.progress)
        info = {**info, "refit_pairs": info_all["pairs"], "train_seconds": info["train_seconds"] +
                info_all["train_seconds"]}
        extractor = TextFeatureExtractor(encoder, long_text=ctx.long_text, precision=ctx.precision,
                                         batch_size=ctx.batch_size, use_cache=False, progress=ctx.progress)
        x = extractor.extract(texts, description="Embedding with the final encoder").features
    head = fit_logistic_head(x, y, seed=ctx.seed, C=train_head.C)
    metrics = {**val, "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "head_C": train_head.C,
               "n_long_texts": extraction.n_long, "long_text": ctx.long_text, "max_tokens": encoder.max_tokens,
               "precision": extractor.precision, "refit": ctx.refit, **info}
    if probe is not None:
        metrics["probe_val_accuracy"] = probe.val_accuracy
    tuned_on = (f"validated with {info['pairs']} pairs from {len(train_idx)} texts, then tuned on "
                f"{info['refit_pairs']} pairs from all {len(texts)}" if ctx.refit else
                f"tuned on {info['pairs']} contrastive pairs from {len(train_idx)} texts")
    reason = (f"finetune: {ctx.encoder.name} {tuned_on} ({info['train_seconds']:.0f} s), then logistic regression; "
              f"validation accuracy "
              f"{val['val_accuracy']:.3f}" + (f" (frozen features: {probe.val_accuracy:.3f})" if probe else ""))
    return TextFitted(encoder, head, None, True, metrics, reason)


def fit_text_scratch(data: LabeledTexts, classes: list[str], ctx: TextFitContext) -> TextFitted:
    """TF-IDF of words and word pairs + logistic regression, C chosen by cross-validation: no transfer at all."""
    y, train_idx, val_idx = split(data, classes, ctx)
    texts = np.array(data.texts, dtype=object)
    start = time.perf_counter()
    vectorizer, head = _tfidf_model(texts[train_idx], y[train_idx], ctx.seed)
    val = _val_metrics(y[val_idx], head.predict_proba(vectorizer.transform(texts[val_idx])).argmax(1), len(classes))
    vectorizer, head = _tfidf_model(texts, y, ctx.seed, C=head.C)
    metrics = {**val, "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "head_C": head.C,
               "vocabulary": len(vectorizer.vocabulary_), "train_seconds": time.perf_counter() - start}
    reason = (f"scratch: TF-IDF ({len(vectorizer.vocabulary_)} words and word pairs) + logistic regression "
              f"(C={head.C:.3g}), no pretrained knowledge; validation accuracy {val['val_accuracy']:.3f}")
    return TextFitted(None, head, vectorizer, False, metrics, reason)


def make_vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=100_000,
                           strip_accents="unicode", dtype=np.float64)


def _tfidf_model(texts, y: np.ndarray, seed: int, C: float | None = None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    vectorizer = make_vectorizer()
    x = vectorizer.fit_transform(list(texts))
    weighting = class_weighting(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        if C is None and np.bincount(y).min() < 2:
            C = TFIDF_FEW_SHOT_C
        if C is None:
            folds = max(2, int(min(5, np.bincount(y).min())))
            model = LogisticRegressionCV(
                Cs=TFIDF_C_GRID, l1_ratios=(0.0,), cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                scoring="neg_log_loss", class_weight=weighting, max_iter=1000, tol=1e-3,
                use_legacy_attributes=False, random_state=seed,
            ).fit(x, y)
            C = float(model.C_)
        else:
            model = LogisticRegression(C=C, class_weight=weighting, max_iter=1000, tol=1e-3,
                                       random_state=seed).fit(x, y)
    d = x.shape[1]
    head = LinearHead(np.zeros(d), np.ones(d), model.coef_.copy(), model.intercept_.copy(), C, weighting)
    return vectorizer, head


def fit_text_auto(data: LabeledTexts, classes: list[str], ctx: TextFitContext) -> TextFitted:
    """Measure the frozen features, then choose features, finetune or scratch, and say why."""
    probe = text_probe(data, classes, ctx)
    choice, why = choose_text_strategy(probe, ctx)
    if choice == "finetune":
        fitted = fit_text_finetune(data, classes, ctx, probe=probe)
        if fitted.metrics["val_accuracy"] < probe.val_accuracy:
            why += (f"; but the tuned encoder reached {fitted.metrics['val_accuracy']:.3f} on validation, below the "
                    f"frozen features' {probe.val_accuracy:.3f}, so those are kept")
            choice, fitted = "features", fit_text_features(data, classes, ctx, probe=probe)
    elif choice == "compare-tfidf":
        scratch = fit_text_scratch(data, classes, ctx)
        if scratch.metrics["val_accuracy"] > probe.val_accuracy:
            choice, fitted = "scratch", scratch
            why += (f": TF-IDF reached {scratch.metrics['val_accuracy']:.3f} on validation, above the frozen "
                    f"features' {probe.val_accuracy:.3f}; with this many labels the words themselves suffice")
        else:
            choice, fitted = "features", fit_text_features(data, classes, ctx, probe=probe)
            why += (f": the frozen features reached {probe.val_accuracy:.3f} on validation, TF-IDF "
                    f"{scratch.metrics['val_accuracy']:.3f}")
    else:
        fitted = fit_text_features(data, classes, ctx, probe=probe)
    fitted.metrics["auto_choice"] = choice
    fitted.metrics["auto_reason"] = why
    fitted.reason = f"auto chose {choice}: {why}. {fitted.reason}"
    return fitted


def choose_text_strategy(probe: TextProbe, ctx: TextFitContext) -> tuple[str, str]:
    per_class = int(np.bincount(probe.y).min())
    if probe.val_accuracy >= AUTO_SEPARATED:
        return "features", (f"the frozen {ctx.encoder.name} features already separate the classes (validation "
                            f"accuracy {probe.val_accuracy:.3f})")
    if per_class > AUTO_FINETUNE_MAX_PER_CLASS or probe.encoder.kind == "word-vectors":
        if per_class >= AUTO_TFIDF_MIN_PER_CLASS:
            return "compare-tfidf", f"with at least {per_class} labels per class, TF-IDF was measured too"
        return "features", "word vectors cannot be fine-tuned"
    pairs = 2 * ctx.contrastive.rounds * len(probe.y) * ctx.contrastive.epochs * (2 if ctx.refit else 1)
    estimate = pairs / CONTRASTIVE_PAIRS_PER_SECOND_CPU
    if ctx.time_budget is not None and estimate > ctx.time_budget:
        return "features", (f"contrastive tuning would take about {estimate:.0f} s, over the {ctx.time_budget:.0f} s "
                            "budget")
    return "finetune", (f"few labels ({per_class} in the smallest class) and frozen features at "
                        f"{probe.val_accuracy:.3f} on validation leave room for contrastive tuning")


TEXT_FITTERS = {"features": fit_text_features, "finetune": fit_text_finetune, "scratch": fit_text_scratch,
                "auto": fit_text_auto}


def _long_note(info: dict) -> str:
    n = info.get("n_long_texts") or 0
    if not n:
        return ""
    what = "truncated to" if info.get("long_text") == "truncate" else "split into windows of"
    return f"; {n} long text(s) {what} {info.get('max_tokens')} tokens"
