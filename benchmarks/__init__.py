"""Benchmarks that are not user commands (not shipped in the wheel): python -m benchmarks.NAME --help."""
