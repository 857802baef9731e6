"""Hits as JSON, with the time each stage took. The hits are serialised first and timed, then spliced into
the envelope, so `took_ms.serialise` is a measured figure and not an estimate."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from vstore.search.store import CaptionHit, Hit


def hit_payload(hit: Hit) -> dict[str, Any]:
    caption = isinstance(hit, CaptionHit)
    return {
        "id": hit.id,
        "kind": "caption" if caption else "image",
        "image_id": hit.image_id,
        "dataset": hit.dataset,
        "split": hit.split,
        "path": hit.relative_path,
        "caption": hit.text if isinstance(hit, CaptionHit) else None,
        "distance": None if hit.distance is None else round(hit.distance, 6),
        "similarity": None if hit.similarity is None else round(hit.similarity, 6),
        "score": None if hit.score is None else round(hit.score, 6),
        "taken_at": hit.taken_at.isoformat() if hit.taken_at else None,
        "image_url": f"/images/{hit.image_id}",
    }


@dataclass
class Clock:
    """Stage timings of one request, in milliseconds."""

    started: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)
    _mark: float = 0.0

    def __post_init__(self) -> None:
        self._mark = self.started

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round((now - self._mark) * 1000.0, 3)
        self._mark = now

    def total(self) -> float:
        return round((time.perf_counter() - self.started) * 1000.0, 3)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def hits_response(envelope: dict[str, Any], hits: list[Hit], clock: Clock) -> Response:
    """{...envelope, "took_ms": {encode, search, serialise, total}, "hits": [...]}, with a Server-Timing
    header carrying the same figures (browsers' developer tools show it)."""
    hits_json = dumps([hit_payload(h) for h in hits])
    clock.lap("serialise")
    took = {**clock.stages, "total": clock.total()}
    head = dumps({**envelope, "took_ms": took})
    body = head[:-1] + ',"hits":' + hits_json + "}"
    timing = ", ".join(f"{name};dur={ms}" for name, ms in took.items())
    return Response(body, media_type="application/json", headers={"Server-Timing": timing})
