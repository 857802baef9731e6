"""Synthetic data (`vstore bench synth`) and the storage benchmark (`vstore bench storage`)."""
