"""Retrieval quality: metrics (pure functions), query loading, zero-shot, and the `vstore eval` harness."""
