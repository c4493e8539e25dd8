"""Brain data and its comparison with embeddings: loading, ROIs, encoding."""

from oddoneout.neural.data import NeuralData

__all__ = ["NeuralData"]
