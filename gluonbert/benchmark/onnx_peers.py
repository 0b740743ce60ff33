"""The deployment runtimes as peers, on the ONNX file of the HF model: ONNX Runtime fp32 and
int8 (dynamic quantization), OpenVINO fp32 and bf16."""
import logging
import os

import numpy as np

from .inputs import padding_mask
from .torch_peer import ONNX_INPUTS, ONNX_OUTPUTS


def onnx_feeds(inputs: tuple) -> dict:
    """numpy inputs -> the ONNX file's int64 (batch, seq_len) inputs by name."""
    ids, types, _ = inputs
    return dict(input_ids=ids.astype(np.int64), attention_mask=padding_mask(inputs),
                token_type_ids=types.astype(np.int64))


def quantize_onnx(path: str) -> str:
    """onnxruntime's quantize_dynamic of the fp32 file (int8 weights, activations quantized at
    run time) -> the int8 file's path, beside it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    int8_path = path[:-len('.onnx')] + '-int8.onnx'
    if not os.path.isfile(int8_path):
        root = logging.getLogger()
        level = root.level  # quantize_dynamic logs a pre-processing hint on the root logger
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(path, int8_path, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
    return int8_path


def ort_session(path: str, threads: int):
    """An ONNX Runtime CPU session on `threads` intra-op threads (one inter-op: the graph runs
    sequentially, as the other runtimes do)."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def ort_runner(session, inputs: tuple):
    """A forward pass of an ONNX Runtime session; run(fetch=True) returns (sequence
    (batch, seq_len, units), pooled (batch, units))."""
    feeds = onnx_feeds(inputs)

    def run(fetch=False):
        outputs = session.run(None, feeds)
        return [outputs[0], outputs[1]] if fetch else None
    return run


def openvino_bf16_unavailable() -> str | None:
    """Why OpenVINO cannot run bf16 on this CPU, or None."""
    import openvino
    capabilities = openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    return None if 'BF16' in capabilities else (
        f'OpenVINO lists no BF16 among this CPU\'s capabilities ({", ".join(capabilities)})')


def openvino_runner(path: str, inputs: tuple, precision: str, threads: int):
    """The ONNX file compiled by OpenVINO for the CPU at the inputs' static shape, with
    INFERENCE_PRECISION_HINT `precision` ('f32' or 'bf16': f32 must be asked for, as OpenVINO
    picks bf16 by itself on CPUs that have it) on `threads` threads; run(fetch=True) returns
    float32 (sequence (batch, seq_len, units), pooled (batch, units))."""
    import openvino
    core = openvino.Core()
    model = core.read_model(path)
    feeds = onnx_feeds(inputs)
    model.reshape({name: list(feeds[name].shape) for name in ONNX_INPUTS})
    compiled = core.compile_model(model, 'CPU', {
        'INFERENCE_PRECISION_HINT': precision, 'INFERENCE_NUM_THREADS': threads,
        'PERFORMANCE_HINT': 'LATENCY'})
    if int(compiled.get_property('INFERENCE_NUM_THREADS')) != threads:  # equal threads or no run
        raise RuntimeError(f'OpenVINO compiled for {compiled.get_property("INFERENCE_NUM_THREADS")}'
                           f' threads, not the {threads} every runtime is given')
    request = compiled.create_infer_request()
    sequence, pooled = (compiled.output(name) for name in ONNX_OUTPUTS)

    def run(fetch=False):
        results = request.infer(feeds)
        if not fetch:
            return None
        return [np.asarray(results[sequence], dtype=np.float32),
                np.asarray(results[pooled], dtype=np.float32)]
    return run
