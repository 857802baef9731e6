"""How images.label holds several labels: joined by LABEL_SEPARATOR. Ingest writes labels this way
(manifest label column, COCO categories, class folders) and evaluation reads them back (zero-shot), so the
convention lives here, below both wings."""

from __future__ import annotations

LABEL_SEPARATOR = "|"  # 'cat|dog': an image with two labels
