"""Agents answer odd-one-out triplets: simulated, rating-based, embedding-similarity, LLMs."""

from oddoneout.agents.base import Agent, Answer, STATUSES

__all__ = ["Agent", "Answer", "STATUSES"]
