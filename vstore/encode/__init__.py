"""From bytes to vectors: images.py turns any image file or upload into a model-ready RGB image (the one
path every caller uses), encoder.py runs open_clip on it and on texts."""
