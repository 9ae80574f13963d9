"""ONNX export: one graph from input to class probabilities that ONNX Runtime runs like the model (checked before the
export is written), the preparation of images without PyTorch exactly as timm's eval transform, texts through the
saved tokenizer, int8 quantisation with its measured accuracy change, and predict / evaluate on the export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from transferkit import Features, Scratch, TextClassifier
from transferkit.cli import app
from transferkit.errors import BadInputError, BundleError
from transferkit.export import copy_export, export_onnx
from transferkit.loading import load_predictor
from transferkit.onnx_runtime import MANIFEST, OnnxPredictor, prepare_image
from transferkit.predictor import Predictor

runner = CliRunner()


@pytest.fixture(scope="module")
def image_model(tiny_image_model):
    return tiny_image_model


@pytest.mark.parametrize("pre", [
    {"input_size": 224, "crop_pct": 0.875, "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3},
    {"input_size": 224, "crop_pct": 224 / 256, "interpolation": "bilinear", "mean": (0.485, 0.456, 0.406),
     "std": (0.229, 0.224, 0.225)},
])
def test_images_are_prepared_without_torch_exactly_as_timms_eval_transform(pre, example_train):
    from transferkit.preprocessing import Preprocessing

    transform = Preprocessing(**pre).eval_transform()
    files = sorted(example_train.rglob("*.png"))[:6]
    wide = Image.new("RGB", (300, 90), (10, 200, 30))
    for image in [Image.open(f).convert("RGB") for f in files] + [wide, wide.rotate(90, expand=True)]:
        np.testing.assert_allclose(prepare_image(image, pre), transform(image).numpy(), atol=1e-5)


def test_a_grayscale_image_is_prepared_as_its_rgb_copy_to_the_bit(example_train):
    pre = {"input_size": 224, "crop_pct": 0.875, "interpolation": "bilinear", "mean": (0.485, 0.456, 0.406),
           "std": (0.229, 0.224, 0.225)}
    gray = Image.open(sorted(example_train.rglob("*.png"))[0]).convert("L").resize((60, 45))
    one, three = prepare_image(gray, pre), prepare_image(gray.convert("RGB"), pre)
    assert one.dtype == three.dtype == np.float32 and np.array_equal(one, three)
    assert not np.array_equal(one[0], one[1])  # each channel still normalised with its own mean and std


@pytest.fixture(scope="module")
def exported(image_model, small_train, tmp_path_factory):
    """One export of the image model, checked on the small training set: the tests below read it, or a copy."""
    folder = tmp_path_factory.mktemp("export") / "onnx"
    export_onnx(Predictor.load(image_model, precision="fp32"), folder, check_items=sorted(small_train.rglob("*.png")))
    return folder


def test_an_export_answers_a_grayscale_image_as_its_rgb_copy_from_a_file_or_memory(exported, small_train, tmp_path):
    gray = Image.open(sorted(small_train.rglob("*.png"))[0]).convert("L")
    gray.save(tmp_path / "gray.png")
    gray.convert("RGB").save(tmp_path / "rgb.png")
    model = OnnxPredictor.load(exported)
    proba, ok, _ = model.predict_items([tmp_path / "gray.png", gray, np.asarray(gray), tmp_path / "rgb.png",
                                        gray.convert("RGB")])
    assert ok.all()
    np.testing.assert_array_equal(proba[:3], proba[3:4].repeat(3, 0))
    np.testing.assert_array_equal(proba[4], proba[3])


def test_an_exported_image_model_predicts_like_the_model_and_records_its_check(exported, image_model, small_train):
    predictor = Predictor.load(image_model, precision="fp32")
    files = sorted(small_train.rglob("*.png"))
    saved = json.loads((exported / MANIFEST).read_text())
    assert saved["check"]["inputs"] == len(files)
    assert saved["check"]["argmax_agreement"] == 1.0 and saved["check"]["max_abs_difference"] <= 1e-4
    runtime = OnnxPredictor.load(exported)
    np.testing.assert_allclose(runtime.predict_proba(files), predictor.predict_proba(files), atol=1e-4)
    assert saved["classes"] == ["beverages", "birds", "fruit"] and saved["inputs"][0]["preprocessing"]["input_size"] == 64
    # the export reads its accuracy on unlabeled items as the model does: it keeps the fit's estimate and temperature
    assert runtime.report.temperature == predictor.report.temperature is not None
    assert runtime.report.estimate == predictor.report.estimate is not None


@pytest.mark.parametrize("threads", ["1", "2"])  # one: read while the one before runs; two: a batch per core
def test_an_export_reads_each_batch_while_the_one_before_runs_and_keeps_every_answer_in_its_place(
        exported, small_train, tmp_path, monkeypatch, threads):
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    files = sorted(small_train.rglob("*.png"))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    items = [files[0], tmp_path / "broken.png", *files[1:4], tmp_path / "missing.png", files[4]]
    one_by_one = OnnxPredictor.load(exported)
    expected = np.vstack([one_by_one.predict_proba([f]) for f in files[:5]])
    batched = OnnxPredictor.load(exported, batch_size=2)  # four batches
    proba, ok, skipped = batched.predict_items(items)
    assert (batched._one_thread_session is not None) == (threads == "2")  # batches side by side, on their own session
    assert ok.tolist() == [True, False, True, True, True, False, True]
    assert [str(item) for item, _ in skipped] == [str(tmp_path / "broken.png"), str(tmp_path / "missing.png")]
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    mirrored = np.vstack([OnnxPredictor.load(exported, tta=True).predict_proba([f]) for f in files[:5]])
    proba, ok, _ = OnnxPredictor.load(exported, batch_size=2, tta=True).predict_items(items)
    assert ok.sum() == 5 and not np.allclose(mirrored, expected, atol=1e-3)  # the mirror images were read too
    np.testing.assert_allclose(proba, mirrored, atol=1e-5)


def test_a_loaded_export_whose_folder_was_removed_still_runs_many_batches(exported, small_train, tmp_path,
                                                                          monkeypatch):
    import shutil

    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # batches side by side would open a second session of the graph
    files = sorted(small_train.rglob("*.png"))[:6]
    copy = tmp_path / "export"
    shutil.copytree(exported, copy)
    loaded = OnnxPredictor.load(copy, batch_size=1)  # six batches: two a core
    expected = loaded.predict_proba(files[:1])
    shutil.rmtree(copy)  # pruned from the cache by another process while this one runs it
    proba = loaded.predict_proba(files)
    assert loaded._one_thread_session is None and len(proba) == 6  # the one session ran every batch
    np.testing.assert_allclose(proba[:1], expected, atol=1e-6)


def _exported_inputs(monkeypatch) -> list[list[str]]:
    """The input names of every graph ``torch.onnx`` exports from now on."""
    import torch

    calls: list[list[str]] = []
    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **kw: calls.append(kw["input_names"]) or real(*a, **kw))
    return calls


def test_a_later_export_on_the_same_backbone_reuses_its_cached_graph_and_exports_only_the_head(
        exported, image_model, small_train, tmp_path, monkeypatch):
    from transferkit.cache import default_cache_dir
    from transferkit.onnx_features import OPSET

    predictor = Predictor.load(image_model, precision="fp32")
    cached = sorted((default_cache_dir() / "onnx-features").glob("*.onnx"))
    # the backbone's graph, written by the first export
    assert default_cache_dir() / "onnx-features" / f"{predictor.featurizer.network_digest()}-opset{OPSET}.onnx" in cached
    calls = _exported_inputs(monkeypatch)
    export_onnx(predictor, tmp_path / "again", check_items=sorted(small_train.rglob("*.png")))
    assert calls == [["features_0"]]
    assert sorted((default_cache_dir() / "onnx-features").glob("*.onnx")) == cached
    assert (tmp_path / "again" / "model.onnx").read_bytes() == (exported / "model.onnx").read_bytes()


def test_a_head_is_traced_where_the_trace_answers_as_the_head_on_other_sizes_else_made_by_torch_export(
        exported, image_model, small_train, tmp_path, monkeypatch):
    import torch

    from transferkit import export

    predictor = Predictor.load(image_model, precision="fp32")
    items = sorted(small_train.rglob("*.png"))
    exporters = []
    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **kw: exporters.append(kw["dynamo"]) or real(*a, **kw))
    export_onnx(predictor, tmp_path / "traced", check_items=items)
    assert exporters == [False]  # the backbone's graph from the cache, the head traced (TorchScript)
    exporters.clear()
    monkeypatch.setattr(export, "_answers_as", lambda *args: False)  # as if the trace kept its example's size
    manifest = export_onnx(predictor, tmp_path / "exported", check_items=items)
    assert exporters == [False, True]  # then torch.export makes it
    assert manifest["check"]["argmax_agreement"] == 1.0 and manifest["check"]["max_abs_difference"] < 1e-4


def test_a_trace_that_kept_its_examples_size_is_told_apart(tmp_path):
    import warnings

    import torch
    from torch import nn

    from transferkit.export import _answers_as

    class SizedByItsExample(nn.Module):  # a size turned into a Python number: a trace keeps the example's
        def forward(self, *xs):
            return xs[0] * float(xs[0].shape[0])

    module = SizedByItsExample().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the trace warns that it keeps the number
        torch.onnx.export(module, (torch.ones(2, 4),), str(tmp_path / "g.onnx"), input_names=["x"], dynamo=False,
                          dynamic_axes={"x": {0: "batch"}}, opset_version=18)
    assert _answers_as(tmp_path / "g.onnx", module, ["x"], (torch.ones(2, 4),))
    assert not _answers_as(tmp_path / "g.onnx", module, ["x"], (torch.ones(3, 4),))


def test_a_backbones_cached_graph_is_exported_again_after_a_library_upgrade(image_model, monkeypatch):
    # a new torch, timm or torchvision may compute the same weights differently: the old graph is not reused
    import torch

    backbone = Predictor.load(image_model, precision="fp32").featurizer
    before = backbone.network_digest()
    assert backbone.with_view("mirror").network_digest() == before  # the view is preprocessing, not the network
    monkeypatch.setattr(torch, "__version__", "99.0.0")
    assert backbone.network_digest() != before


def test_a_tuned_backbones_graph_is_made_for_its_export_alone(image_model, small_train, tmp_path, monkeypatch):
    # its weights are the model's own: no later model shares them, so nothing of it is kept in the cache
    import copy

    predictor = Predictor.load(image_model, precision="fp32")
    predictor.featurizer = copy.copy(predictor.featurizer)
    predictor.featurizer.tuned = True
    predictor.cache_dir = str(tmp_path / "cache")
    calls = _exported_inputs(monkeypatch)
    export_onnx(predictor, tmp_path / "tuned", check_items=sorted(small_train.rglob("*.png")))
    assert calls == [["images"], ["features_0"]]
    assert not (tmp_path / "cache" / "onnx-features").exists()


def test_a_cache_that_cannot_be_written_leaves_the_export_to_make_its_own_backbone_graph(image_model, small_train,
                                                                                         tmp_path):
    predictor = Predictor.load(image_model, precision="fp32")
    predictor.cache_dir = str(tmp_path / "a-file")
    (tmp_path / "a-file").write_text("not a folder")
    export_onnx(predictor, tmp_path / "out", check_items=sorted(small_train.rglob("*.png")))
    assert OnnxPredictor.load(tmp_path / "out").classes.tolist() == ["beverages", "birds", "fruit"]
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_damaged_backbone_graph_in_the_cache_is_exported_again(image_model, small_train, tmp_path, monkeypatch):
    predictor = Predictor.load(image_model, precision="fp32")
    predictor.cache_dir = str(tmp_path / "cache")
    export_onnx(predictor, tmp_path / "first")
    graph = next((tmp_path / "cache" / "onnx-features").glob("*.onnx"))
    whole = graph.read_bytes()
    graph.write_bytes(whole[:len(whole) // 2])  # cut short
    calls = _exported_inputs(monkeypatch)
    export_onnx(predictor, tmp_path / "second", check_items=sorted(small_train.rglob("*.png")))
    import onnx

    assert calls == [["images"], ["features_0"]]
    onnx.checker.check_model(onnx.load(str(graph)))  # whole again, for the exports after
    assert OnnxPredictor.load(tmp_path / "second").classes.tolist() == ["beverages", "birds", "fruit"]


@pytest.mark.slow  # exports four backbones
def test_a_side_by_side_model_with_a_power_transformed_head_per_member_exports_exactly(image_model, small_train,
                                                                                      tmp_path):
    """What ``auto`` fits on images: backbones side by side, the square root of their features, one head each."""
    import copy
    import dataclasses

    from transferkit.featurizers import Concat
    from transferkit.heads import fit_head

    predictor = Predictor.load(image_model, precision="fp32")
    pair = Concat([predictor.featurizer, copy.deepcopy(predictor.featurizer)])
    files = sorted(small_train.rglob("*.png"))
    x = pair.transform([pair.prepare(f) for f in files])
    y = np.array([predictor.classes.tolist().index(f.parent.name) for f in files])
    head = fit_head(np.abs(x), y, power=0.5, blocks=pair.blocks)
    assert head.power == 0.5 and len(head.bounds) == 2
    both = dataclasses.replace(predictor, featurizer=pair, head=head)
    manifest = export_onnx(both, tmp_path / "onnx", check_items=files)
    assert manifest["check"]["argmax_agreement"] == 1.0 and manifest["check"]["max_abs_difference"] <= 1e-4
    np.testing.assert_allclose(OnnxPredictor.load(tmp_path / "onnx").predict_proba(files), both.predict_proba(files),
                               atol=1e-4)


def test_the_onnx_runtime_imports_no_torch(exported, small_train):
    image = sorted(small_train.rglob("*.png"))[0]
    code = ("import sys; from transferkit.onnx_runtime import OnnxPredictor; "
            f"p = OnnxPredictor.load({str(exported)!r}); print(p.predict([{str(image)!r}])[0]); "
            "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow  # exports a text encoder
def test_an_exported_text_model_tokenizes_and_predicts_like_the_model(tiny_encoder, text_csv, tmp_path):
    pool = ["A penalty in the last minute decided the final.", "Whisk two eggs into the melted butter.",
            "Gales and heavy rain reach the coast by night.", "Simmer the sauce until it thickens."]
    clf = TextClassifier(tiny_encoder, Features(), precision="fp32", verbose=False).fit(text_csv, X_unlabeled=pool)
    assert clf.head_.neighbours is not None  # the graph carries the head's nearest-neighbour vote
    clf.save(tmp_path / "model")
    predictor = Predictor.load(tmp_path / "model")
    texts = list(clf._read(text_csv).items) + ["a", "an entirely new sentence about nothing in particular " * 20]
    export_onnx(predictor, tmp_path / "onnx", check_items=texts)
    runtime = OnnxPredictor.load(tmp_path / "onnx")
    np.testing.assert_allclose(runtime.predict_proba(texts), predictor.predict_proba(texts), atol=1e-4)
    assert (tmp_path / "onnx" / "tokenizer.json").is_file()


@pytest.mark.slow  # exports a text encoder
def test_texts_run_on_a_cached_export_until_they_are_enough_to_repay_starting_pytorch(tiny_encoder, text_csv, tmp_path,
                                                                                       monkeypatch):
    from transferkit import loading, runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    TextClassifier(tiny_encoder, Features(), precision="fp32", verbose=False).fit(text_csv).save(tmp_path / "model")
    model = str(tmp_path / "model")
    assert runner.invoke(app, ["predict", model, "a storm is coming", "--text", "--runtime", "onnx"]).exit_code == 0
    monkeypatch.setattr(runtime, "native_bf16", lambda device_type: True)  # PyTorch is the faster per text
    built = []
    load = Predictor.load.__func__
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, *a, **k: built.append(1) or load(cls, *a, **k)))

    def runs_pytorch(*command: str) -> bool:
        built.clear()
        result = runner.invoke(app, [command[0], model, *command[1:]])
        assert result.exit_code == 0, result.output
        return bool(built)

    storm = ["a storm is coming"] * 3  # 51 characters
    assert not runs_pytorch("predict", *storm, "--text", "--json")
    assert not runs_pytorch("predict", *storm, "--text", "--out", str(tmp_path / "few.csv"))
    assert not runs_pytorch("evaluate", str(text_csv))
    monkeypatch.setattr(loading, "TEXT_FEW_MAX_CHARS", 50)  # past it, starting PyTorch pays for itself
    assert runs_pytorch("predict", *storm, "--text", "--json")
    assert runs_pytorch("predict", *storm, "--text", "--out", str(tmp_path / "many.csv"))
    assert runs_pytorch("evaluate", str(text_csv))
    assert not runs_pytorch("predict", *storm, "--text", "--json", "--runtime", "onnx")  # asked for: kept
    monkeypatch.setattr(runtime, "native_bf16", lambda device_type: False)  # the export is the faster per text
    assert not runs_pytorch("predict", *storm, "--text", "--json")


def test_a_text_counts_up_to_what_the_encoder_reads(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from transferkit import loading

    monkeypatch.setattr(loading, "_faster_runtime_of", lambda folder, few=False: "torch")
    monkeypatch.setattr(loading, "load_predictor", lambda folder, runtime: runtime)
    export = SimpleNamespace(runtime="onnx", modality="text")
    assert loading.for_texts(export, tmp_path, ["word " * loading.TEXT_FEW_MAX_CHARS]) is export  # one long text
    many = ["x" * loading.TEXT_CHARS_READ] * (loading.TEXT_FEW_MAX_CHARS // loading.TEXT_CHARS_READ + 1)
    assert loading.for_texts(export, tmp_path, many) == "torch"
    assert loading.for_texts(SimpleNamespace(runtime="onnx", modality="image"), tmp_path, many).modality == "image"


@pytest.mark.slow  # a second export, quantised
def test_int8_reports_the_accuracy_change_it_measured(image_model, small_train, tmp_path, monkeypatch):
    predictor = Predictor.load(image_model)
    data = predictor.read(small_train)
    manifest = export_onnx(predictor, tmp_path / "onnx", check_items=list(data.items),
                           check_labels=list(data.labels), quantize="int8")
    q = manifest["quantized"]
    assert q["n"] == 18 and q["accuracy_change"] == pytest.approx(q["accuracy_int8"] - q["accuracy_fp32"])
    assert (tmp_path / "onnx" / "model.int8.onnx").is_file() and q["bytes_int8"] < q["bytes_fp32"]
    assert q["rounding"] == "gptq"
    # the first convolution (it reads the image) keeps float32 weights; the others read int8 ones
    import onnx

    from transferkit.quantize import _first_convolutions, _readers

    graph = onnx.load(str(tmp_path / "onnx" / "model.int8.onnx")).graph
    producer = {out: node for node in graph.node for out in node.output}
    stems = _first_convolutions(_readers(graph), graph.input[0].name)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    int8_weights = {n.name for n in convs if n.input[1] in producer and producer[n.input[1]].op_type == "DequantizeLinear"}
    assert stems and not stems & int8_weights and len(int8_weights) == len(convs) - len(stems)
    # a CPU with integer dot products runs the int8 graph only where it kept float32's answers; one without never does
    from transferkit import onnx_runtime, runtime

    for native in (True, False):
        monkeypatch.setattr(runtime, "native_int8", lambda native=native: native)
        kept = native and 1 - q["argmax_agreement"] <= onnx_runtime.INT8_MAX_COST
        assert OnnxPredictor.load(tmp_path / "onnx").graph == ("model.int8.onnx" if kept else "model.onnx")
        # --runtime int8 is the user's choice of the int8 graph, whatever the check measured and whatever the CPU
        assert load_predictor(tmp_path / "onnx", runtime="int8").graph == "model.int8.onnx"


def test_a_served_export_lets_its_threads_sleep_between_batches_and_a_bulk_job_does_not(exported):
    def spinning(predictor) -> str:
        options = predictor.session.get_session_options()
        try:
            return options.get_session_config_entry("session.intra_op.allow_spinning")
        except RuntimeError:  # not set: ONNX Runtime's default, which spins
            return "default"

    assert spinning(load_predictor(exported, runtime="onnx", serving=True)) == "0"
    assert spinning(load_predictor(exported, runtime="onnx")) == "default"


def test_the_export_predict_caches_gets_an_int8_graph_of_backbones_made_once_where_the_cpu_has_integer_dot_products(
        image_model, small_train, tmp_path, monkeypatch):
    from transferkit import loading, quantize, runtime
    from transferkit.onnx_runtime import GRAPH, INT8_GRAPH, MACHINE_CALIBRATION

    files = sorted(small_train.rglob("*.png"))
    made = []
    real = quantize.quantize_graph
    monkeypatch.setattr(quantize, "quantize_graph", lambda *args: made.append(args[0]) or real(*args))
    for native in (False, True):
        monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / f"cache-{native}"))  # the export made anew
        monkeypatch.setattr(runtime, "native_int8", lambda native=native: native)
        folder = loading.cached_export(image_model)
        manifest = json.loads((folder / MANIFEST).read_text())
        loaded = load_predictor(image_model, runtime="onnx")
        if not native:  # a CPU without integer dot products: float32 only
            assert "quantized" not in manifest and loaded.graph == GRAPH and not made
            continue
        assert manifest["quantized"]["calibration"] == MACHINE_CALIBRATION and (folder / INT8_GRAPH).is_file()
        assert loaded.graph == INT8_GRAPH and len(made) == 1  # the backbone's int8 graph, made for this machine
        floats = OnnxPredictor.load(folder, graph=GRAPH)
        assert np.abs(loaded.predict_proba(files) - floats.predict_proba(files)).max() < 0.1
    # every later export on the network reuses the backbone's int8 graph; `transferkit export` writes one for any
    # machine, so it holds no int8 graph unless asked (--quantize int8), and a copy of the cache's leaves it out
    export_onnx(Predictor.load(image_model), tmp_path / "again", for_this_machine=True)
    assert len(made) == 1 and (tmp_path / "again" / INT8_GRAPH).is_file()
    assert "quantized" not in export_onnx(Predictor.load(image_model), tmp_path / "portable")
    copied = copy_export(folder, tmp_path / "copied")
    assert "quantized" not in copied and not (tmp_path / "copied" / INT8_GRAPH).exists()
    assert OnnxPredictor.load(tmp_path / "copied").graph == GRAPH


def test_runtime_int8_without_an_int8_graph_says_how_to_write_one(exported, image_model, tmp_path, monkeypatch):
    from transferkit import runtime

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))  # the model folder's export made anew ...
    monkeypatch.setattr(runtime, "native_int8", lambda: False)  # ... on a CPU that gives it no int8 graph
    for folder in (exported, image_model):  # an export without --quantize, and a model folder
        with pytest.raises(BadInputError, match="--quantize int8") as caught:
            load_predictor(folder, runtime="int8")
        assert str(folder) in str(caught.value)


@pytest.mark.slow  # a quantised export
def test_int8_evens_the_backbones_residual_streams_and_its_features_stay_near_float32(image_model, small_train,
                                                                                     tmp_path):
    predictor = Predictor.load(image_model)
    items = list(predictor.read(small_train).items)
    quantized = export_onnx(predictor, tmp_path / "int8", check_items=items, quantize="int8")["quantized"]
    assert quantized["rounding"] == "gptq" and quantized["equalized_streams"] > 0  # the linear bottlenecks
    assert set(quantized["feature_cosine"]) == {predictor.featurizer.name}
    assert 0.95 < quantized["feature_cosine"][predictor.featurizer.name] <= 1.0


@pytest.mark.parametrize("agreement, says", [
    (1.0, "it runs by itself on a CPU with VNNI or AMX"),
    (0.967, "more than 0.5%, so float32 runs by itself; `--runtime int8` runs it anyway"),
])
def test_the_export_says_whether_its_int8_graph_will_run_by_itself(agreement, says, capsys):
    from transferkit import show

    quantized = {"file": "model.int8.onnx", "bytes_int8": 2**20, "bytes_fp32": 4 * 2**20, "n": 60,
                 "accuracy_fp32": 0.6, "accuracy_int8": 0.6, "accuracy_change": 0.0, "argmax_agreement": agreement}
    show.export({"export_seconds": 80, "check": {"inputs": 60, "max_abs_difference": 1e-7, "tolerance": 1e-4},
                 "quantized": quantized}, Path("onnx"))
    printed = " ".join(capsys.readouterr().out.split())
    assert f"{1 - agreement:.1%} of its answers differ from float32's" in printed and says in printed


def test_a_tfidf_model_is_refused_with_the_reason(text_csv, tmp_path):
    TextClassifier(strategy=Scratch(), verbose=False).fit(text_csv).save(tmp_path / "m")
    with pytest.raises(BadInputError, match="TF-IDF"):
        export_onnx(Predictor.load(tmp_path / "m"), tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_the_cli_exports_then_predicts_and_evaluates_on_the_export(image_model, small_train, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))  # no export of the model cached: one is made
    result = runner.invoke(app, ["export", str(image_model), "--out", str(tmp_path / "onnx")])
    assert result.exit_code == 0 and "ONNX Runtime matches the model" in result.output, result.output
    assert "Exporting to ONNX" in result.output and "3/3" in result.output  # the backbone, the head, the check
    image = sorted(small_train.rglob("*.png"))[0]
    onnx = runner.invoke(app, ["predict", str(tmp_path / "onnx"), str(image), "--json"])
    torch_ = runner.invoke(app, ["predict", str(image_model), str(image), "--json"])
    assert json.loads(onnx.stdout)["label"] == json.loads(torch_.stdout)["label"]
    evaluated = runner.invoke(app, ["evaluate", str(image_model), str(small_train), "--runtime", "onnx", "--json"])
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout.strip().splitlines()[-1])["n_examples"] == 18
    again = runner.invoke(app, ["export", str(image_model), "--out", str(tmp_path / "onnx")])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_export_copies_the_models_cached_export_unless_asked_to_check_on_data(image_model, small_train, tmp_path,
                                                                              monkeypatch):
    import transferkit.export

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    assert runner.invoke(app, ["predict", str(image_model), str(next(small_train.rglob("*.png"))), "--runtime",
                               "onnx"]).exit_code == 0  # the export is in the cache now, as fit leaves it
    made = []
    monkeypatch.setattr(transferkit.export, "export_onnx", lambda *a, **k: made.append(1) or export_onnx(*a, **k))
    copied = runner.invoke(app, ["export", str(image_model), "--out", str(tmp_path / "onnx"), "--json"])
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout.splitlines()[-1])["copied_from"] and not made
    image = str(next(small_train.rglob("*.png")))
    answers = [json.loads(runner.invoke(app, ["predict", m, image, "--json"]).stdout) for m in
               (str(tmp_path / "onnx"), str(image_model))]
    assert answers[0]["label"] == answers[1]["label"]
    checked = runner.invoke(app, ["export", str(image_model), "--out", str(tmp_path / "checked"), "--check-data",
                                  str(small_train)])
    assert checked.exit_code == 0 and made == [1], checked.output  # checked on the data given: exported anew


def test_a_damaged_cached_export_is_exported_again_rather_than_copied(image_model, small_train, tmp_path, monkeypatch):
    from transferkit.loading import cached_export

    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "cache"))
    graph = cached_export(image_model) / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:-100])  # cut short
    result = runner.invoke(app, ["export", str(image_model), "--out", str(tmp_path / "onnx"), "--json"])
    assert result.exit_code == 0, result.output
    assert "copied_from" not in json.loads(result.stdout.splitlines()[-1])
    assert OnnxPredictor.load(tmp_path / "onnx").predict_proba([next(small_train.rglob("*.png"))]).shape == (1, 3)


def _copy_export(exported, tmp_path):
    import shutil

    return Path(shutil.copytree(exported, tmp_path / "onnx"))


def test_an_export_gets_the_users_usual_permissions(exported):
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(exported.stat().st_mode) == 0o777 & ~mask


@pytest.mark.parametrize("edit", [
    lambda m: m.update(classes=m["classes"][::-1]),                   # reordered: the labels would silently swap
    lambda m: m.update(classes=m["classes"] + ["ghost"]),             # 4 names for a 3-output graph
    lambda m: m["inputs"][0]["preprocessing"].update(input_size=96),  # prepared otherwise than the graph learned
])
def test_an_edited_export_manifest_is_refused(exported, tmp_path, edit):
    folder = _copy_export(exported, tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    edit(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="edited after export"):
        OnnxPredictor.load(folder)


def test_an_export_manifest_that_names_more_classes_than_the_graph_gives_is_refused(exported, tmp_path):
    """Even with its digest recomputed (edited on purpose), the class list must fit the graph's output."""
    from transferkit.onnx_runtime import write_manifest

    folder = _copy_export(exported, tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    write_manifest(folder, manifest | {"classes": manifest["classes"] + ["ghost"]})
    with pytest.raises(BundleError, match="names 4 classes but the graph model.onnx gives 3 probabilities"):
        OnnxPredictor.load(folder)


def test_a_replaced_graph_is_refused(exported, tmp_path):
    folder = _copy_export(exported, tmp_path)
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleError, match="model.onnx is not the file that was exported"):
        OnnxPredictor.load(folder)


