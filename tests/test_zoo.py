"""The model zoo: every entry builds with real pretrained weights; hub and local loading behave."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from transferkit import zoo
from transferkit.errors import BadInputError, UnknownModelError, WeightsUnavailableError


@pytest.mark.parametrize("spec", zoo.list_models(modality="image"), ids=lambda s: s.name)
def test_every_image_backbone_builds_offline_and_gives_its_feature_dim(spec):
    model = zoo.create_backbone(spec).eval()
    size = spec.preprocessing.input_size
    with torch.inference_mode():
        features = model(torch.zeros(2, 3, size, size))
    assert features.shape == (2, spec.dim)
    assert spec.offline


def test_preprocessing_is_read_from_the_libraries_own_configs():
    """timm's pretrained config and torchvision's weights metadata, not numbers copied into transferkit."""
    from timm.models import get_pretrained_cfg

    lite1 = zoo.resolve("lite1").preprocessing
    cfg = get_pretrained_cfg("tf_efficientnet_lite1")
    assert (lite1.input_size, lite1.crop_pct, lite1.mean) == (cfg.input_size[-1], cfg.crop_pct, cfg.mean)
    mobilenet = zoo.resolve("mobilenet_v2").preprocessing
    assert (mobilenet.input_size, mobilenet.crop_pct, mobilenet.interpolation) == (224, 224 / 256, "bilinear")


def test_one_registry_holds_both_modalities():
    names = {(s.name, s.modality) for s in zoo.list_models()}
    assert ("tf_efficientnet_lite0", "image") in names and ("all-MiniLM-L6-v2", "text") in names
    assert zoo.resolve("minilm", "text").kind == "sentence-transformers"


def test_auto_puts_the_side_by_side_set_beside_the_chosen_backbone():
    """The default backbone gets the set's other members; a backbone outside the set gets the whole set beside it."""
    from transferkit.featurizers import ImageBackbone

    def names(backbone):
        return [c.name for c in ImageBackbone.from_spec(zoo.resolve(backbone)).companions()]

    assert zoo.DEFAULT_BACKBONE in zoo.SIDE_BY_SIDE
    assert names(zoo.DEFAULT_BACKBONE) == [n for n in zoo.SIDE_BY_SIDE if n != zoo.DEFAULT_BACKBONE]
    assert names("tf_efficientnet_lite1") == list(zoo.SIDE_BY_SIDE)
    assert all(zoo.resolve(n).source == "package" for n in zoo.SIDE_BY_SIDE)  # offline


def _imagenet_samples():
    found = importlib.util.find_spec("foolbox")
    assert found is not None, "foolbox==3.3.4 (test dependency) ships the ImageNet sample photos"
    data = Path(next(iter(found.submodule_search_locations))) / "data"
    files = sorted(data.glob("imagenet_*.jpg"))
    assert len(files) == 20
    return files, torch.tensor([int(f.stem.rsplit("_", 1)[1]) for f in files])


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "mobilenet_v2"])
def test_packaged_weights_are_really_pretrained_on_imagenet_photos(name):
    spec = zoo.resolve(name)
    model = zoo.create_backbone(spec, num_classes=None).eval()
    transform = spec.preprocessing.eval_transform()
    files, labels = _imagenet_samples()
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    with torch.inference_mode():
        top1 = model(x).argmax(1)
    correct = int((top1 == labels).sum())
    assert correct >= 15, f"{name} got only {correct}/20 ImageNet photos right: weights are not the pretrained ones"


def test_random_weights_fail_the_same_imagenet_check():
    """The check above can fail: an untrained network gets almost none right."""
    spec = zoo.resolve("tf_efficientnet_lite0")
    torch.manual_seed(0)
    model = zoo.create_backbone(spec, pretrained=False, num_classes=None).eval()
    files, labels = _imagenet_samples()
    x = torch.stack([spec.preprocessing.eval_transform()(Image.open(f).convert("RGB")) for f in files])
    with torch.inference_mode():
        assert int((model(x).argmax(1) == labels).sum()) <= 2


def test_aliases_and_preprocessing_come_from_the_registry():
    lite0 = zoo.resolve("lite0")
    assert lite0.name == "tf_efficientnet_lite0" == zoo.DEFAULT_BACKBONE
    assert lite0.preprocessing.mean == (0.5, 0.5, 0.5) and lite0.preprocessing.std == (0.5, 0.5, 0.5)
    assert zoo.resolve("mobilenet_v2").preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    assert [s.name for s in zoo.list_models("*lite*")] == [f"tf_efficientnet_lite{i}" for i in range(3)]
    assert [s.name for s in zoo.list_models("*MINILM*")] == ["all-MiniLM-L6-v2"]  # patterns ignore case


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="Did you mean.*tf_efficientnet_lite0"):
        zoo.resolve("tf_efficientnet_lite")


def test_any_timm_name_resolves_to_a_hub_spec_with_its_preprocessing():
    spec = zoo.resolve("resnet18.a1_in1k")
    assert spec.source == "hub" and spec.hub_id == "timm/resnet18.a1_in1k"
    assert spec.preprocessing.crop_pct == pytest.approx(0.95)


def test_hub_weights_offline_fail_fast_and_say_how_to_pass_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens: refused at once
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="--weights PATH"):
        zoo.create_backbone(zoo.resolve("test_efficientnet"))
    assert time.perf_counter() - start < 10


def _fake_hub_cache(root: Path, repo_id: str, state: dict) -> None:
    """The Hugging Face cache layout, as huggingface_hub writes it after a download."""
    from safetensors.torch import save_file

    commit = "0" * 40
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))


def test_hub_weights_load_through_the_hugging_face_cache(monkeypatch, tmp_path):
    spec = zoo.resolve("test_efficientnet")
    torch.manual_seed(1)
    reference = zoo.create_backbone(spec, pretrained=False, num_classes=None)
    _fake_hub_cache(tmp_path, spec.hub_id, reference.state_dict())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = zoo.create_backbone(spec, num_classes=None)
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_local_weights_file_safetensors_and_state_dict(tmp_path):
    from safetensors.torch import save_file

    spec = zoo.resolve("tf_efficientnet_lite0")
    torch.manual_seed(2)
    reference = zoo.create_backbone(spec, pretrained=False, num_classes=None)
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        model = zoo.create_backbone(spec, weights=tmp_path / name, num_classes=0)
        assert torch.equal(model.conv_stem.weight, reference.conv_stem.weight)
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1280)


class NotATensor:
    pass


def test_local_weights_with_pickled_objects_are_refused(tmp_path):
    torch.save({"conv_stem.weight": torch.zeros(1), "payload": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(BadInputError, match="never unpickles"):
        zoo.create_backbone(zoo.resolve("lite0"), weights=tmp_path / "evil.pth")


def test_weights_for_another_architecture_are_reported_with_the_file(tmp_path):
    torch.save(zoo.create_backbone(zoo.resolve("mobilenet_v2"), pretrained=False).state_dict(), tmp_path / "mnv2.pth")
    with pytest.raises(BadInputError, match=r"mnv2\.pth do not fit"):
        zoo.create_backbone(zoo.resolve("lite0"), weights=tmp_path / "mnv2.pth")
