"""Export a fitted model to ONNX: one graph from the network's input to class probabilities, and a manifest.

    export/
      model.onnx                    inputs -> probabilities (the backbone(s) or encoder, the head, softmax)
      transferkit-export.json       classes, the inputs and how to prepare them (preprocessing or tokenizer),
                                    versions, and the parity check the export passed
      tokenizer.json                texts: what tokenisation needs (the Hugging Face tokenizers format)
      open_set.safetensors          a model that can tell items of no trained class: the head and the open-set part
                                    (``openset``), which read the graph's second output, the features

The graph starts where preprocessing ends: for images, one float32 NCHW input per backbone, resized, cropped and
normalised as the manifest says (``onnx_runtime`` does that with PIL and numpy, as timm's eval transform does); for
texts, token ids and masks. Export checks itself before it reports success: ONNX Runtime's probabilities on sample
inputs must match the PyTorch model's in float32 (``TOLERANCE``) with the same class for every input.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import BadInputError
from .heads import NEIGHBOURS
from .onnx_features import OPSET
from .onnx_runtime import FORMAT, GRAPH, INT8_GRAPH, MACHINE_CALIBRATION, OPEN_SET_FILE, is_export, write_manifest

TOLERANCE = 1e-4  # max |probability difference| between ONNX Runtime and PyTorch (float32) on the check inputs
SCORE_TOLERANCE = 1e-3  # ... and of the open-set scores, relative to their size where it exceeds 1


def _members(predictor) -> list:
    featurizer = predictor.featurizer
    members = getattr(featurizer, "members", None) or [featurizer]
    kinds = {m.kind for m in members}
    if not kinds <= {"image-backbone", "sentence-encoder"}:
        raise BadInputError(f"ONNX export covers image backbones and sentence encoders; this model uses "
                            f"{', '.join(sorted(kinds - {'image-backbone', 'sentence-encoder'}))} (TF-IDF or word "
                            "vectors), which the ONNX runtime of transferkit does not run yet.")
    if any(getattr(m, "long_text", None) == "chunk" for m in members):
        raise BadInputError("This model averages windows of long texts (long_text=chunk), which the ONNX runtime of "
                            "transferkit does not do yet; run the model folder on PyTorch (--runtime torch).")
    return members


def _head_module(predictor, n_members: int):
    """A torch module from each member's features (side by side: each block scaled as ``Concat`` does) to what the
    model answers, and the features the open-set part reads as a second output."""
    import torch
    from torch import nn

    head = predictor.head

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.concat = n_members > 1
            self.norm, self.power, self.bounds, self.output = head.norm, head.power, head.bounds, head.output
            self.unit_rows = head.unit_rows
            for name in ("mean", "scale", "coef", "intercept"):
                self.register_buffer(name, torch.from_numpy(np.asarray(getattr(head, name), np.float32)))
            self.vote = head.neighbours is not None  # a nearest-neighbour vote (``heads.neighbour_vote``)
            if self.vote:
                self.register_buffer("neighbours", torch.from_numpy(np.asarray(head.neighbours, np.float32)))
                self.register_buffer("neighbour_proba", torch.from_numpy(np.asarray(head.neighbour_proba, np.float32)))
                self.k = min(NEIGHBOURS + 1, len(head.neighbours))  # the last one weighs nothing
            self.with_features = predictor.open_set is not None  # a second output: what open-set scores read

        def forward(self, *feats):
            if self.concat:
                feats = tuple(f / f.norm(dim=1, keepdim=True).clamp_min(1e-12) / math.sqrt(len(feats)) for f in feats)
            x = torch.cat(feats, dim=1) if self.concat else feats[0]
            out = self.output_of(x)
            return (out, x) if self.with_features else out

        def output_of(self, x):
            if self.unit_rows:
                x = torch.cat([b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
                               for b in (x[:, start:stop] for start, stop in self.bounds)], dim=1)
            if self.power != 1.0:
                x = torch.sign(x) * x.abs().pow(self.power)
            if self.norm == "standard":
                x = (x - self.mean) / self.scale
            elif self.norm == "l2":
                x = x - self.mean
                x = torch.cat([b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
                               for b in (x[:, start:stop] for start, stop in self.bounds)], dim=1)
            z = x @ self.coef.T + self.intercept
            if self.output == "identity":  # numbers
                return z
            if self.output == "sigmoid":  # several labels: each label's probability
                return torch.sigmoid(z)
            if z.shape[1] == 1:  # scikit-learn's binary form: one logit, a sigmoid
                p = torch.sigmoid(z)
                p = torch.cat([1 - p, p], dim=1)
            else:
                p = torch.softmax(z, dim=1)
            if self.vote:  # heads.neighbour_vote
                near, nearest = (x @ self.neighbours.T).topk(self.k, dim=1)
                weight = near - near.min(dim=1, keepdim=True).values
                total = weight.sum(dim=1, keepdim=True)
                weight = torch.where(total > 0, weight / total.clamp_min(1e-30), torch.full_like(weight, 1 / self.k))
                p = (p + (weight.unsqueeze(2) * self.neighbour_proba[nearest]).sum(dim=1)) / 2
            return p

    return Head().eval()


def _text_module(predictor, encoder):
    """A torch module from token ids and masks to what the model answers: the encoder, then the head."""
    from torch import nn

    class Graph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder.model.float()
            self.head = _head_module(predictor, 1)
            self.input_names = list(encoder.tokenizer.model_input_names)
            self.with_features = self.head.with_features

        def forward(self, *inputs):
            return self.head(self.encoder(dict(zip(self.input_names, inputs)))["sentence_embedding"])

    return Graph().eval()


def _sample_images(n: int = 6) -> list:
    """Check inputs when no data is given: images with structure (gradients, shapes, colours), not noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        size = (int(rng.integers(80, 400)), int(rng.integers(80, 400)))
        img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            box = sorted(rng.integers(0, size[0], 2).tolist()), sorted(rng.integers(0, size[1], 2).tolist())
            draw.ellipse((box[0][0], box[1][0], box[0][1], box[1][1]), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        out.append(img)
    return out


SAMPLE_TEXTS = ["The match ended in a draw after extra time.", "Add the flour and stir until smooth.",
                "Heavy rain is expected along the coast tonight.", "Great value, would buy again!", "x",
                "An email about a meeting moved to Thursday afternoon, with the agenda attached."]


def export_onnx(predictor, out: str | Path, *, check_items: list | None = None, quantize: str | None = None,
                check_labels: list | None = None, overwrite: bool = False, progress: bool = False,
                for_this_machine: bool = False) -> dict:
    """Write ``predictor``'s model as ONNX into ``out`` and check it; returns what the manifest records.
    ``for_this_machine`` (the export ``predict`` caches): where this CPU has integer dot products
    (``runtime.native_int8``), an image model of classes on the zoo's networks also gets an int8 graph, composed of
    the backbones' int8 graphs made once per machine (``quantize.int8_backbone_graph``) and the float32 head,
    which runs by itself on such a CPU (``onnx_runtime.onnx_graph``)."""
    from .extras import require

    require("export")
    from .progress import progress_bar

    out = Path(out)
    _check_destination(out, overwrite)
    if quantize not in (None, "int8"):
        raise BadInputError(f"--quantize must be int8, got {quantize!r}.")
    if quantize and predictor.kind != "class":
        raise BadInputError("--quantize int8 is measured on models of one class per item; export this model without "
                            "it.")
    members = _members(predictor)
    text = predictor.modality == "text"
    int8 = not quantize and for_this_machine and _int8_here(predictor, members)
    # the steps: each backbone's graph and the head's (a text model's graph), this machine's int8 graph, the parity
    # check, int8 on the check data
    steps = (1 if text else len(members) + 1) + int8 + 1 + bool(quantize)

    def write(staging: Path) -> dict:
        with progress_bar("Exporting to ONNX", steps, enabled=progress) as advance:
            return _write_export(predictor, members, staging, check_items, quantize, check_labels, advance, int8=int8)

    return _place(out, write)


def copy_export(source: Path, out: str | Path, *, overwrite: bool = False) -> dict:
    """Copy the export in ``source`` (one ``export_onnx`` wrote and checked, such as the cache's) into ``out``, loaded
    once there before it is put in place; returns its manifest. The cache's int8 graph of this machine's backbones
    (``export_onnx(for_this_machine=True)``) is left out, as ``transferkit export`` would write it."""
    from .onnx_runtime import MANIFEST, OnnxPredictor

    out = Path(out)
    _check_destination(out, overwrite)

    def write(staging: Path) -> dict:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        OnnxPredictor.load(staging, graph=GRAPH)  # every file as its manifest lists it
        manifest = json.loads((staging / MANIFEST).read_text(encoding="utf-8"))
        if (manifest.get("quantized") or {}).get("calibration") == MACHINE_CALIBRATION:
            (staging / INT8_GRAPH).unlink()
            write_manifest(staging, {k: v for k, v in manifest.items() if k not in ("quantized", "sha256")})
        return json.loads((staging / MANIFEST).read_text(encoding="utf-8"))

    return _place(out, write)


def _check_destination(out: Path, overwrite: bool) -> None:
    from .bundle import check_destination, is_model_folder

    if out.exists() and not (is_export(out) and overwrite):
        if is_export(out):
            raise BadInputError(f"{out} already holds an export. Pass --overwrite to replace it, or choose another --out.")
        if is_model_folder(out):
            raise BadInputError(f"{out} holds a model folder, which an export never replaces (--overwrite replaces "
                                "only an earlier export). Choose another --out.")
        check_destination(out, overwrite=False)


def _place(out: Path, write) -> dict:
    """``write(staging)`` into a new folder beside ``out``, which then takes ``out``'s place (an earlier export there
    is replaced only now); what ``write`` returns."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent if out.parent.exists() else None))
    try:
        manifest = write(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _int8_here(predictor, members: list) -> bool:
    """Whether an export for this machine gets an int8 graph of backbones made once per machine (``export_onnx``)."""
    from .runtime import native_int8

    return (predictor.modality == "image" and predictor.kind == "class" and not any(m.tuned for m in members)
            and native_int8())


def _write_export(predictor, members: list, staging: Path, check_items, quantize, check_labels, advance,
                  int8: bool = False) -> dict:
    """The export written into ``staging`` and checked (``export_onnx``); its manifest. ``advance(1)`` after each
    step. ``int8``: also the int8 graph of the backbones' graphs made once per machine."""
    import torch

    from . import __version__
    from .atomic import umask
    from .bundle import library_versions
    from .onnx_runtime import OnnxPredictor

    start = time.perf_counter()
    text = predictor.modality == "text"
    os.chmod(staging, 0o777 & ~umask())  # mkdtemp makes it owner-only; an export gets the user's usual mode
    if text:
        encoder = members[0]
        graph = _text_module(predictor, encoder)
        tokens, _ = encoder.tokenize(SAMPLE_TEXTS[:2])
        example = tuple(tokens[name] for name in graph.input_names)
        longer, _ = encoder.tokenize(SAMPLE_TEXTS[2:])  # other sizes: the trace is checked on them
        other = tuple(longer[name] for name in graph.input_names)
        batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=2, max=encoder.max_tokens)
        shapes = (tuple({0: batch, 1: seq} for _ in graph.input_names),)  # forward(*inputs): one tuple
        encoder.tokenizer.save_pretrained(str(staging))
        inputs = [{"name": n, "kind": "tokens"} for n in graph.input_names]
        text_info = {"tokenizer": "tokenizer.json", "max_tokens": encoder.max_tokens,
                     "long_text": encoder.long_text, "input_names": graph.input_names}
        _export(graph, example, staging / GRAPH, graph.input_names, shapes, other)
        advance(1)
    else:
        names = [f"image_{i}" if len(members) > 1 else "image" for i in range(len(members))]
        inputs = [{"name": n, "kind": "image", "preprocessing": m.preprocessing.to_dict()}
                  for n, m in zip(names, members)]
        text_info = {}
        int8 = _image_graph(predictor, members, names, staging / GRAPH, advance,
                            int8_path=staging / INT8_GRAPH if int8 else None)
    manifest = {
        "format": FORMAT, "format_version": 2, "modality": predictor.modality,
        "classes": predictor.classes.tolist(), "inputs": inputs,
        "output": "numbers" if predictor.kind == "number" else "probabilities", **text_info,
        **({"target": predictor.target} if predictor.kind != "class" else {}),
        **({"open_set": _save_open_set(predictor, staging)} if predictor.open_set is not None else {}),
        "model": {"featurizer": featurizer_name(predictor), "reason": predictor.report.reason,
                  "metrics": predictor.report.essentials()},
        "versions": {**library_versions(), "transferkit": __version__}, "opset": OPSET,
    }
    write_manifest(staging, manifest)
    manifest["check"] = _parity(predictor, OnnxPredictor.load(staging), check_items)
    advance(1)
    if int8:
        manifest["quantized"] = {"file": INT8_GRAPH, "method": "static", "rounding": "gptq",
                                 "calibration": MACHINE_CALIBRATION, "bytes_fp32": (staging / GRAPH).stat().st_size,
                                 "bytes_int8": (staging / INT8_GRAPH).stat().st_size}
    if quantize:
        manifest["quantized"] = _quantize(predictor, staging, manifest, check_items, check_labels)
        advance(1)
    manifest["export_seconds"] = time.perf_counter() - start
    write_manifest(staging, manifest)
    return manifest


