"""Type aliases shared by the model's blocks."""
import mxnet as mx

# What hybrid_forward receives: NDArrays when imperative, Symbols when hybridized.
NDArrayOrSymbol = mx.nd.NDArray | mx.sym.Symbol
