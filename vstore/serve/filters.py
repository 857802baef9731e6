"""The HTTP side of issue 22: search modes, filters, the distance cutoff and date order as query
parameters, and the near-duplicates route. Kept apart from app.py (thin: parse, one Store call, render)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Query

from vstore.search.duplicates import DEFAULT_MAX_DISTANCE
from vstore.search.options import parse_date

if TYPE_CHECKING:
    from fastapi import FastAPI

    from vstore.serve.backend import Backend

PG_INT_MAX = 2_147_483_647


@dataclass(frozen=True)
class SearchFilters:
    mode: Literal["vector", "text", "hybrid"] = "vector"
    rrf_k: int = 60
    label: str | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    min_width: int | None = None
    min_height: int | None = None
    max_distance: float | None = None
    order: Literal["similarity", "date"] = "similarity"
    collapse_duplicates: bool = False

    def options(self) -> dict[str, Any]:
        """SearchOptions' keywords."""
        return asdict(self)


def search_filters(
    mode: Annotated[
        Literal["vector", "text", "hybrid"],
        Query(description="vector (meaning), text (the captions' words, no model) or hybrid (both, RRF)."),
    ] = "vector",
    rrf_k: Annotated[int, Query(ge=1, le=100_000, description="Hybrid: the reciprocal rank fusion k.")] = 60,
    label: Annotated[str | None, Query(max_length=500, description="Only images with this label.")] = None,
    taken_after: Annotated[
        str | None, Query(max_length=40, description="Only images taken on or after (YYYY-MM-DD).")
    ] = None,
    taken_before: Annotated[
        str | None, Query(max_length=40, description="Only images taken before (YYYY-MM-DD).")
    ] = None,
    min_width: Annotated[int | None, Query(ge=0, le=PG_INT_MAX, description="Minimum width, pixels.")] = None,
    min_height: Annotated[
        int | None, Query(ge=0, le=PG_INT_MAX, description="Minimum height, pixels.")
    ] = None,
    max_distance: Annotated[
        float | None, Query(ge=0.0, le=2.0, description="Cosine distance cutoff: may return fewer than k.")
    ] = None,
    order: Annotated[
        Literal["similarity", "date"], Query(description="similarity, or date (newest first).")
    ] = "similarity",
    collapse_duplicates: Annotated[bool, Query(description="One hit per near-duplicate group.")] = False,
) -> SearchFilters:
    # An empty form field (the page's "any") means no filter.
    return SearchFilters(
        mode,
        rrf_k,
        label or None,
        parse_date(taken_after, "taken_after") if taken_after else None,
        parse_date(taken_before, "taken_before") if taken_before else None,
        min_width,
        min_height,
        max_distance,
        order,
        collapse_duplicates,
    )


def add_duplicates_route(app: FastAPI, backend: Backend) -> None:
    """GET /api/duplicates: groups of near-identical images with a suggested keeper (deletes nothing)."""

    @app.get("/api/duplicates", tags=["images"])
    def duplicates(
        max_distance: Annotated[
            float, Query(ge=0.0, lt=2.0, description="Images within this cosine distance are one group.")
        ] = DEFAULT_MAX_DISTANCE,
        dataset: Annotated[str | None, Query(max_length=500, description="Only within this dataset.")] = None,
    ) -> dict[str, Any]:
        groups = backend.run(lambda store: store.duplicates(max_distance, dataset=dataset or None))
        return {
            "max_distance": max_distance,
            "groups": [
                {
                    "keeper": g.keeper,
                    "members": [
                        {
                            "id": m.id,
                            "path": m.path,
                            "distance": round(m.distance, 6),
                            "dataset": m.dataset,
                            "width": m.width,
                            "height": m.height,
                            "size": m.size,
                            "image_url": f"/images/{m.id}",
                        }
                        for m in g.members
                    ],
                }
                for g in groups
            ],
        }