def _image_graph(predictor, members: list, names: list[str], path: Path, advance=lambda n: None,
                 int8_path: Path | None = None) -> bool:
    """The model's graph from the backbones' graphs side by side (each exported once into the feature cache and
    reused by every later export on the same network; a tuned one's only for this export) and the head's, which
    reads their features. ``advance(1)`` after each. ``int8_path``: the same graph of the backbones' int8 graphs
    (``quantize.int8_backbone_graph``, made once per machine and network) there too, where the cache can hold
    them; whether it was written."""
    import torch

    from .onnx_features import graph_folder

    head = _head_module(predictor, len(members))
    cache = graph_folder(getattr(predictor, "cache_dir", None))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        backbones = []
        for member in members:
            backbones.append(_backbone_model(member, work if member.tuned else cache, work))
            advance(1)
        head_path = work / "head.onnx"
        feature_names = [f"features_{i}" for i in range(len(members))]
        batch = torch.export.Dim("batch", min=1, max=4096)
        other = tuple(torch.randn(3, m.dim, generator=torch.Generator().manual_seed(i)) for i, m in enumerate(members))
        _export(head, tuple(torch.zeros(2, m.dim) for m in members), head_path, feature_names,
                (tuple({0: batch} for _ in members),), other)
        _compose(backbones, head_path, names, path)
        advance(1)
        if int8_path is None:
            return False
        int8 = _int8_graph(members, cache, head_path, names, int8_path)
        advance(1)
    return int8


