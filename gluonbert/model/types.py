"""Type aliases shared by the model's blocks."""
import mxnet as mx

# What hybrid_forward receives: NDArrays when imperative, Symbols when hybridized.
NDArrayOrSymbol = mx.nd.NDArray | mx.sym.Symbol
# What a block returns: one array, or a tuple of them (GluonNLP's output order), with lists of
# per-layer arrays for the output options.
BlockOutputs = NDArrayOrSymbol | tuple
