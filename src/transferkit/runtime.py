"""Where and how a network runs, chosen by the machine that runs it (never copied from the one that fitted it):
the device, the precision path (bfloat16 autocast where the hardware supports it natively, else float32), and the
options every ONNX Runtime session of transferkit's is made with."""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from functools import cache

PRECISIONS = ("auto", "bf16", "fp32")


def check_precision(precision: str) -> str:
    from .errors import BadInputError

    if precision not in PRECISIONS:
        raise BadInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    return precision


def default_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_device_type() -> str:
    """``default_device()``'s type, without importing PyTorch (a second or more) on a Linux machine with no GPU device
    file (``gpu_device_files``): ONNX Runtime's path then runs with no PyTorch at all."""
    import sys

    if sys.platform.startswith("linux") and not gpu_device_files():
        return "cpu"
    return default_device().type


def gpu_device_files() -> list[str]:
    """The files through which a CUDA or ROCm build of PyTorch reaches a GPU on Linux: NVIDIA's device files and the
    GPUs its driver lists (the device files may be made only when CUDA first starts), WSL's (``/dev/dxg``) and
    ROCm's (``/dev/kfd``). Without any, ``torch.cuda.is_available()`` is False."""
    import glob
    import os

    return (glob.glob("/dev/nvidia[0-9]*") + glob.glob("/proc/driver/nvidia/gpus/*")
            + [f for f in ("/dev/dxg", "/dev/kfd") if os.path.exists(f)])


@cache
def native_bf16(device_type: str) -> bool:
    """Whether this machine runs bfloat16 natively: CUDA with bf16 support, or a CPU with AVX-512 BF16 / AMX (oneDNN
    says so). On other CPUs bfloat16 is emulated and slower than float32."""
    import torch

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device_type: str = "cpu") -> str:
    """``auto`` becomes ``bf16`` where the hardware runs it natively, else ``fp32``; the others stay as they are."""
    check_precision(precision)
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device_type) else "fp32"


def autocast(precision: str, device_type: str):
    """The autocast context of a resolved precision."""
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