def _int8_graph(members: list, cache: Path, head: Path, names: list[str], path: Path) -> bool:
    """The model's int8 graph at ``path``: the backbones' int8 graphs (made once per machine and network) and the
    float32 ``head``; False, and nothing written, where the cache cannot hold the backbones' graphs (making them
    for one export would cost more than the int8 graph saves a model's few predictions)."""
    import onnx

    from .quantize import int8_backbone_graph

    try:
        backbones = [onnx.load(str(int8_backbone_graph(m, cache))) for m in members]
    except OSError:
        return False
    _compose(backbones, head, names, path)
    return True


def _backbone_model(member, folder: Path, work: Path):
    """The backbone's graph in ``folder``, loaded: exported there first where it is not (into ``work`` where
    ``folder`` cannot be written), and again where it was damaged on disk."""
    import onnx
    from google.protobuf.message import DecodeError

    from .onnx_features import backbone_graph

    try:
        graph = backbone_graph(member, folder)
    except OSError:  # a cache that cannot be written: this export makes its own
        folder = work
        graph = backbone_graph(member, folder)
    try:
        model = onnx.load(str(graph))
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError):
        graph.unlink()
        model = onnx.load(str(backbone_graph(member, folder)))
    return model


def _compose(backbones: list, head: Path, names: list[str], path: Path) -> None:
    """One graph: the ``backbones`` (ONNX models) side by side, their inputs named ``names``, each one's ``features``
    into the ``head``'s input of the same place (``onnx.compose``)."""
    import onnx
    from onnx import compose

    top = onnx.load(str(head))
    ir = max(m.ir_version for m in [*backbones, top])  # merge_models asks one IR version; a later one reads earlier
    for model in [*backbones, top]:
        model.ir_version = ir
    merged = None
    for i, model in enumerate(backbones):
        part = compose.add_prefix(model, f"backbone{i}/")
        merged = part if merged is None else compose.merge_models(merged, part, io_map=[])
    top = compose.add_prefix(top, "head/", rename_outputs=False)
    io_map = [(f"backbone{i}/features", value.name) for i, value in enumerate(top.graph.input)]
    merged = compose.merge_models(merged, top, io_map=io_map)
    for i, name in enumerate(names):
        _rename_input(merged.graph, f"backbone{i}/images", name)
    opsets = {(o.domain, o.version) for o in merged.opset_import}  # merge_models lists each part's; one of each
    del merged.opset_import[:]
    merged.opset_import.extend(onnx.helper.make_opsetid(domain, version) for domain, version in sorted(opsets))
    onnx.save(merged, str(path))


