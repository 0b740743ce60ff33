"""The optional peers: which of them can run on this machine (and why not), and their runners."""
import dataclasses
import importlib.util
import os
from collections.abc import Callable

from ..precision import cpu_flags
from .gluonbert_peer import bf16_model, bf16_unavailable, mx_inputs, mx_runner
from .inputs import make_inputs
from .machine import native_precisions
from .onnx_peers import (openvino_bf16_unavailable, openvino_runner, ort_runner, ort_session,
                         quantize_onnx)
from .torch_peer import export_onnx, hf_inputs, hf_runner
from .variants import BF16, HF_BF16, ORT_FP32, ORT_INT8, OV_BF16, OV_FP32

INSTALL = "pip install -e '.[bench]'"


@dataclasses.dataclass(frozen=True)
class OptionalPeer:
    """A variant that runs only where its packages and its precision's instructions are."""
    name: str
    packages: tuple[str, ...]
    precision: str  # 'fp32', 'int8' or 'bf16'
    build: Callable  # (models, inputs) -> runner of one input batch
    check: Callable[[], str | None] = lambda: None  # after the packages: why it cannot run


def cached(models: dict, key: str, make: Callable):
    """models['cache'][key], made by `make()` the first time (once per model, for every shape)."""
    cache = models.setdefault('cache', {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def onnx_file(models: dict) -> str:
    """The ONNX file of the model's HF twin (torch.onnx.export, dynamic batch and length)."""
    return cached(models, 'onnx', lambda: export_onnx(
        models['hf'], make_inputs(models['config']['vocab_size'], 2, 8, seed=0),
        os.path.join(models['folder'], 'onnx', 'model.onnx')))


def gluonbert_bf16(models: dict, inputs: tuple):
    """gluonbert.to_bfloat16 of the model (converted once, any shape) on one batch."""
    arrays = mx_inputs(inputs)
    return mx_runner(cached(models, BF16, lambda: bf16_model(models['net'], arrays)), arrays)


def ort(models: dict, inputs: tuple, int8: bool):
    """ONNX Runtime on the fp32 file or its quantize_dynamic int8 copy, one session per model."""
    def session():
        path = onnx_file(models)
        return ort_session(quantize_onnx(path) if int8 else path, models['threads'])
    return ort_runner(cached(models, ORT_INT8 if int8 else ORT_FP32, session), inputs)


OPTIONAL_PEERS = (
    OptionalPeer(BF16, (), 'bf16', gluonbert_bf16, bf16_unavailable),
    OptionalPeer(HF_BF16, (), 'bf16', lambda models, inputs: hf_runner(
        models['hf'], hf_inputs(inputs), bf16=True)),
    OptionalPeer(ORT_FP32, ('onnx', 'onnxruntime'), 'fp32',
                 lambda models, inputs: ort(models, inputs, int8=False)),
    OptionalPeer(ORT_INT8, ('onnx', 'onnxruntime'), 'int8',
                 lambda models, inputs: ort(models, inputs, int8=True)),
    OptionalPeer(OV_FP32, ('onnx', 'openvino'), 'fp32', lambda models, inputs: openvino_runner(
        onnx_file(models), inputs, 'f32', models['threads'])),
    OptionalPeer(OV_BF16, ('onnx', 'openvino'), 'bf16', lambda models, inputs: openvino_runner(
        onnx_file(models), inputs, 'bf16', models['threads']), openvino_bf16_unavailable),
)


def skip_reason(peer: OptionalPeer, flags: set[str]) -> str | None:
    """Why `peer` cannot run here (a missing package, no native bf16), or None."""
    missing = [name for name in peer.packages if importlib.util.find_spec(name) is None]
    if missing:
        return f'{", ".join(missing)} not installed ({INSTALL})'
    if peer.precision == 'bf16' and not native_precisions(flags)['bf16']:
        return 'this CPU has no native bf16 instructions (avx512_bf16 or amx_bf16)'
    return peer.check()


def available_peers() -> tuple[list[OptionalPeer], dict[str, str]]:
    """(the optional peers that can run here, name -> reason for the others)."""
    flags = cpu_flags()[1]
    reasons = {peer.name: skip_reason(peer, flags) for peer in OPTIONAL_PEERS}
    return ([peer for peer in OPTIONAL_PEERS if reasons[peer.name] is None],
            {name: reason for name, reason in reasons.items() if reason})


def optional_runners(models: dict, inputs: tuple, fp32_only: bool = False) -> dict:
    """name -> runner of every optional peer in models['peers'] (`fp32_only`: only those)."""
    return {peer.name: peer.build(models, inputs) for peer in models['peers']
            if peer.precision == 'fp32' or not fp32_only}
