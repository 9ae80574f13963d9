"""Text encoders: the packaged MiniLM, hub names (offline: fast, clear error), local folders, and word vectors in
GloVe, word2vec (text and binary) and fastText formats, turned into SIF-weighted sentence features."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

from transferkit import UnknownModelError, WeightsUnavailableError
from transferkit.features import extract
from transferkit.featurizers import SentenceEncoder, WordVectorAverage, text_featurizer
from transferkit.zoo import read_word_vectors, resolve


def resolve_text_encoder(name):
    return resolve(name, "text")


def load_text_encoder(spec, **options):
    return text_featurizer(spec, **options)

WORDS = ["the", "cat", "dog", "sat", "ran", "mat"]
VECTORS = np.arange(len(WORDS) * 4, dtype=np.float32).reshape(len(WORDS), 4) / 10


def _glove(path):
    path.write_text("".join(f"{w} {' '.join(f'{v:.1f}' for v in row)}\n" for w, row in zip(WORDS, VECTORS)))
    return path


def _w2v_text(path):
    path.write_text(f"{len(WORDS)} 4\n" + "".join(f"{w} {' '.join(f'{v:.1f}' for v in row)} \n"
                                                  for w, row in zip(WORDS, VECTORS)))
    return path


def _w2v_binary(path):
    with open(path, "wb") as fh:
        fh.write(f"{len(WORDS)} 4\n".encode())
        for w, row in zip(WORDS, VECTORS):
            fh.write(w.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
    return path


@pytest.mark.parametrize("make,name", [(_glove, "glove.txt"), (_w2v_text, "vectors.vec"), (_w2v_binary, "w2v.bin")])
def test_word_vector_formats_read_the_same_vectors(tmp_path, make, name):
    vectors = read_word_vectors(make(tmp_path / name))
    assert vectors.words == WORDS
    np.testing.assert_allclose(vectors.vectors, VECTORS, atol=1e-6)
    assert vectors.lowercase


def test_gzipped_vectors_and_a_malformed_line(tmp_path):
    raw = _glove(tmp_path / "g.txt").read_bytes()
    (tmp_path / "g.txt.gz").write_bytes(gzip.compress(raw))
    assert read_word_vectors(tmp_path / "g.txt.gz").words == WORDS
    bad = tmp_path / "bad.txt"
    bad.write_text("cat 0.1 0.2\ndog 0.3\n")
    with pytest.raises(Exception, match=r"bad.txt, line 2: expected a word and 2 numbers"):
        read_word_vectors(bad)


def test_sif_average_weights_rare_words_more_and_skips_unknown_words(tmp_path):
    spec = resolve_text_encoder(str(_glove(tmp_path / "glove.txt")))
    assert spec.source == "file" and spec.kind == "word-vectors"
    encoder = load_text_encoder(spec)
    assert isinstance(encoder, WordVectorAverage)
    out = encoder.transform(["The CAT sat", "zebra", "cat"])
    sif = encoder.vectors.sif
    expected = (sif[0] * VECTORS[0] + sif[1] * VECTORS[1] + sif[3] * VECTORS[3]) / (sif[0] + sif[1] + sif[3])
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)
    assert sif[0] < sif[1] < sif[3]  # "the" is the most frequent word (first in the file): it counts least
    np.testing.assert_array_equal(out[1], 0)  # no known word
    np.testing.assert_allclose(out[2], VECTORS[1], rtol=1e-6)


def test_packaged_minilm_gives_unit_384_dim_embeddings_with_similar_sentences_closer():
    encoder = load_text_encoder(resolve_text_encoder("minilm"), precision="fp32")
    assert isinstance(encoder, SentenceEncoder)
    x = extract(encoder, ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."],
                use_cache=False).features
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2


def test_loading_an_encoder_draws_no_bar_of_the_libraries_and_leaves_their_settings_as_they_were(capfd):
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    load_text_encoder(resolve_text_encoder("minilm"), precision="fp32")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()


def test_bf16_embeddings_match_fp32():
    spec = resolve_text_encoder("all-MiniLM-L6-v2")
    texts = ["Heavy rain is expected tonight.", "The striker scored twice.", "Knead the dough for ten minutes."]
    a = extract(load_text_encoder(spec, precision="fp32"), texts, use_cache=False).features
    b = extract(load_text_encoder(spec, precision="bf16"), texts, use_cache=False).features
    assert (a * b).sum(1).min() > 0.99


def test_long_texts_are_truncated_or_chunked_and_counted():
    spec = resolve_text_encoder("all-MiniLM-L6-v2")
    long = " ".join(["The weather today is sunny."] * 5 + ["Stocks and bonds fell in early trading."] * 80)
    short = "Sunny weather today."
    truncated = extract(load_text_encoder(spec), [long, short], use_cache=False)
    chunked = extract(load_text_encoder(spec, long_text="chunk"), [long, short], use_cache=False)
    assert truncated.n_overlong == 1 and chunked.n_overlong == 1
    np.testing.assert_allclose(truncated.features[1], chunked.features[1], atol=1e-3)  # short: the same
    assert truncated.features[0] @ chunked.features[0] < 0.999  # long: the rest of the text changes the vector


def test_a_local_model_folder_loads_like_the_package(tmp_path):
    import shutil

    from transferkit.zoo._text import encoder_folder

    folder = tmp_path / "my-encoder"
    shutil.copytree(encoder_folder(resolve_text_encoder("all-MiniLM-L6-v2")), folder)
    spec = resolve_text_encoder(str(folder))
    assert spec.source == "local"
    assert load_text_encoder(spec).dim == 384


def test_hub_name_offline_fails_fast_and_says_to_pass_a_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = resolve_text_encoder("sentence-transformers/all-mpnet-base-v2")
    assert spec.source == "hub"
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match=r"cannot be reached.*--model PATH/TO/FOLDER"):
        load_text_encoder(spec)
    assert time.perf_counter() - start < 5


def test_hub_name_in_the_local_cache_loads_without_network(tmp_path, monkeypatch):
    """A model already in the Hugging Face cache (here a copy of the packaged one) loads by its hub name."""
    import shutil

    from transferkit.zoo._text import encoder_folder

    hub = tmp_path / "hub"
    snapshot = hub / "models--acme--tiny-encoder" / "snapshots" / ("0" * 40)
    shutil.copytree(encoder_folder(resolve_text_encoder("all-MiniLM-L6-v2")), snapshot)
    (hub / "models--acme--tiny-encoder" / "refs").mkdir()
    (hub / "models--acme--tiny-encoder" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    assert load_text_encoder(resolve_text_encoder("acme/tiny-encoder")).dim == 384


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownModelError, match="Did you mean all-MiniLM-L6-v2"):
        resolve_text_encoder("all-MiniLM-L6-v3")
    with pytest.raises(UnknownModelError, match="does not exist"):
        resolve_text_encoder("./missing/vectors.txt")
