"""A model folder is data, never code: however its files are edited (and its manifest rewritten to match, as someone
editing on purpose would), loading, predicting and the CLI import nothing and call nothing that a file names. Each
hostile folder here is made by the test; a marker file or a module in ``sys.modules`` proves what did not run."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import reseal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from transferkit import TextClassifier, load_model
from transferkit.cli import app
from transferkit.errors import BundleError, TransferkitError

runner = CliRunner()


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, tiny_encoder, text_csv):
    folder = tmp_path_factory.mktemp("text-model") / "model"
    TextClassifier(encoder=tiny_encoder, strategy="features", verbose=False).fit(text_csv).save(folder)
    return folder


@pytest.fixture(scope="module")
def image_model(tiny_image_model):
    return tiny_image_model


def _edit_spec(folder, **fields) -> None:
    path = folder / "featurizer" / "config.json"
    config = json.loads(path.read_text())
    config["spec"].update(fields)
    path.write_text(json.dumps(config))
    reseal(folder)


def _forget(name: str) -> None:
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_a_package_module_beside_the_folder_is_never_imported(text_model, tmp_path, monkeypatch):
    """The report's case: the folder names ``evilmodel.featurizer`` and holds ``evilmodel/__init__.py``; a script
    beside it (its folder on sys.path) loads it."""
    folder = tmp_path / "evilmodel"
    shutil.copytree(text_model, folder)
    marker = tmp_path / "executed"
    (folder / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    _edit_spec(folder, name="evil", source="package", package="evil==1", package_module="evilmodel.featurizer",
               package_path="model")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    _forget("evilmodel")
    with pytest.raises(BundleError, match="no zoo model of that name"):
        TextClassifier.load("evilmodel")
    assert not marker.exists() and "evilmodel" not in sys.modules


def test_a_builtin_name_takes_the_registrys_package_not_the_folders(text_model, tmp_path, monkeypatch):
    """Naming the zoo's own encoder with another module: the registry's entry is used, the module is never looked up."""
    folder = tmp_path / "evilmodel"
    shutil.copytree(text_model, folder)
    marker = tmp_path / "executed"
    (folder / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    _edit_spec(folder, name="all-MiniLM-L6-v2", source="package", package_module="evilmodel.featurizer",
               package_path="model", path=None)
    monkeypatch.syspath_prepend(str(tmp_path))
    _forget("evilmodel")
    with pytest.raises(BundleError, match="weights changed"):  # the real MiniLM, not the tiny encoder it was fitted on
        TextClassifier.load(folder)
    assert not marker.exists() and "evilmodel" not in sys.modules


def test_a_standard_library_module_named_by_the_folder_is_not_imported(text_model, tmp_path):
    """``package_module = "this.model"`` once printed the Zen of Python, then a traceback."""
    folder = tmp_path / "textmodel"
    shutil.copytree(text_model, folder)
    _edit_spec(folder, name="zen", source="package", package_module="this.model", package_path="x")
    _forget("this")
    result = runner.invoke(app, ["predict", str(folder), "--text", "great value"])
    assert result.exit_code == 2, result.output
    assert "this" not in sys.modules and "Zen of Python" not in result.output and "Traceback" not in result.output
    assert "no zoo model of that name" in " ".join(result.output.split())


@pytest.mark.parametrize("arch", ["get_model", "list_models", "get_weight", "__builtins__", "os.system"])
def test_a_torchvision_name_that_is_no_architecture_is_never_called(image_model, tmp_path, monkeypatch, arch):
    import torchvision

    called = []
    monkeypatch.setattr(torchvision.models, "get_model", lambda *a, **k: called.append(a))
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    _edit_spec(folder, name="x", kind="torchvision", arch=arch, source="local")
    with pytest.raises(BundleError, match="not a torchvision classification model"):
        load_model(folder, verbose=False)
    assert called == []


@pytest.mark.parametrize("arch", ["hf-hub:timm/resnet18.a1_in1k", "local-dir:/tmp", "not_a_model"])
def test_a_timm_name_outside_its_registry_is_refused(image_model, tmp_path, arch):
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    _edit_spec(folder, arch=arch)
    with pytest.raises(BundleError, match="not an architecture timm knows"):
        load_model(folder, verbose=False)


@pytest.mark.parametrize("kind", ["pickle", "importlib", "sentence-transformers", None])
def test_an_image_model_built_by_anything_else_is_refused(image_model, tmp_path, kind):
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    _edit_spec(folder, kind=kind)
    with pytest.raises(BundleError, match="transferkit builds it with timm or torchvision"):
        load_model(folder, verbose=False)


@pytest.mark.parametrize("module", ["this.Zen", "subprocess.getoutput", "os.system"])
def test_an_encoder_folder_whose_modules_name_other_code_is_refused(tiny_encoder, text_csv, tmp_path, module):
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder, encoder)
    (encoder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": module}]))
    top = module.split(".")[0]
    already = top in sys.modules
    with pytest.raises(TransferkitError, match=f"names '{module}', which is not a sentence-transformers module"):
        TextClassifier(encoder=str(encoder), strategy="features", verbose=False).fit(text_csv)
    assert already or top not in sys.modules


def test_a_saved_model_that_points_at_such_an_encoder_is_refused(text_model, tiny_encoder, tmp_path):
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder, encoder)
    (encoder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "this.Zen"}]))
    folder = tmp_path / "model"
    shutil.copytree(text_model, folder)
    _edit_spec(folder, path=str(encoder))
    _forget("this")
    with pytest.raises(TransferkitError, match="never imports code a model folder names"):
        load_model(folder, verbose=False)
    assert "this" not in sys.modules


# -- the manifest: a folder that is not as it was saved ---------------------------------------------------------------

def test_classes_reordered_in_both_files_are_refused(image_model, tmp_path):
    """Reordering the class list the same way in transferkit.json and head/config.json once gave a model that
    predicted wrong labels without a word."""
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    for name in ("transferkit.json", "head/config.json"):
        data = json.loads((folder / name).read_text())
        data["classes"] = data["classes"][::-1]
        (folder / name).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"model/(transferkit|head/config)\.json is not the file that was saved"):
        load_model(folder, verbose=False)


@pytest.mark.parametrize("name", ["head/model.safetensors", "featurizer/config.json", "report.json"])
def test_a_missing_file_is_named(image_model, tmp_path, name):
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    (folder / name).unlink()
    with pytest.raises(BundleError, match=f"{name} is missing"):
        load_model(folder, verbose=False)


def test_a_file_added_after_saving_is_refused(image_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    (folder / "extra").mkdir()
    (folder / "extra" / "config.json").write_text("{}")
    with pytest.raises(BundleError, match="extra/config.json is not in manifest.json"):
        load_model(folder, verbose=False)


def test_the_users_own_files_and_the_card_may_change(image_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    (folder / "README.md").write_text("# my notes on this model\n")
    (folder / "evaluation.html").write_text("<html></html>")
    assert load_model(folder, verbose=False).classes_.tolist() == json.loads(
        (image_model / "transferkit.json").read_text())["classes"]


def test_a_format_2_folder_without_a_manifest_still_loads(image_model, tmp_path):
    """Folders written by transferkit 0.2-0.3 have no manifest; they load as before (unchecked)."""
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    (folder / "manifest.json").unlink()
    document = json.loads((folder / "transferkit.json").read_text())
    document["format_version"] = 2
    (folder / "transferkit.json").write_text(json.dumps(document))
    assert load_model(folder, verbose=False).classes_.tolist() == document["classes"]


def test_a_format_3_folder_without_its_manifest_is_refused(image_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        load_model(folder, verbose=False)


def test_a_format_2_folder_missing_its_head_weights_names_the_file(image_model, tmp_path):
    """Without a manifest to name it, the head says what is missing (it was a KeyError: 'mean')."""
    folder = tmp_path / "model"
    shutil.copytree(image_model, folder)
    (folder / "manifest.json").unlink()
    document = json.loads((folder / "transferkit.json").read_text())
    (folder / "transferkit.json").write_text(json.dumps(document | {"format_version": 2}))
    (folder / "head" / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="head/model.safetensors is missing or damaged"):
        load_model(folder, verbose=False)


_names = st.sampled_from(["this", "__hello__", "os", "subprocess", "evilmodel", "get_model", "list_models",
                          "tf_efficientnet_lite0", "all-MiniLM-L6-v2", "test_efficientnet", "mobilenet_v2"])
_values = st.one_of(st.none(), st.integers(-3, 5000), st.booleans(), _names,
                    st.builds(lambda a, b: f"{a}.{b}", _names, _names), st.text(max_size=12))
_specs = st.dictionaries(st.sampled_from(["name", "modality", "kind", "source", "arch", "tag", "package",
                                          "package_module", "package_path", "path", "hub_id", "classifier", "dim",
                                          "key_format", "preprocessing_override", "aliases"]),
                         st.one_of(_values, st.sampled_from(["timm", "torchvision", "package", "local", "image",
                                                             "sentence-transformers", "word-vectors"])))


@given(spec=_specs)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_any_spec_in_an_image_folder_loads_or_is_refused_and_imports_nothing(image_model, tmp_path_factory, spec):
    """Whatever a featurizer spec says (manifest rewritten to match), loading gives a model or a transferkit error,
    and no module it names is imported."""
    folder = tmp_path_factory.mktemp("spec") / "model"
    shutil.copytree(image_model, folder)
    path = folder / "featurizer" / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"spec": spec}))
    reseal(folder)
    for name in ("this", "__hello__", "evilmodel"):
        _forget(name)
    try:
        load_model(folder, verbose=False)
    except TransferkitError:
        pass
    assert not {"this", "__hello__", "evilmodel"} & set(sys.modules)
