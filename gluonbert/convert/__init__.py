"""Checkpoint converters: each maps a source format's tensors onto gluonbert's parameter names."""
from .common import ConversionError, assign_parameters

__all__ = ['ConversionError', 'assign_parameters']