def _rename_input(graph, old: str, new: str) -> None:
    for value in graph.input:
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]


def featurizer_name(predictor) -> str:
    return getattr(predictor.featurizer, "name", "?")


def _quantize_static(full: Path, small: Path, manifest: dict, items: list | None, members: list) -> dict:
    """Static int8 of an image graph's backbones (``members``, one graph input each; ``quantize.quantize_graph``),
    calibrated on up to ``quantize.CALIBRATION_ITEMS`` of ``items`` (or generated images), and how far each backbone's int8
    features are from its float32 ones (the mean cosine similarity on the calibration images)."""
    from .data.images import ImageDecodeError, as_image, load_image
    from .onnx_runtime import prepare_image
    from .quantize import CALIBRATION_ITEMS, feature_cosine, quantize_graph

    images = []
    for item in (items or _sample_images()):
        try:
            images.append(load_image(item) if isinstance(item, (str, os.PathLike)) else as_image(item))
        except (ImageDecodeError, OSError, ValueError):
            continue
        if len(images) == CALIBRATION_ITEMS:
            break
    specs = manifest["inputs"]
    feeds = [{spec["name"]: prepare_image(image, spec["preprocessing"])[None] for spec in specs}
             for image in images or _sample_images()]
    streams, head = quantize_graph(full, small, feeds, [spec["name"] for spec in specs])
    cosine = feature_cosine(full, small, feeds, [m.dim for m in members]) if head else []
    return {"rounding": "gptq", "equalized_streams": streams,
            "feature_cosine": {m.name: round(c, 4) for m, c in zip(members, cosine)}}