def test_exporting_over_the_model_folder_is_refused_without_asking_for_overwrite(image_model):
    result = runner.invoke(app, ["export", str(image_model), "--out", str(image_model), "--overwrite"])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "an export never replaces" in text and "Pass --overwrite" not in text


@pytest.mark.slow  # a second export
def test_check_data_lists_the_inputs_it_could_not_read(image_model, small_train, tmp_path):
    import shutil

    data = Path(shutil.copytree(small_train, tmp_path / "data"))
    (data / "birds" / "cut.png").write_bytes((data / "birds" / sorted(p.name for p in (data / "birds").iterdir())[0])
                                             .read_bytes()[:100])
    result = runner.invoke(app, ["export", str(image_model), "--out", str(tmp_path / "onnx"), "--check-data",
                                 str(data)])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, text
    assert "matches the model on 18 inputs" in text and "1 input(s) of --check-data could not be read" in text
    assert "cut.png" in text


@pytest.mark.parametrize("modality, kinds, device, bf16, few, expected", [
    ("image", {"image-backbone"}, "cpu", True, False, "onnx"),      # 90 against 77 predictions/s (bf16), benchmark
    ("image", {"image-backbone"}, "cpu", False, False, "onnx"),     # 90 against 38 (float32)
    ("text", {"sentence-encoder"}, "cpu", True, False, "torch"),    # 441 (bf16) against 345
    ("text", {"sentence-encoder"}, "cpu", True, True, "onnx"),      # one text: 0.6 s against 7 s, starting PyTorch
    ("text", {"sentence-encoder"}, "cpu", False, False, "onnx"),    # 345 against 279
    ("image", {"image-backbone"}, "cuda", True, False, "torch"),    # the ONNX runtime here is a CPU build
    ("image", {"image-backbone"}, "cuda", True, True, "torch"),
    ("text", {"tfidf"}, "cpu", False, True, "torch"),               # the export does not cover TF-IDF or word vectors
    ("image", set(), "cpu", False, False, "torch"),                 # a transferkit 0.1 folder
])
def test_the_default_runtime_is_the_one_measured_faster(monkeypatch, modality, kinds, device, bf16, few, expected):
    from transferkit import runtime

    monkeypatch.setattr(runtime, "default_device_type", lambda: device)
    monkeypatch.setattr(runtime, "native_bf16", lambda device_type: bf16)
    assert runtime.faster_runtime(modality, kinds, few=few) == expected