@contextmanager
def seeded(seed: int):
    """torch's random draws inside follow ``seed`` (the same seed, the same draws); the global random state outside
    is left as it was."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


ONNX_KINDS = frozenset({"image-backbone", "sentence-encoder"})  # the featurizers an ONNX export covers


def faster_runtime(modality: str, featurizer_kinds, few: bool = False) -> str:
    """``onnx`` or ``torch``: the runtime that predicted faster where it was measured (``benchmarks/speed.py``; the
    docs' Speed page). ONNX Runtime for image networks on a CPU, and for text encoders on a CPU without native
    bfloat16; PyTorch where bfloat16 is native for texts, on a GPU, for featurizers the export does not cover (TF-IDF,
    word vectors), and where the ``export`` extra is not installed. ``few``: for a few inputs, whose time is starting
    the runtime (``benchmarks/cold_predict.py``), ONNX Runtime for text encoders on any CPU too."""
    from .extras import has

    if not set(featurizer_kinds) or not set(featurizer_kinds) <= ONNX_KINDS or not has("export"):
        return "torch"
    if default_device_type() != "cpu":
        return "torch"
    if not few and modality == "text" and native_bf16("cpu"):  # few first: native_bf16 imports PyTorch
        return "torch"
    return "onnx"


INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # CPU integer dot products (VNNI, AMX)


@cache
def native_int8() -> bool:
    """Whether this CPU has integer dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX-INT8), where int8 graphs
    run faster than float32; without them ONNX Runtime emulates the products (``benchmarks/throughput.py``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return False
    return bool(INT8_FLAGS & set(flags))


def is_primary_process() -> bool:
    """True on the process that should write files: rank 0 of a distributed run, or a plain single process."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return all(os.environ.get(v, "0") == "0" for v in ("RANK", "LOCAL_RANK", "NODE_RANK"))


FOLD_TOLERANCE = 1e-3  # the largest difference allowed between a folded copy's features and the network's, relative
CHECK_SIDE = 64  # the side of the random image a folded copy is checked on: how the modules connect, not accuracy


def fold_batchnorm(network, input_size: int):
    """A copy of ``network`` for inference (eval mode) in which each ``BatchNorm2d`` that directly follows a
    ``Conv2d`` is folded into it (torch's ``fuse_conv_bn_eval``) and replaced by what it applied after normalising
    (timm's ``BatchNormAct2d``: its dropout and activation; a plain one: nothing): one convolution where there were a
    convolution and a normalisation. The pairs are read in the order the modules were registered, not traced, so
    the copy is checked against ``network`` (in eval mode, float32) on a small random image, or one of ``input_size``
    pixels a side where the network refuses the small one, and ``network`` itself is returned where they disagree or
    neither goes through; its own training mode is left as it was."""
    import copy

    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    class AfterNorm(nn.Module):  # what a BatchNormAct2d does after its normalisation
        def __init__(self, norm: nn.Module) -> None:
            super().__init__()
            self.drop = getattr(norm, "drop", nn.Identity())
            self.act = getattr(norm, "act", nn.Identity())

        def forward(self, x):
            return self.act(self.drop(x))

    pairs, last = [], None  # (convolution, normalisation) names, read on the network, replaced on its copy
    for name, module in network.named_modules():
        if isinstance(module, nn.Conv2d):
            last = (name, module)
        elif isinstance(module, nn.BatchNorm2d):
            if last is not None and last[1].out_channels == module.num_features and module.track_running_stats:
                pairs.append((last[0], name))
            last = None
    if not pairs:  # nothing to fold (a network normalised otherwise: layer norms, none)
        return network
    folded = copy.deepcopy(network).eval()
    for conv_name, norm_name in pairs:
        norm = folded.get_submodule(norm_name)
        fused = fuse_conv_bn_eval(folded.get_submodule(conv_name), norm)
        for name, replacement in ((conv_name, fused), (norm_name, AfterNorm(norm))):
            parent, _, leaf = name.rpartition(".")
            setattr(folded.get_submodule(parent) if parent else folded, leaf, replacement)
    parameter = next(network.parameters())
    training = network.training
    try:
        for side in dict.fromkeys((min(input_size, CHECK_SIDE), input_size)):  # a small image, else its own size
            x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(parameter.device)
            try:
                with torch.inference_mode(), torch.autocast(parameter.device.type, enabled=False):  # float32
                    expected, got = network.eval()(x).float(), folded(x).float()
            except Exception:  # noqa: BLE001 - a network that refuses this size (a fixed patch grid, a minimum)
                continue
            scale = expected.abs().max().clamp_min(1e-6)
            return folded if bool(((expected - got).abs() / scale).max() <= FOLD_TOLERANCE) else network
        return network  # no check went through: it runs as it is
    finally:
        network.train(training)


def asked_threads() -> int:
    """The threads OMP_NUM_THREADS asks for; 0 where it asks for none."""
    asked = os.environ.get("OMP_NUM_THREADS", "")
    return int(asked) if asked.isdigit() else 0


def cpu_threads() -> int:
    """The threads this process computes on: as many as OMP_NUM_THREADS asks for, else one per core it may use."""
    return asked_threads() or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def open_session(path, spinning: bool = True, threads: int | None = None, providers: list[str] | None = None):
    """An ONNX Runtime session of the graph at ``path`` (:func:`session_options`; ``threads``: its intra-op threads,
    else as many as OMP_NUM_THREADS asks for; ``providers``: its execution providers, else every one available); a
    clear error where the graph is damaged."""
    import onnxruntime as ort

    from .errors import BundleError

    try:
        return ort.InferenceSession(str(path), session_options(spinning, threads),
                                    providers=providers or ort.get_available_providers())
    except Exception as exc:  # onnxruntime raises its own error types on damaged graphs
        raise BundleError(f"{path} cannot be loaded by ONNX Runtime ({str(exc)[:200]}).") from None


def session_options(spinning: bool = True, threads: int | None = None):
    """ONNX Runtime's options for transferkit's sessions: quiet, ``threads`` threads (else as many as OMP_NUM_THREADS
    asks for), no memory pattern, and one CPU memory arena for all of them (``shared_arena``). ``spinning=False`` lets
    its threads sleep between runs instead of spinning for the next one: a server's event loop needs those cores to
    read the next requests while a batch runs (``benchmarks/serve_load.py``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # no memory plan made from the first batch's shapes: for the side-by-side backbones in one graph it held far more
    # memory for no speed (benchmarks/teacher_pass.py, results/)
    options.enable_mem_pattern = False
    if shared_arena():
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.intra_op_num_threads = threads or asked_threads()  # 0: ONNX Runtime's own choice
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


@cache
def shared_arena() -> bool:
    """Register one CPU memory arena that every transferkit session of this process allocates from, once. Each
    session's own arena keeps the most its activations ever needed, so the side-by-side backbones reading a large pool
    together held four such peaks (benchmarks/large_pool.py); sharing, they hold about one. False where ONNX Runtime
    refuses to register it: the sessions keep their own."""
    import onnxruntime as ort

    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    try:
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))  # ONNX Runtime's default arena
    except Exception:  # noqa: BLE001 - sharing is an economy, never a condition of running
        return False
    return True
