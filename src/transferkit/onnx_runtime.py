"""Run an exported model with ONNX Runtime: no PyTorch, no timm, no scikit-learn estimator at all.

Images are decoded as everywhere in transferkit (``data.images``: EXIF orientation, transparency onto white,
bounded size) and prepared with PIL and numpy exactly as timm's eval transform does (resize the short side to
``floor(size / crop_pct)`` with the model's interpolation, centre crop, scale to [0, 1], normalise); texts are
tokenised by the Hugging Face ``tokenizers`` library from the tokenizer saved beside the graph. The interface is the
:class:`~transferkit.predictor.Predictor`'s, so ``predict``, ``evaluate`` and bulk prediction run on either.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .data.files import ItemError
from .data.images import ImageDecodeError, as_image, load_image
from .data.texts import plain_text
from .errors import BadInputError, BundleError
from .fitreport import FitReport
from .predictor import Inference
from .runtime import open_session

MANIFEST = "transferkit-export.json"  # what makes a folder an export (transferkit.export writes it)
GRAPH = "model.onnx"
INT8_GRAPH = "model.int8.onnx"
MACHINE_CALIBRATION = "photos, once per machine"  # an int8 graph of the backbones' graphs made once per machine
OPEN_SET_FILE = "open_set.safetensors"  # the head and the open-set part, for an export that can reject
FORMAT = "transferkit-onnx"
_FILTERS = {"bicubic": 3, "bilinear": 2, "nearest": 0}  # PIL.Image.Resampling values


def _open_set_parts(folder: Path, manifest: dict):
    """(head, ``openset.OpenSet``) of an export that carries them (``OPEN_SET_FILE``), else (None, None)."""
    info = manifest.get("open_set")
    if not info:
        return None, None
    from safetensors.numpy import load_file

    from .heads import LinearHead
    from .openset import OpenSet

    if not isinstance(info, dict) or not isinstance(info.get("head"), dict) or not isinstance(info.get("open_set"), dict):
        raise BundleError(f"{folder / MANIFEST}: its open-set entry is damaged. Export the model again.")
    try:
        tensors = load_file(str(folder / OPEN_SET_FILE))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise BundleError(f"{folder / OPEN_SET_FILE} cannot be read ({str(exc)[:120]}). Export the model again.") \
            from None
    part = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("open_set.")}
    head = LinearHead.load(info["head"], {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("head.")})
    return head, OpenSet.load(info["open_set"], part)


def is_export(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_manifest(folder: Path, manifest: dict) -> None:
    """Write an export's manifest with the SHA-256 of every other file in the folder and a digest of the manifest
    itself, which loading checks (``check_manifest``)."""
    files = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    sealed = {k: v for k, v in manifest.items() if k != "digest"} | {"sha256": files}
    sealed["digest"] = _document_digest(sealed)
    (folder / MANIFEST).write_text(json.dumps(sealed, indent=1))


def check_manifest(folder: Path, manifest: dict, graph: str) -> None:
    """Refuse an export whose manifest or files are not as written: each file it lists (the graph, the tokenizer)
    must have its recorded SHA-256, the manifest its own digest. Exports of format 1 carry neither."""
    if manifest.get("format_version", 1) < 2:
        return
    where = folder / MANIFEST
    if manifest.get("digest") != _document_digest(manifest):
        raise BundleError(f"{where} was edited after export (its digest does not match): the class list or settings "
                          "may not be the graph's. Export the model again.")
    files = manifest.get("sha256") if isinstance(manifest.get("sha256"), dict) else {}
    needed = {graph, *([manifest["tokenizer"]] if manifest.get("modality") == "text" else []),
              *([OPEN_SET_FILE] if manifest.get("open_set") else [])}
    for name in needed:
        if name not in files:
            raise BundleError(f"{folder / name} is not listed in {where}: it was not written by this export.")
        if not (folder / name).is_file():
            raise BundleError(f"{folder / name} is missing; the export is incomplete. Export the model again.")
        if _sha256(folder / name) != files[name]:
            raise BundleError(f"{folder / name} is not the file that was exported (its SHA-256 differs from {where}). "
                              "Export the model again.")


def _document_digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def prepare_image(image, pre: dict, out: np.ndarray | None = None) -> np.ndarray:
    """timm's eval transform (center crop mode) with PIL and numpy: float32 CHW, written into ``out`` where given (a
    batch's row: the batch is then neither stacked nor its memory touched for the first time, each a copy's cost).
    An RGB image, or a grayscale one (mode L: resized once, then written to the three channels, the numbers its RGB
    copy gives)."""
    from PIL import Image

    size = int(pre["input_size"])
    scale = math.floor(size / float(pre.get("crop_pct", 0.875)))
    w, h = image.size
    if w <= h:
        new = (scale, int(scale * h / w))
    else:
        new = (int(scale * w / h), scale)
    resized = image.resize(new, Image.Resampling(_FILTERS[pre.get("interpolation", "bicubic")]))
    left = int(round((new[0] - size) / 2.0))
    top = int(round((new[1] - size) / 2.0))
    cropped = resized.crop((left, top, left + size, top + size))
    # (x / 255 - mean) / std as one multiply and one subtract per channel: the same values to float32 rounding
    mean, std = np.asarray(pre["mean"], np.float32), np.asarray(pre["std"], np.float32)
    scale, shift = 1 / (255 * std), mean / std
    pixels = np.asarray(cropped)
    x = np.empty((3, size, size), np.float32) if out is None else out
    channels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    np.multiply(channels, scale[:, None, None], out=x, dtype=np.float32)
    x -= shift[:, None, None]
    return x


# the share of its export's labeled check an int8 graph may answer differently from float32 and still be chosen by
# itself: it bounds the accuracy change on those items (the change alone can hide flips that cancel out)
INT8_MAX_COST = 0.005


def onnx_graph(manifest: dict, int8: bool | None = None) -> str:
    """The graph of an ONNX export this machine runs: its int8 graph where this CPU runs int8 natively
    (``runtime.native_int8``, or ``int8`` where given) and the export has one that either gave float32's class for
    all but ``INT8_MAX_COST`` of its labeled check at export time (``export --quantize int8``: its accuracy there
    moved by no more) or was made for this machine from backbones calibrated once on photos and drawings of them
    (``MACHINE_CALIBRATION``: the export ``predict`` caches, where the benchmarks measured what int8 costs on
    average); else the float32 graph."""
    from .runtime import native_int8

    quantized = manifest.get("quantized") or {}
    agreement = quantized.get("argmax_agreement")
    fits = quantized.get("file") and (isinstance(agreement, (int, float)) and 1 - agreement <= INT8_MAX_COST
                                      or quantized.get("calibration") == MACHINE_CALIBRATION)
    return str(quantized["file"]) if fits and (native_int8() if int8 is None else int8) else GRAPH


def int8_graph(folder: Path) -> str:
    """The int8 graph of an export folder, for ``--runtime int8`` (whatever its check measured); a clear error where
    the folder has none."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        manifest = {}
    quantized = manifest.get("quantized") if isinstance(manifest, dict) else None
    if not isinstance(quantized, dict) or not quantized.get("file"):
        raise BadInputError(f"{folder} has no int8 graph for --runtime int8. Write one with `transferkit export MODEL "
                            "--out DIR --quantize int8 --check-data LABELED_DATA` and give DIR.")
    return str(quantized["file"])


