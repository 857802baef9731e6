"""The search methods' names, without importing them (the CLI lists them in its help)."""

from __future__ import annotations

EXACT_METHODS = ("exact-numpy", "faiss-flat", "sklearn-brute", "pgvector-exact")
METHOD_NAMES = (
    "pgvector-exact",
    "pgvector-hnsw",
    "pgvector-ivfflat",
    "pgvector-bq",
    "faiss-flat",
    "faiss-ivf",
    "faiss-hnsw",
    "faiss-ivfpq",
    "sklearn-brute",
    "exact-numpy",
    "annoy",
)
# exact-numpy is the ground truth; annoy is an optional dependency (the bench extra), asked for by name.
DEFAULT_METHODS = tuple(m for m in METHOD_NAMES if m not in ("exact-numpy", "annoy"))

__all__ = ["DEFAULT_METHODS", "EXACT_METHODS", "METHOD_NAMES"]