@pytest.mark.parametrize("platform, files, asks_pytorch", [
    ("linux", [], False),                       # no GPU device file: the CPU, without importing PyTorch
    ("linux", ["/dev/nvidia0"], True),
    ("linux", ["/dev/dxg"], True),              # WSL
    ("darwin", [], True),                       # elsewhere PyTorch is asked
])
def test_the_device_is_read_without_pytorch_only_where_no_gpu_can_be(monkeypatch, platform, files, asks_pytorch):
    import sys

    import torch

    from transferkit import runtime

    asked = []
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(runtime, "gpu_device_files", lambda: files)
    monkeypatch.setattr(runtime, "default_device", lambda: asked.append(1) or torch.device("cuda"))
    assert runtime.default_device_type() == ("cuda" if asks_pytorch else "cpu")
    assert bool(asked) == asks_pytorch


@pytest.mark.parametrize("quantized, native, expected", [
    ({"file": "model.int8.onnx", "argmax_agreement": 1.0, "accuracy_change": 0.0}, True, "model.int8.onnx"),  # VNNI
    ({"file": "model.int8.onnx", "argmax_agreement": 0.996, "accuracy_change": -0.004}, True, "model.int8.onnx"),
    ({"file": "model.int8.onnx", "argmax_agreement": 1.0, "accuracy_change": 0.0}, False, "model.onnx"),  # no VNNI
    # the accuracy held on the check, but only because 1 lost and 1 gained of 60 cancelled out: 3% of answers moved
    ({"file": "model.int8.onnx", "argmax_agreement": 0.967, "accuracy_change": 0.0}, True, "model.onnx"),
    ({"file": "model.int8.onnx", "argmax_agreement": 0.95, "accuracy_change": -0.05}, True, "model.onnx"),
    ({"file": "model.int8.onnx", "accuracy_change": 0.0}, True, "model.onnx"),  # an export from before agreement
    ({"file": "model.int8.onnx", "note": "no labeled data given"}, True, "model.onnx"),  # never measured
    (None, True, "model.onnx"),  # no int8 graph
])
def test_an_int8_graph_runs_where_the_cpu_has_integer_dot_products_and_it_kept_floats_answers(quantized, native,
                                                                                              expected):
    from transferkit.onnx_runtime import onnx_graph

    assert onnx_graph({"quantized": quantized} if quantized else {}, int8=native) == expected