class OnnxPredictor(Inference):
    """An export folder loaded for inference; the same interface as :class:`~transferkit.predictor.Predictor`."""

    runtime = "onnx"

    def __init__(self, folder: Path, manifest: dict, session, settings: dict, verbose: bool = False,
                 graph: str = GRAPH, spinning: bool = True) -> None:
        self.folder = folder
        self.graph = graph  # the graph file it runs (``onnx_graph`` chooses)
        self.manifest = manifest
        self.session = session
        self.spinning = spinning
        self._one_thread_session = None  # for batches run side by side, one per core (``_batches_side_by_side``)
        self.modality = manifest["modality"]
        self.classes = np.array(manifest["classes"])
        self.target = manifest.get("target")  # several labels or numbers (``targets``); absent: one class
        self.head, self.open_set = _open_set_parts(folder, manifest)  # an export that can tell items of no class
        self.settings = settings
        self.report = FitReport.from_dict(manifest.get("model") if isinstance(manifest.get("model"), dict) else {})
        self.verbose = verbose
        self.use_cache = False  # nothing is cached: the graph runs every time
        # read now, as the graph is: a process keeps running an export whose folder is removed (``cache.prune_exports``)
        self._tokenizer = self._read_tokenizer() if self.modality == "text" else None

    @property
    def train_digests(self) -> list[str]:
        return []

    @classmethod
    def load(cls, folder: str | Path, graph: str | None = None, verbose: bool = False, spinning: bool = True,
             **settings) -> OnnxPredictor:
        from .extras import require

        require("export")
        from .predictor import check_settings

        folder = Path(folder)
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{folder / MANIFEST} cannot be read ({exc}); the export is damaged.") from None
        if manifest.get("format") != "transferkit-onnx" or manifest.get("modality") not in ("image", "text"):
            raise BundleError(f"{folder} is not a transferkit ONNX export.")
        graph = graph or onnx_graph(manifest)  # int8 where this CPU runs it natively and it kept float32's answers
        if "/" in graph or graph.startswith("."):
            raise BadInputError(f"{graph!r} is not a graph file name in {folder}.")
        check_manifest(folder, manifest, graph)
        path = folder / graph
        session = open_session(path, spinning)
        classes, outputs = manifest.get("classes"), session.get_outputs()[0].shape[-1]
        if manifest.get("target") is not None:
            from .predictor import check_target

            kind = manifest["target"].get("kind") if isinstance(manifest["target"], dict) else None
            check_target(manifest["target"], classes, {"labels": "sigmoid", "number": "identity"}.get(kind, ""),
                         outputs if isinstance(outputs, int) else len(classes or [0]), folder / MANIFEST)
        if not isinstance(classes, list) or (isinstance(outputs, int) and max(len(classes), 1) != outputs):
            raise BundleError(f"{folder / MANIFEST} names {len(classes) if isinstance(classes, list) else 'no'} "
                              f"classes but the graph {path.name} gives {outputs} probabilities. The manifest was "
                              "edited; export the model again.")
        modality = manifest["modality"]
        keep = {k: v for k, v in settings.items() if k in ("batch_size", "tta", "path_column", "text_column",
                                                          "label_column")}
        merged = check_settings(modality, {"long_text": manifest.get("long_text", "truncate")} | keep
                                if modality == "text" else keep)
        return cls(folder, manifest, session, merged, verbose, graph=path.name, spinning=spinning)

    def _opened_one_thread_session(self) -> bool:
        """Whether the session of one thread ``_batches_side_by_side`` runs is open, opened now where it is not; False
        where the graph's file has gone since (``cache.prune_exports`` removed the export: the one session runs)."""
        if self._one_thread_session is None:
            try:
                self._one_thread_session = open_session(self.folder / self.graph, self.spinning, threads=1)
            except BundleError:
                return False
        return True

    def item_key(self, item) -> str:
        if self.modality == "text":
            return hashlib.sha256(str(item).encode("utf-8", errors="replace")).hexdigest()
        if isinstance(item, (str, os.PathLike)):
            return hashlib.sha256(Path(item).read_bytes()).hexdigest()
        image = as_image(item)
        return hashlib.sha256(repr((image.mode, image.size)).encode() + image.tobytes()).hexdigest()

    # -- predicting --------------------------------------------------------------------------------------------------
    def _run(self, items: Sequence) -> tuple[np.ndarray, np.ndarray, list, np.ndarray | None]:
        """Probabilities, the readable mask, why the others were not, and the features (the graph's second output,
        where it has one)."""
        items = list(items)
        if self.modality == "text":
            proba, features = self._run_texts([plain_text(t) for t in items])
            return proba, np.ones(len(items), bool), [], features
        return self._run_images(items)

    def _run_images(self, items: list) -> tuple[np.ndarray, np.ndarray, list, np.ndarray | None]:
        """``_run`` for images, batch by batch: with two batches or more, each core's thread reads, prepares and runs
        its share of each batch on a session of one thread, so no core waits for a thread the reading took
        (``_batches_side_by_side``); else the graph runs each batch on every core while a second thread reads the
        next (``_batches_in_turn``)."""
        from .runtime import cpu_threads

        size, threads = self.settings["batch_size"], cpu_threads()
        if threads > 1 and len(items) >= 2 * size and self._opened_one_thread_session():
            # the batch shared among the threads: as many images in flight, and as much memory, as one batch
            done = self._batches_side_by_side(items, -(-size // threads), threads)
        else:
            done = self._batches_in_turn(items, size)
        ok = np.zeros(len(items), bool)
        skipped, rows, mirrored, features = [], [], [], []
        for outputs, read, unread in done:
            ok[read] = True
            skipped += unread
            if outputs is not None:
                rows.append(outputs[0])
                features += [outputs[1]] if outputs[1] is not None else []
                mirrored += [outputs[2]] if outputs[2] is not None else []
        proba = np.concatenate(rows) if rows else np.zeros((0, len(self.classes)))
        if mirrored:
            proba = (proba + np.concatenate(mirrored)) / 2
        return proba.astype(np.float64), ok, skipped, np.concatenate(features) if features else None

    def _batches_in_turn(self, items: list, size: int) -> list[tuple]:
        """Each batch read and prepared on a second thread while the graph runs the one before on every core (PIL's
        decoding and resizing release the interpreter, as ONNX Runtime does), into one of two sets of arrays the two
        take in turn: :meth:`_batch_outputs`, the positions read and why the others were not, per batch."""
        from concurrent.futures import ThreadPoolExecutor

        starts, done = list(range(0, len(items), size)), []
        buffers = [self._buffers(min(size, len(items))) for _ in starts[:2]]
        with ThreadPoolExecutor(1) as reader:
            pending = reader.submit(self._prepared, items, starts[0], size, buffers[0]) if starts else None
            for i in range(len(starts)):
                batch, flipped, read, unread = pending.result()
                if i + 1 < len(starts):  # into the arrays the graph read last, which it has finished with
                    pending = reader.submit(self._prepared, items, starts[i + 1], size, buffers[(i + 1) % 2])
                done.append((self._batch_outputs(self.session, batch, flipped) if read else None, read, unread))
        return done

    def _batches_side_by_side(self, items: list, size: int, threads: int) -> list[tuple]:
        """:meth:`_batches_in_turn`'s answer from ``threads`` threads, each reading, preparing and running whole
        batches into arrays of its own on the one session of one thread."""
        import threading
        from concurrent.futures import ThreadPoolExecutor

        own = threading.local()

        def run(start: int) -> tuple:
            if not hasattr(own, "buffers"):
                own.buffers = self._buffers(size)
            batch, flipped, read, unread = self._prepared(items, start, size, own.buffers)
            return self._batch_outputs(self._one_thread_session, batch, flipped) if read else None, read, unread

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(run, range(0, len(items), size)))

    def _batch_outputs(self, session, batch: dict, flipped: dict) -> tuple:
        """The graph's probabilities for a prepared batch, its features (None where it gives none) and, with TTA, its
        probabilities for the mirror images."""
        outputs = session.run(None, batch)
        return (outputs[0], outputs[1] if len(outputs) > 1 else None,
                session.run(None, flipped)[0] if self.settings.get("tta") else None)

    def _buffers(self, rows: int) -> tuple[dict, dict]:
        """Arrays for a batch of ``rows`` images of each of the graph's inputs, and of their mirror images with TTA."""
        def arrays() -> dict:
            return {i["name"]: np.empty((rows, 3, *(2 * [int(i["preprocessing"]["input_size"])])), np.float32)
                    for i in self.manifest["inputs"]}

        return arrays(), arrays() if self.settings.get("tta") else {}

    def _prepared(self, items: list, start: int, size: int, buffers: tuple[dict, dict]) -> tuple[dict, dict,
                                                                                                   list[int], list]:
        """The graph's inputs for ``items[start:start + size]`` (and their mirror images with TTA), written into
        ``buffers`` (:meth:`_buffers`), the positions of the items read, and why the others were not."""
        from PIL import Image

        from .data.files import MAX_ITEM_BYTES, check_regular_file

        inputs = self.manifest["inputs"]
        batch, flipped = buffers
        read, unread = [], []
        for j, item in enumerate(items[start: start + size], start=start):
            try:
                if isinstance(item, (str, os.PathLike)):
                    check_regular_file(item, "image", MAX_ITEM_BYTES)
                    image = load_image(item, gray=True)  # prepared as its RGB copy would be
                else:
                    image = as_image(item, gray=True)
            except ImageDecodeError as exc:
                unread.append((item, exc.reason))
                continue
            except (BadInputError, ItemError) as exc:
                unread.append((item, "file not found" if "does not exist" in str(exc) else str(exc)))
                continue
            row = len(read)
            read.append(j)
            mirror = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if self.settings.get("tta") else None
            for spec in inputs:
                prepare_image(image, spec["preprocessing"], batch[spec["name"]][row])
                if mirror is not None:  # mirrored once per image, prepared for each input
                    prepare_image(mirror, spec["preprocessing"], flipped[spec["name"]][row])
        return ({k: v[:len(read)] for k, v in batch.items()}, {k: v[:len(read)] for k, v in flipped.items()}, read,
                unread)

    def _read_tokenizer(self):
        from tokenizers import Tokenizer

        if self.manifest.get("long_text") == "chunk":
            return None  # an export written before ``export`` refused these: refused when it meets a text
        tokenizer = Tokenizer.from_file(str(self.folder / self.manifest["tokenizer"]))
        tokenizer.enable_truncation(int(self.manifest["max_tokens"]))
        tokenizer.enable_padding()
        return tokenizer

    def _run_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        if self._tokenizer is None:
            raise BadInputError("This model averages windows of long texts (long_text=chunk), which the ONNX "
                                "runtime does not do yet; predict with the model folder instead.")
        names = self.manifest["input_names"]
        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        out, features = [], []
        size = self.settings["batch_size"]
        for start in range(0, len(texts), size):
            encodings = self._tokenizer.encode_batch(texts[start: start + size])
            feed = {n: np.array([getattr(e, fields[n]) for e in encodings], dtype=np.int64) for n in names}
            outputs = self.session.run(None, feed)
            out.append(outputs[0])
            features.extend(outputs[1:2])
        proba = (np.concatenate(out) if out else np.zeros((0, len(self.classes)))).astype(np.float64)
        return proba, np.concatenate(features) if features else None
