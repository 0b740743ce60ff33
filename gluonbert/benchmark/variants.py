"""The names of the benchmarked variants and the agreement limits each is held to."""

OURS, INT8, LEVER = 'gluonbert', 'gluonbert int8', 'gluonbert fp32 + optimize_for(MKLDNN)'
HF, NLP = 'HF torch', 'GluonNLP'
BF16 = 'gluonbert bf16'
BF16_TRAIN = 'gluonbert bf16 (AMP)'
HF_BF16 = 'HF torch bf16 autocast'
ORT_FP32, ORT_INT8 = 'ONNX Runtime fp32', 'ONNX Runtime int8'
OV_FP32, OV_BF16 = 'OpenVINO fp32', 'OpenVINO bf16'

PEERS = (HF, NLP)  # every timing row gets its speed ratio against these
SHORT = {HF: 'HF', NLP: 'GluonNLP', OURS: 'gluonbert fp32'}  # in ratios: '1.12x HF'

FP32_ATOL = 1e-3  # max |diff| of the sequence output between fp32 implementations
INT8_MIN_COSINE = 0.97  # pooled-output cosine, int8 vs fp32; min/max-calibrated int8 on the
# real MiniLM gives 0.980-0.989 and costs ~0.5 points of SST-2 accuracy
# (scripts/precision_accuracy.py)
LOW_PRECISION = (INT8, BF16, HF_BF16, ORT_INT8, OV_BF16)
# the arithmetic each variant's matmuls run in (the rest: fp32), for its share of the peak
PRECISION = {INT8: 'int8', ORT_INT8: 'int8', BF16: 'bf16', BF16_TRAIN: 'bf16', HF_BF16: 'bf16',
             OV_BF16: 'bf16'}


def precision_of(variant: str) -> str:
    """The arithmetic a benchmark variant runs its matmuls in: 'int8', 'bf16' or 'fp32'."""
    return PRECISION.get(variant, 'fp32')

# int8 and bf16 variants are held to the pooled-output cosine only; a miss refuses that variant
LOOSE = {name: dict(atol=None, min_cosine=INT8_MIN_COSINE) for name in LOW_PRECISION}
