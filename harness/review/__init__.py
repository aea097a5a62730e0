"""``harness review``: blind pairwise review by a person, like Chatbot Arena but local.

One instruction at a time, two anonymised answers (model vs base of one run, or the
models of two runs) in a per-item random order; A / B / tie / skip, undo. Every vote
is appended to ``RUN/reviews.jsonl`` the moment it is cast (an append-only log: undo
appends an ``undo`` line), so a killed server loses nothing and reopening resumes.
"""
from .items import Item, load_items
from .votes import VoteLog, human_summary

__all__ = ["Item", "VoteLog", "human_summary", "load_items"]