def _save_open_set(predictor, folder: Path) -> dict:
    """The head and the open-set part, which the export's open-set scores read (``OPEN_SET_FILE``); their configs
    for the manifest."""
    from safetensors.numpy import save_file

    head_config, head_tensors = predictor.head.save()
    open_config, open_tensors = predictor.open_set.save()
    save_file({**{f"head.{k}": v for k, v in head_tensors.items()},
               **{f"open_set.{k}": v for k, v in open_tensors.items()}}, str(folder / OPEN_SET_FILE))
    return {"file": OPEN_SET_FILE, "head": head_config, "open_set": open_config}


def _export(graph, example, path: Path, names: list[str], shapes, other) -> None:
    """``graph`` as ONNX in ``path``, its inputs ``names`` of the dimensions ``shapes`` names (``torch.export.Dim``).
    Traced by the TorchScript exporter where it runs and its graph answers as ``graph`` does on ``other``, inputs of
    other sizes than the traced ``example`` (a trace keeps the branches its example took); else by torch.export
    (``dynamo=True``), whose sizes are symbolic. The trace takes a fraction of torch.export's time; torch.export
    stays what a torch without the TorchScript exporter runs."""
    import contextlib
    import io
    import warnings

    import torch

    outputs = ["probabilities", "features"] if graph.with_features else ["probabilities"]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            axes = {n: {axis: dim.__name__ for axis, dim in dims.items()} for n, dims in zip(names, shapes[0])}
            with torch.no_grad():
                torch.onnx.export(graph, example, str(path), input_names=names, output_names=outputs, dynamo=False,
                                  dynamic_axes={**axes, **{o: {0: "batch"} for o in outputs}}, opset_version=OPSET)
            if _answers_as(path, graph, names, other):
                return
        except Exception:  # noqa: BLE001 - any failure of the trace leaves torch.export to do it
            pass
        torch.onnx.export(graph, example, str(path), input_names=names, output_names=outputs,
                          dynamic_shapes=shapes, dynamo=True, opset_version=OPSET, external_data=False)


def _answers_as(path: Path, graph, names: list[str], inputs) -> bool:
    """Whether the ONNX graph in ``path`` gives what the torch module ``graph`` gives on ``inputs``."""
    import onnxruntime as ort
    import torch

    from .runtime import session_options

    with torch.no_grad():
        expected = graph(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})
    return len(got) == len(expected) and all(
        g.shape == tuple(e.shape) and np.allclose(g, e.numpy(), rtol=1e-4, atol=1e-5) for g, e in zip(got, expected))


