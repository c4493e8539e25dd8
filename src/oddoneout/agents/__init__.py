"""Agents answer odd-one-out triplets: simulated, rating-based, embedding-similarity, LLMs."""

from oddoneout.agents.base import STATUSES, Agent, Answer

__all__ = ["Agent", "Answer", "STATUSES"]
