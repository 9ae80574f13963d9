"""The bad-input corpus: every kind of broken input and fault found in a red-team pass over the CLI, made here by the
test itself, each run through the real command line. Each case states the exit code, what the message must say
(the file or row, and the fix), and that nothing outside the command's own output was written, replaced or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import reseal
from PIL import Image
from typer.testing import CliRunner

from transferkit.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    setup: Callable[[Path, dict], list[str]]  # makes the input under a folder, returns the CLI arguments
    code: int
    says: list[str]  # substrings the output must hold (the file or row, and the fix)
    may_write: list[str] = field(default_factory=list)  # paths (relative) the command may create


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = "special"
    return out


def _images(folder: Path, classes=("cats", "dogs"), n: int = 3) -> Path:
    for c, colour in zip(classes, ((200, 40, 40), (40, 40, 200), (40, 200, 40))):
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (40, 40), tuple(v + 10 * i for v in colour)).save(folder / c / f"{i}.png")
    return folder


def _fit(data: Path, ctx: dict, *extra: str) -> list[str]:
    return ["fit", str(data), "--out", str(data.parent / "model"), "--model", ctx["tiny"], "--strategy", "features",
            *extra]


def _model(root: Path, ctx: dict) -> Path:
    """A fitted image model (shared, copied into the case's folder)."""
    shutil.copytree(ctx["model"], root / "model")
    return root / "model"


def _text_model(root: Path, ctx: dict) -> Path:
    shutil.copytree(ctx["text_model"], root / "textmodel")
    return root / "textmodel"


def _edit_json(path: Path, edit) -> None:
    """Edit a file of a model folder and rewrite its manifest to match, as someone editing on purpose would: the
    checks behind the manifest are what the case meets (plain edits are ``edited_without_the_manifest``)."""
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))
    folder = next((p for p in path.parents if (p / "manifest.json").is_file()), None)
    if folder is not None:
        reseal(folder)