def _parity(predictor, runtime, items: list | None) -> dict:
    """ONNX Runtime against the PyTorch model (float32) on the check inputs."""
    from dataclasses import replace

    items = items or (SAMPLE_TEXTS if predictor.modality == "text" else _sample_images())
    reference = replace(predictor, settings={**predictor.settings, "precision": "fp32", "tta": False})
    reference.featurizer = _fp32(predictor.featurizer)
    expected, ok, skipped = reference.predict_items(items)
    got, _, _ = runtime.predict_items([i for i, k in zip(items, ok) if k])
    scale = np.maximum(1.0, np.abs(expected)) if predictor.kind == "number" else 1.0  # numbers: relative to their size
    diff = float((np.abs(expected - got) / scale).max()) if len(got) else 0.0
    agree = float(np.mean([a == b for a, b in zip(predictor.answers(expected), predictor.answers(got))])) \
        if len(got) and predictor.kind != "number" else 1.0
    if diff > TOLERANCE or agree < 1.0:
        raise BadInputError(f"The ONNX graph does not reproduce the model: probabilities differ by up to {diff:.2g} "
                            f"(tolerance {TOLERANCE:g}), the same class for {agree:.0%} of {len(got)} inputs. The export "
                            "was not written.")
    check = {"inputs": len(got), "max_abs_difference": diff, "tolerance": TOLERANCE, "argmax_agreement": agree,
             "skipped": [{"item": str(item), "reason": why} for item, why in skipped]}
    if runtime.open_set is not None and len(got):
        kept = [i for i, k in zip(items, ok) if k]
        expected_scores, got_scores = reference.predict_scored(kept)[3], runtime.predict_scored(kept)[3]
        gap = float((np.abs(expected_scores - got_scores) / np.maximum(1.0, np.abs(expected_scores))).max())
        if gap > SCORE_TOLERANCE:
            raise BadInputError(f"The ONNX graph does not reproduce the model's open-set scores: they differ by up to "
                                f"{gap:.2g} (tolerance {SCORE_TOLERANCE:g}). The export was not written.")
        check["open_set_score_difference"] = gap
    return check


def _fp32(featurizer):
    import copy

    other = copy.copy(featurizer)
    if hasattr(other, "members"):
        other.members = [_fp32(m) for m in other.members]
    elif hasattr(other, "precision"):
        other.precision = "fp32"
        if hasattr(other, "_transform"):
            other._transform = None
    return other


def _quantize(predictor, folder: Path, manifest: dict, items: list | None, labels: list | None) -> dict:
    """int8 quantisation with ONNX Runtime's tools, and the accuracy change it costs on labeled data. Images: static
    (QDQ, per-channel weights) of the backbones whose features it keeps (``_quantize_static``), its activation ranges
    read from the check inputs (``quantize.CALIBRATION_ITEMS`` of them, or generated images), since dynamic quantisation runs
    convolutions slower than float32 on CPUs (benchmarks/throughput.py); texts: dynamic, where it holds."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .onnx_runtime import OnnxPredictor

    full = folder / GRAPH
    small = folder / INT8_GRAPH
    extra: dict = {}
    if predictor.modality == "image":
        members = getattr(predictor.featurizer, "members", None) or [predictor.featurizer]
        extra = _quantize_static(full, small, manifest, items, members)
        method = "static"
    else:
        quantize_dynamic(str(full), str(small), weight_type=QuantType.QInt8)
        method = "dynamic"
    write_manifest(folder, manifest)  # the int8 graph is listed before it is loaded
    report = {"file": small.name, "method": method, "bytes_fp32": full.stat().st_size,
              "bytes_int8": small.stat().st_size, **extra}
    if items and labels:
        fp32 = OnnxPredictor.load(folder, graph=GRAPH)
        int8 = OnnxPredictor.load(folder, graph=small.name)
        p32, ok, _ = fp32.predict_items(items)
        p8, _, _ = int8.predict_items(items)
        truth = np.array([lab for lab, k in zip(labels, ok) if k])
        classes = fp32.classes
        report |= {"n": int(len(truth)), "accuracy_fp32": float((classes[p32.argmax(1)] == truth).mean()),
                   "accuracy_int8": float((classes[p8.argmax(1)] == truth).mean()),
                   "argmax_agreement": float((p32.argmax(1) == p8.argmax(1)).mean())}
        report["accuracy_change"] = report["accuracy_int8"] - report["accuracy_fp32"]
    else:
        report["note"] = "no labeled data given (--check-data): the accuracy change was not measured"
    return report
