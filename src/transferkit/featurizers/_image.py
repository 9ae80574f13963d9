"""Images through a pretrained backbone (timm or torchvision): decode, the backbone's own eval transform, pooled
features, on the fast path (channels-last memory, batch normalisations folded into the convolutions, ``inference_mode``,
bfloat16 autocast where the machine runs it natively)."""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data.files import MAX_ITEM_BYTES, check_regular_file
from ..data.images import ImageDecodeError, as_image, load_image
from ..errors import BadInputError
from ..preprocessing import Preprocessing
from ..runtime import autocast, check_precision, default_device, fold_batchnorm, resolve_precision, seeded
from ..zoo import ModelSpec, create_backbone, weights_digest
from ._base import Featurizer, ItemError, content_digest

VIEWS = ("center", "mirror")  # the eval transform, and the same after a left-right flip (test-time augmentation)


@lru_cache(maxsize=65536)
def _file_digest(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """A file's content digest, read once while its size, modification time and inode stay the same: an ensemble's
    members, the duplicate check and the cache all ask for the same images' keys."""
    return content_digest(Path(path).read_bytes())


def _reason(exc: BadInputError) -> str:
    """The short reason of a file check, for a skipped item ("file not found", "not a regular file ...")."""
    text = str(exc)
    if "does not exist" in text:
        return "file not found"
    return text.split(". ")[0].split(" is ", 1)[-1] if " is " in text else text


class ImageBackbone(Featurizer):
    """Pooled features of a pretrained image network. ``network`` returns features (its classifier removed)."""

    kind = "image-backbone"
    modality = "image"
    tunable = True
    config_keys = ("spec", "preprocessing", "tuned")  # and the network's weights, as tensors

    def __init__(self, spec: ModelSpec, network, preprocessing: Preprocessing, *, precision: str = "auto",
                 view: str = "center", tuned: bool = False, device=None) -> None:
        self.spec = spec
        self.network = network.eval()
        self.preprocessing = preprocessing
        self.precision = check_precision(precision)
        self.view = view
        self.tuned = tuned
        self.device = device or default_device()
        self._placed = False
        self._transform = None
        self._digest: str | None = None
        self._fold: tuple | None = None  # (the network, its weights' versions, the folded copy): ``_folded``

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, weights: str | None = None, input_size: int | None = None,
                  pretrained: bool = True, precision: str = "auto") -> ImageBackbone:
        from dataclasses import replace

        pre = spec.preprocessing
        if input_size:
            pre = replace(pre, input_size=int(input_size))
        network = create_backbone(spec, weights=weights, pretrained=pretrained, num_classes=0)
        return cls(spec, network, pre, precision=precision)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dim(self) -> int:
        return int(getattr(self.network, "num_features", 0) or self.spec.dim or 0)

    @property
    def resolved_precision(self) -> str:
        return resolve_precision(self.precision, self.device.type)

    def _weights_key(self) -> str:
        if self._digest is None:
            self._digest = f"{self.spec.kind}:{self.spec.arch}:{weights_digest(self.network)}"
        return self._digest

    def digest(self) -> str:
        # bfloat16 rows of the folded network (``_folded``) differ from the unfolded network's by bfloat16's rounding:
        # they are cached apart from rows written before the fold (float32 rows agree to about 1e-6 and are shared)
        folded = ("folded",) if self.resolved_precision == "bf16" else ()
        return content_digest(repr((self._weights_key(), self.preprocessing.to_dict(), self.resolved_precision,
                                    self.view, *folded)).encode())[:20]

    def network_digest(self) -> str:
        """A digest of what the float32 network computes from a prepared batch (its weights, its input size and the
        versions of the libraries whose code runs it), whatever the precision or view it runs at: the key of its ONNX
        graph (``onnx_features.backbone_graph``), which a library upgrade then exports again."""
        from importlib.metadata import version

        import torch

        libraries = (torch.__version__, version("timm"), version("torchvision"))
        return content_digest(repr((self._weights_key(), self.preprocessing.input_size, libraries)).encode())[:20]

    def with_view(self, view: str) -> ImageBackbone:
        """The same network seeing each image through another view (``mirror``: flipped left-right)."""
        other = copy.copy(self)
        other.view, other._transform = view, None
        return other

    def item_key(self, item) -> str:
        if not isinstance(item, (str, os.PathLike)):
            try:
                image = as_image(item)
            except ImageDecodeError as exc:
                raise ItemError(exc.path, exc.reason) from None
            return content_digest(repr((image.mode, image.size)).encode() + image.tobytes())
        try:
            check_regular_file(item, "image", MAX_ITEM_BYTES)
            st = os.stat(item)
            return _file_digest(os.path.abspath(item), st.st_size, st.st_mtime_ns, st.st_ino)
        except BadInputError as exc:
            raise ItemError(item, _reason(exc)) from None
        except OSError as exc:
            raise ItemError(item, exc.strerror or str(exc)) from None

    def decode(self, item):
        try:
            return load_image(item) if isinstance(item, (str, os.PathLike)) else as_image(item)
        except ImageDecodeError as exc:
            raise ItemError(item, exc.reason) from None

    def prepare(self, item):
        if self._transform is None:
            transform = self.preprocessing.eval_transform()
            if self.view == "mirror":
                from torchvision.transforms import v2

                transform = v2.Compose([v2.RandomHorizontalFlip(p=1.0), transform])
            self._transform = transform
        return self._transform(self.decode(item))

    def transform(self, batch: list) -> np.ndarray:
        import torch

        if not self._placed:
            self.network = self.network.eval().to(self.device, memory_format=torch.channels_last)
            self._placed, self._fold = True, None  # moved or replaced: folded again from what it is now
        network = self._folded()
        x = torch.stack(batch).to(self.device, memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.resolved_precision, self.device.type):
            out = network(x)
        return out.float().cpu().numpy()

    def _folded(self):
        """The network with its batch normalisations folded into its convolutions (``runtime.fold_batchnorm``), made
        again whenever the network or any of its weights changed (a tuner trains it in place)."""
        import itertools

        tensors = itertools.chain(self.network.parameters(), self.network.buffers())
        version = tuple((id(t), t._version) for t in tensors)
        if self._fold is None or self._fold[0] is not self.network or self._fold[1] != version:
            self._fold = (self.network, version, fold_batchnorm(self.network, self.preprocessing.input_size))
        return self._fold[2]

    def tensors(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.network.state_dict().items()}

    @classmethod
    def arguments(cls, config: dict, tensors: dict) -> dict:
        from ..errors import BundleError, UnknownModelError
        from ..zoo._images import architecture
        from ..zoo._registry import saved_spec

        spec = saved_spec(config.get("spec"), "image")
        try:
            network = architecture(spec, 0)
            preprocessing = Preprocessing.from_dict(config.get("preprocessing") or {})
        except (UnknownModelError, BadInputError, TypeError) as exc:
            raise BundleError(f"The model folder's featurizer cannot be built: {exc} The folder was edited or is "
                              "damaged; refit the model.") from None
        try:
            network.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise BundleError(f"The backbone's weights do not fit architecture {spec.arch!r} named in the model "
                              f"folder ({str(exc).splitlines()[0][:200]}). The folder was edited or is damaged; refit "
                              "the model.") from None
        return {"spec": spec, "network": network, "preprocessing": preprocessing, "tuned": bool(config.get("tuned"))}

    def companions(self) -> list[Featurizer]:
        """The zoo's side-by-side backbones (``zoo.SIDE_BY_SIDE``, weights shipped in packages: offline) other than
        this one: what ``auto`` may add."""
        from ..errors import WeightsUnavailableError
        from ..zoo import SIDE_BY_SIDE, resolve

        others: list[Featurizer] = []
        for name in SIDE_BY_SIDE:
            if name != self.spec.name:
                try:
                    others.append(ImageBackbone.from_spec(resolve(name), precision=self.precision))
                except WeightsUnavailableError:  # a package that is not installed: combine what is there
                    continue
        return others

    def scratch(self, seed: int = 0) -> ImageBackbone:
        """The same architecture from random initialisation drawn with ``seed`` (the same seed, the same weights):
        the "no transfer" baseline, trained by a tuner."""
        from ..zoo._images import architecture

        with seeded(seed):
            network = architecture(self.spec, 0)
        return ImageBackbone(self.spec, network, self.preprocessing, precision=self.precision)

    def cpu(self) -> ImageBackbone:
        self.network = self.network.cpu()
        self._placed = False
        return self