class Payload:
    """Unpickling this would create a file: proof that a refused file was never executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# -- images -----------------------------------------------------------------------------------------------------------

def corrupt_image(root, ctx):
    data = _images(root / "data")
    (data / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return _fit(data, ctx)


def zero_byte_image(root, ctx):
    data = _images(root / "data")
    (data / "dogs" / "empty.jpg").write_bytes(b"")
    return _fit(data, ctx)


def html_as_jpeg(root, ctx):
    data = _images(root / "data")
    (data / "dogs" / "page.jpg").write_text("<html><body>404 Not Found</body></html>")
    return _fit(data, ctx)


def truncated_jpeg(root, ctx):
    data = _images(root / "data")
    Image.new("RGB", (300, 300), (9, 9, 9)).save(root / "full.jpg")
    (data / "cats" / "cut.jpg").write_bytes((root / "full.jpg").read_bytes()[:200])
    (root / "full.jpg").unlink()
    return _fit(data, ctx)


def decompression_bomb(root, ctx):
    data = _images(root / "data")
    Image.new("1", (20000, 20000)).save(data / "cats" / "bomb.png")  # 400 megapixels, a few KB on disk
    return _fit(data, ctx)


def fifo_image(root, ctx):
    data = _images(root / "data")
    os.mkfifo(data / "cats" / "pipe.png")
    return _fit(data, ctx)


def dangling_link(root, ctx):
    data = _images(root / "data")
    (data / "cats" / "gone.png").symlink_to(root / "nowhere.png")
    return _fit(data, ctx)


def link_loop(root, ctx):
    data = _images(root / "data")
    (data / "cats" / "again").symlink_to(data / "cats", target_is_directory=True)
    return _fit(data, ctx)


def empty_class_folder(root, ctx):
    data = _images(root / "data")
    (data / "birds").mkdir()
    return _fit(data, ctx)


def class_of_unsupported_files(root, ctx):
    data = _images(root / "data")
    (data / "birds").mkdir()
    (data / "birds" / "a.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (data / "birds" / "b.svg").write_text("<svg/>")
    return _fit(data, ctx)


def dataset_parent(root, ctx):
    _images(root / "data" / "train")
    _images(root / "data" / "test")
    return _fit(root / "data", ctx)


def one_class(root, ctx):
    return _fit(_images(root / "data", classes=("cats",)), ctx)


def class_with_one_image(root, ctx):
    data = _images(root / "data")
    (data / "birds").mkdir()
    Image.new("RGB", (40, 40)).save(data / "birds" / "only.png")
    return _fit(data, ctx)


def no_images_at_all(root, ctx):
    (root / "data").mkdir()
    (root / "data" / "notes.docx").write_bytes(b"PK\x03\x04 a document")
    return ["fit", str(root / "data"), "--out", str(root / "model"), "--strategy", "features", "--model", ctx["tiny"]]


def missing_data(root, ctx):
    return _fit(root / "no-such-folder", ctx)


def data_is_a_device(root, ctx):
    return ["fit", "/dev/zero", "--out", str(root / "model")]


def predict_missing_file(root, ctx):
    return ["predict", str(_model(root, ctx)), str(root / "missing.png")]


def predict_text_on_image_model(root, ctx):
    return ["predict", str(_model(root, ctx)), "a lovely sunny day"]


# -- tables -----------------------------------------------------------------------------------------------------------

def manifest_names_a_fifo(root, ctx):
    _images(root / "data")
    os.mkfifo(root / "data" / "pipe.png")
    (root / "data" / "m.csv").write_text("path,label\ncats/0.png,cats\ncats/1.png,cats\ndogs/0.png,dogs\n"
                                         "dogs/1.png,dogs\npipe.png,dogs\n")
    return _fit(root / "data" / "m.csv", ctx)


def manifest_names_dev_zero(root, ctx):
    _images(root / "data")
    (root / "data" / "m.csv").write_text("path,label\ncats/0.png,cats\ncats/1.png,cats\ndogs/0.png,dogs\n"
                                         "dogs/1.png,dogs\n/dev/zero,dogs\n")
    return _fit(root / "data" / "m.csv", ctx)


def manifest_conflicting_rows(root, ctx):
    _images(root / "data")
    (root / "data" / "m.csv").write_text("path,label\ncats/0.png,cats\ncats/0.png,dogs\n")
    return _fit(root / "data" / "m.csv", ctx)


def manifest_empty_label(root, ctx):
    _images(root / "data")
    (root / "data" / "m.csv").write_text("path,label\ncats/0.png,cats\ncats/1.png,\n")
    return _fit(root / "data" / "m.csv", ctx)


def manifest_without_path_column(root, ctx):
    (root / "m.csv").write_text("name,label\nalice,x\nbob,y\n")
    return ["fit", str(root / "m.csv"), "--out", str(root / "model"), "--path-column", "picture"]


def image_paths_read_as_text(root, ctx):
    _images(root / "data")
    (root / "data" / "m.csv").write_text("filename,category\ncats/0.png,cats\ndogs/0.png,dogs\n")
    return ["fit", str(root / "data" / "m.csv"), "--out", str(root / "model"), "--text-column", "filename",
            "--label-column", "category"]


def utf16_table(root, ctx):
    (root / "t.csv").write_bytes("text,label\ngood movie,pos\nbad movie,neg\n".encode("utf-16"))
    return ["fit", str(root / "t.csv"), "--out", str(root / "model")]


def broken_jsonl_line(root, ctx):
    (root / "t.jsonl").write_text('{"text": "fine", "label": "a"}\n{"text": "broken", "label": \n')
    return ["fit", str(root / "t.jsonl"), "--out", str(root / "model")]


def empty_table(root, ctx):
    (root / "t.csv").write_text("")
    return ["fit", str(root / "t.csv"), "--out", str(root / "model")]


def table_is_a_fifo(root, ctx):
    os.mkfifo(root / "t.csv")
    return ["fit", str(root / "t.csv"), "--out", str(root / "model")]


def text_column_that_does_not_exist(root, ctx):
    (root / "t.csv").write_text("review,stars\ngood,5\nbad,1\n")
    return ["fit", str(root / "t.csv"), "--out", str(root / "model"), "--text-column", "body"]


# -- model folders ---------------------------------------------------------------------------------------------------

def classes_added(root, ctx):
    model = _model(root, ctx)
    _edit_json(model / "transferkit.json", lambda d: d.update(classes=d["classes"] + ["ghost"]))
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def classes_reordered(root, ctx):
    model = _model(root, ctx)
    _edit_json(model / "transferkit.json", lambda d: d.update(classes=d["classes"][::-1]))
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def another_architecture_named(root, ctx):
    model = _model(root, ctx)
    _edit_json(model / "featurizer" / "config.json", lambda d: d["spec"].update(arch="mobilenetv3_small_050"))
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def weights_truncated(root, ctx):
    model = _model(root, ctx)
    weights = model / "featurizer" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def description_not_json(root, ctx):
    model = _model(root, ctx)
    (model / "transferkit.json").write_text("{ not json")
    return ["evaluate", str(model), str(ROOT / "examples/clipart/test")]


def newer_format(root, ctx):
    model = _model(root, ctx)
    _edit_json(model / "transferkit.json", lambda d: d.update(format_version=99))
    return ["evaluate", str(model), str(ROOT / "examples/clipart/test")]


def component_path_traversal(root, ctx):
    model = _model(root, ctx)
    _edit_json(model / "transferkit.json", lambda d: d.update(components=[{"name": "../../etc", "kind": "x"}]))
    return ["evaluate", str(model), str(ROOT / "examples/clipart/test")]


def edited_without_the_manifest(root, ctx):
    model = _model(root, ctx)
    (model / "head" / "config.json").write_text((model / "head" / "config.json").read_text().replace("[", "[ ", 1))
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def head_weights_missing(root, ctx):
    model = _model(root, ctx)
    (model / "head" / "model.safetensors").unlink()
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def text_model_naming_a_module(root, ctx):
    model = _text_model(root, ctx)
    _edit_json(model / "featurizer" / "config.json",
               lambda d: d["spec"].update(name="zen", source="package", package_module="this.model"))
    return ["predict", str(model), "--text", "great value"]


def torchvision_callable_named(root, ctx):
    model = _model(root, ctx)
    _edit_json(model / "featurizer" / "config.json", lambda d: d["spec"].update(kind="torchvision", arch="get_model"))
    return ["predict", str(model), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def not_a_model_folder(root, ctx):
    (root / "folder").mkdir()
    return ["predict", str(root / "folder"), str(ROOT / "examples/clipart/test/birds" / ctx["bird"])]


def format1_params_try_to_choose_the_cache(root, ctx):
    shutil.copytree(ROOT / "tests/fixtures/format1/text-scratch", root / "old")
    _edit_json(root / "old" / "transferkit.json", lambda d: d["params"].update(cache_dir=str(root / "hijacked")))
    return ["predict", str(root / "old"), "--text", "a goal in the last minute"]


# -- weights and encoders ---------------------------------------------------------------------------------------------

def weights_with_pickled_payload(root, ctx):
    marker = root / "executed"
    with open(root / "evil.pth", "wb") as fh:
        pickle.dump({"conv_stem.weight": Payload(str(marker))}, fh)
    return _fit(_images(root / "data"), ctx, "--weights", str(root / "evil.pth"))


def weights_of_another_shape(root, ctx):
    import torch

    torch.save({"conv_stem.weight": torch.zeros(3, 3, 3, 3)}, root / "small.pth")
    return ["fit", str(_images(root / "data")), "--out", str(root / "model"), "--strategy", "features", "--weights",
            str(root / "small.pth")]


def weights_missing(root, ctx):
    return _fit(_images(root / "data"), ctx, "--weights", str(root / "nope.safetensors"))


def encoder_with_pickled_weights(root, ctx):
    folder = root / "encoder"
    shutil.copytree(ctx["encoder"], folder)
    (folder / "model.safetensors").unlink()
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"w": Payload(str(root / "executed"))}, fh)
    (root / "t.csv").write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(6)))
    return ["fit", str(root / "t.csv"), "--out", str(root / "model"), "--model", str(folder), "--strategy", "features"]


def encoder_modules_naming_a_shell(root, ctx):
    folder = root / "encoder"
    shutil.copytree(ctx["encoder"], folder)
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "",
                                                      "type": "subprocess.getoutput"}]))
    (root / "t.csv").write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(6)))
    return ["fit", str(root / "t.csv"), "--out", str(root / "model"), "--model", str(folder), "--strategy", "features"]


# -- arguments and destinations ---------------------------------------------------------------------------------------

def negative_seed(root, ctx):
    return _fit(_images(root / "data"), ctx, "--seed", "-1")


def unknown_strategy(root, ctx):
    return ["fit", str(_images(root / "data")), "--out", str(root / "model"), "--strategy", "magic"]


def out_is_a_users_folder(root, ctx):
    (root / "photos").mkdir()
    (root / "photos" / "holiday.jpg").write_bytes(b"precious")
    return ["fit", str(_images(root / "data")), "--out", str(root / "photos"), "--model", ctx["tiny"]]


def out_is_a_model_without_overwrite(root, ctx):
    _model(root, ctx)
    return ["fit", str(_images(root / "data")), "--out", str(root / "model"), "--model", ctx["tiny"]]


def out_is_a_file(root, ctx):
    (root / "notes.txt").write_text("mine")
    return ["fit", str(_images(root / "data")), "--out", str(root / "notes.txt")]


def report_over_the_models_weights(root, ctx):
    model = _model(root, ctx)
    return ["evaluate", str(model), str(ROOT / "examples/clipart/test"), "--report",
            str(model / "featurizer" / "model.safetensors")]


def report_to_a_device(root, ctx):
    return ["evaluate", str(_model(root, ctx)), str(ROOT / "examples/clipart/test"), "--report", "/dev/null"]


def port_out_of_range(root, ctx):
    return ["serve", str(_model(root, ctx)), "--port", "0"]


def report_over_a_users_file(root, ctx):
    (root / "thesis.html").write_text("<html>my thesis</html>")
    return ["evaluate", str(_model(root, ctx)), str(ROOT / "examples/clipart/test"), "--report",
            str(root / "thesis.html")]


def path_longer_than_the_os_allows(root, ctx):
    return ["fit", str(root / ("x" * 5000)), "--out", str(root / "model")]


def leftover_checkpoints_without_resume(root, ctx):
    (root / ".model.training" / "checkpoints").mkdir(parents=True)
    (root / ".model.training" / "checkpoints" / "last.ckpt").write_bytes(b"from an interrupted fit")
    return _fit(_images(root / "data"), ctx)


def resume_from_another_fits_checkpoint(root, ctx):
    import torch

    (root / ".model.training" / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 3, "state_dict": {"network.classifier.weight": torch.zeros(7, 4)}},
               root / ".model.training" / "checkpoints" / "last.ckpt")
    return ["fit", str(_images(root / "data", n=5)), "--out", str(root / "model"), "--model", ctx["tiny"],
            "--strategy", "finetune", "--epochs", "1", "--resume"]


def out_holds_the_users_own_transferkit_json(root, ctx):
    """The folder's file is the user's, not a model description: it was once called a model, and --overwrite (which
    the message advised) replaced it."""
    (root / "d").mkdir()
    (root / "d" / "transferkit.json").write_text('{"my": "settings"}')
    return ["fit", str(_images(root / "data")), "--out", str(root / "d"), "--model", ctx["tiny"], "--overwrite"]


def batch_size_zero_for_images(root, ctx):
    return _fit(_images(root / "data"), ctx, "--batch-size", "0")


def batch_size_zero_for_texts(root, ctx):
    (root / "t.csv").write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(6)))
    return ["fit", str(root / "t.csv"), "--out", str(root / "model"), "--model", ctx["encoder"], "--strategy",
            "features", "--batch-size", "0"]


def val_fraction_over_one_for_features(root, ctx):
    return _fit(_images(root / "data"), ctx, "--val-fraction", "1.5")


def val_fraction_negative_for_features(root, ctx):
    return _fit(_images(root / "data"), ctx, "--val-fraction", "-0.5")


def ray_address_nobody_answers(root, ctx):
    """With a cold feature cache (images no other case has), Ray once retried the address for minutes."""
    for c, colour in (("owls", (7, 77, 177)), ("larks", (177, 7, 77))):
        (root / "data" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (41, 39), tuple(v + 3 * i for v in colour)).save(root / "data" / c / f"{i}.png")
    return _fit(root / "data", ctx, "--engine", "ray", "--ray-address", "127.0.0.1:1")


def text_option_on_images(root, ctx):
    return _fit(_images(root / "data"), ctx, "--text-column", "body")


def mistyped_file_for_a_text_model(root, ctx):
    return ["predict", str(_text_model(root, ctx)), "reviews_2024.csv"]


def tta_on_a_text_model(root, ctx):
    return ["predict", str(_text_model(root, ctx)), "--tta", "hello there"]


CASES = [
    # images: skipped and listed, never fatal while each class keeps two readable images
    Case("corrupt image", corrupt_image, 0, ["broken.png", "not an image file"], ["model"]),
    Case("zero-byte image", zero_byte_image, 0, ["empty.jpg", "not an image file"], ["model"]),
    Case("HTML named .jpg", html_as_jpeg, 0, ["page.jpg", "not an image file"], ["model"]),
    Case("truncated JPEG", truncated_jpeg, 0, ["cut.jpg"], ["model"]),
    Case("decompression bomb", decompression_bomb, 0, ["bomb.png", "too large"], ["model"]),
    Case("FIFO named .png", fifo_image, 0, ["pipe.png", "not a regular file"], ["model"]),
    Case("dangling symlink", dangling_link, 0, ["gone.png", "a link to nothing"], ["model"]),
    Case("symlink loop", link_loop, 0, ["again", "reached twice"], ["model"]),
    Case("empty class folder", empty_class_folder, 2, ["birds", "holds no files", "remove the folder"]),
    Case("class of HEIC and SVG", class_of_unsupported_files, 2, ["birds", ".heic", "convert images"]),
    Case("parent of train/ and test/", dataset_parent, 2, ["splits", "data/train"]),
    Case("a single class", one_class, 2, ["single class", "folder or label per class"]),
    Case("a class with one image", class_with_one_image, 2, ["'birds' has a single image", "Add images"]),
    Case("a folder without images", no_images_at_all, 2, ["holds no images", "subfolder per class"]),
    Case("missing data", missing_data, 2, ["no-such-folder", "does not exist"]),
    Case("/dev/zero as data", data_is_a_device, 2, ["/dev/zero", "neither a folder"]),
    Case("predict a missing file", predict_missing_file, 2, ["missing.png", "file not found"]),
    Case("predict words with an image model", predict_text_on_image_model, 2, ["a lovely sunny day", "could be read"]),
    # tables
    Case("manifest names a FIFO", manifest_names_a_fifo, 0, ["pipe.png", "not a regular file"], ["data/model"]),
    Case("manifest names /dev/zero", manifest_names_dev_zero, 0, ["/dev/zero", "not a regular file"], ["data/model"]),
    Case("one file, two labels", manifest_conflicting_rows, 2, ["cats/0.png", "row 2", "row 3", "one label per image"]),
    Case("empty label", manifest_empty_label, 2, ["row 3", "empty label"]),
    Case("no path column", manifest_without_path_column, 2, ["m.csv", "no column 'picture'"]),
    Case("image paths as text", image_paths_read_as_text, 2, ["'filename' holds image file names", "--path-column"]),
    Case("UTF-16 table", utf16_table, 2, ["t.csv", "UTF-16", "Save it as UTF-8"]),
    Case("broken JSON line", broken_jsonl_line, 2, ["t.jsonl", "line 2", "one JSON object"]),
    Case("empty table", empty_table, 2, ["t.csv", "is empty", "header row"]),
    Case("table is a FIFO", table_is_a_fifo, 2, ["t.csv", "not a regular file"]),
    Case("unknown text column", text_column_that_does_not_exist, 2, ["no column 'body'", "'review', 'stars'"]),
    # model folders
    Case("class list extended", classes_added, 2, ["names 7 classes but its head predicts 6", "refit"]),
    Case("class list reordered", classes_reordered, 2, ["not the one the head learned", "reordered"]),
    Case("another architecture named", another_architecture_named, 2, ["do not fit architecture", "refit"]),
    Case("truncated weights", weights_truncated, 2, ["model.safetensors", "damaged"]),
    Case("description not JSON", description_not_json, 2, ["transferkit.json", "not valid JSON"]),
    Case("newer format", newer_format, 2, ["newer transferkit", "upgrade"]),
    Case("component path traversal", component_path_traversal, 2, ["../../etc", "not valid"]),
    Case("edited, manifest not", edited_without_the_manifest, 2, ["head/config.json", "not the file that was saved",
                                                                  "unmodified copy"]),
    Case("head weights missing", head_weights_missing, 2, ["head/model.safetensors is missing", "complete copy"]),
    Case("text model naming a module", text_model_naming_a_module, 2, ["'zen'", "no zoo model of that name"]),
    Case("torchvision callable named", torchvision_callable_named, 2, ["'get_model'", "not a torchvision"]),
    Case("not a model folder", not_a_model_folder, 2, ["folder", "not a transferkit model"]),
    Case("0.1 params choosing the cache", format1_params_try_to_choose_the_cache, 0, ["label"]),
    # weights and encoders
    Case("pickled payload in --weights", weights_with_pickled_payload, 2, ["evil.pth", "never unpickles"]),
    Case("weights of another shape", weights_of_another_shape, 2, ["small.pth", "do not fit", "--model"]),
    Case("missing --weights file", weights_missing, 2, ["nope.safetensors", "does not exist"]),
    Case("encoder with pickled weights", encoder_with_pickled_weights, 2, ["encoder", "Cannot load the text encoder"]),
    Case("encoder naming a shell", encoder_modules_naming_a_shell, 2, ["encoder", "Cannot load the text encoder"]),
    # arguments and destinations
    Case("seed -1", negative_seed, 2, ["seed must be a whole number"]),
    Case("unknown strategy", unknown_strategy, 2, ["--strategy must be one of"]),
    Case("--out is a user's folder", out_is_a_users_folder, 2, ["photos", "not a transferkit model folder"]),
    Case("--out is a model", out_is_a_model_without_overwrite, 2, ["already holds a model", "--overwrite"]),
    Case("--out is a file", out_is_a_file, 2, ["notes.txt", "not a folder"]),
    Case("--report over the weights", report_over_the_models_weights, 2, ["model.safetensors", "not a transferkit report"]),
    Case("--report /dev/null", report_to_a_device, 2, ["/dev/null", "not a regular file"]),
    Case("--report over a user's file", report_over_a_users_file, 2, ["thesis.html", "refusing to overwrite"]),
    Case("path over the OS limit", path_longer_than_the_os_allows, 2, ["xxxx", "File name too long"]),
    Case("leftover checkpoints", leftover_checkpoints_without_resume, 2, [".model.training", "--resume", "--restart"]),
    Case("resume from another fit", resume_from_another_fits_checkpoint, 2, ["another fit", "--restart"]),
    Case("--out holds the user's transferkit.json", out_holds_the_users_own_transferkit_json, 2,
         ["not a transferkit model folder", "Choose another --out"]),
    Case("--batch-size 0 for images", batch_size_zero_for_images, 2, ["batch_size 0", "from 1 to 4096"]),
    Case("--batch-size 0 for texts", batch_size_zero_for_texts, 2, ["batch_size 0", "from 1 to 4096"]),
    Case("--val-fraction 1.5 with features", val_fraction_over_one_for_features, 2, ["val_fraction", "between 0 and 1"]),
    Case("--val-fraction -0.5 with features", val_fraction_negative_for_features, 2, ["val_fraction", "got -0.5"]),
    Case("--ray-address nobody answers", ray_address_nobody_answers, 2, ["No Ray cluster answers at 127.0.0.1:1",
                                                                         "ray start --head"]),
    Case("text option on images", text_option_on_images, 2, ["--text-column applies to texts"]),
    Case("mistyped file for a text model", mistyped_file_for_a_text_model, 2, ["reviews_2024.csv", "--text"]),
    Case("--tta on a text model", tta_on_a_text_model, 2, ["--tta applies to image models"]),
    Case("serve --port 0", port_out_of_range, 2, ["--port", "greater than or equal to 1"]),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, tiny_backbone, tiny_encoder, example_train):
    root = tmp_path_factory.mktemp("corpus")
    model = root / "model"
    assert runner.invoke(app, ["fit", str(example_train), "--out", str(model), "--model", tiny_backbone,
                               "--strategy", "features"]).exit_code == 0
    text = root / "texts.csv"
    text.write_text("text,label\n" + "".join(f"{w} match,sport\n{w} recipe,food\n" for w in ("great", "fine", "odd")))
    text_model = root / "textmodel"
    assert runner.invoke(app, ["fit", str(text), "--out", str(text_model), "--model", tiny_encoder,
                               "--strategy", "features"]).exit_code == 0
    bird = sorted((ROOT / "examples/clipart/test/birds").glob("*.png"))[0].name
    return {"tiny": tiny_backbone, "encoder": tiny_encoder, "model": model, "text_model": text_model, "bird": bird}


def test_the_corpus_holds_sixty_kinds_and_more_each_listed_in_the_docs():
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)
    listed = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    missing = [c.name for c in CASES if f"| {c.name} |" not in listed]
    assert not missing, f"docs/robustness.md does not list {missing}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case, ctx, tmp_path):
    args = case.setup(tmp_path, ctx)
    before = _snapshot(tmp_path)
    result = runner.invoke(app, args)
    output = " ".join(result.output.split())
    assert result.exit_code == case.code, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for expected in case.says:
        assert expected in output, f"{expected!r} not in: {output}"
    after = _snapshot(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    allowed = {k for k in changed if any(k == w or k.startswith(w + os.sep) for w in case.may_write)}
    assert changed == allowed, f"written, replaced or deleted: {sorted(changed - allowed)}"
    assert not (tmp_path / "executed").exists()  # no pickled payload ran
    assert not (tmp_path / "hijacked").exists()  # a model folder does not choose where predict writes
