"""oddoneout: AI models, people and rating scales as agents in triplet odd-one-out experiments.

Judgments are turned into sparse, interpretable embeddings (SPoSE) and compared with
human ratings and brain activity.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oddoneout")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
