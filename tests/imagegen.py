"""The image and dataset generators live in vstore.bench.imagegen (shipped, so the docs' examples can use
them); the tests keep importing them from here."""

from vstore.bench.imagegen import *  # noqa: F403
