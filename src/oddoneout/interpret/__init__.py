"""Interpretation of embedding dimensions: rating correlations, labels and top items."""

from oddoneout.interpret.ratings import (
    dimension_labels,
    rating_correlations,
    read_rating_correlations,
    read_top_items,
    top_items,
    write_rating_correlations,
    write_top_items,
)

__all__ = [
    "dimension_labels",
    "rating_correlations",
    "read_rating_correlations",
    "read_top_items",
    "top_items",
    "write_rating_correlations",
    "write_top_items",
]
