"""Collecting judgments: triplet designs, the durable store and the resumable runner."""

from oddoneout.collect.designs import (
    TripletDesign,
    concat_designs,
    exhaustive_design,
    random_design,
    repeated_design,
)
from oddoneout.collect.runner import CollectionSummary, collect
from oddoneout.collect.store import TripletStore, read_judgments, read_judgments_as_triplets

__all__ = [
    "CollectionSummary",
    "TripletDesign",
    "TripletStore",
    "collect",
    "concat_designs",
    "exhaustive_design",
    "random_design",
    "read_judgments",
    "read_judgments_as_triplets",
    "repeated_design",
]
