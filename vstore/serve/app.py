"""The FastAPI application of `vstore serve`: JSON routes over the warm model and a small pool of Stores
(backend.py, pool.py), the image files by id, and the page (static/). Thin: parse and check the
parameters, one Store call, render JSON.

What it may do to the database: read, and add texts to the text_queries cache (Store.embed_text does that,
so SQL clients can search the same texts with vstore.text()). Nothing else is written. Errors, the Host
check and upload limits are in guards.py.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, File, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from vstore.config import Settings
from vstore.db import knobs
from vstore.encode.encoder import Encoder
from vstore.errors import ConfigError, ImageError, UploadTooLarge
from vstore.search.store import MAX_K, Hit, SearchOptions, SearchQuery, Store
from vstore.serve.backend import CONNECTION_WAIT_S, Backend
from vstore.serve.docs import add_api_pages
from vstore.serve.files import image_file, open_image, stream, thumbnail, thumbnail_size
from vstore.serve.filters import SearchFilters, add_duplicates_route, search_filters
from vstore.serve.guards import add_error_handlers, add_guards
from vstore.serve.payloads import Clock, hits_response

STATIC = Path(__file__).resolve().parent / "static"
UPLOAD_LIMIT = 16 * 2**20  # bytes; a phone photo is 3-10 MB, and CLIP looks at 224 x 224 pixels anyway
MAX_QUERY_CHARS = 2000  # CLIP reads 77 tokens; a longer text is a mistake or an attack, not a query
MAX_ID = 2**63 - 1  # bigint
PAGE_HEADERS = {
    # The page uses only its own files and the API: no inline script, nothing from elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Page:
    """A search's options and which page of its results: hits offset .. offset + k of the nearest."""

    target: Literal["images", "captions"]
    k: int
    offset: int
    dataset: str | None
    split: str | None
    exact: bool
    ef_search: int | None
    probes: int | None
    filters: SearchFilters = SearchFilters()  # issue 22: mode, filters, cutoff, order (serve/filters.py)

    def store_options(self) -> SearchOptions:
        # The Store returns the nearest k; a later page asks for offset + k and drops the first offset.
        return SearchOptions(
            target=self.target,
            k=self.offset + self.k,
            dataset=self.dataset,
            split=self.split,
            exact=self.exact,
            ef_search=self.ef_search,
            probes=self.probes,
            **self.filters.options(),
        )

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        described.update(described.pop("filters"))
        return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in described.items()}


def page_options(
    target: Annotated[
        Literal["images", "captions"], Query(description="What to return: images, or captions (text).")
    ] = "images",
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Hits per page.")] = 10,
    offset: Annotated[
        int, Query(ge=0, lt=MAX_K, description=f"Skip this many nearest hits (offset + k <= {MAX_K}).")
    ] = 0,
    dataset: Annotated[str | None, Query(max_length=500, description="Only this dataset (name).")] = None,
    split: Annotated[str | None, Query(max_length=200, description="Only images of this split.")] = None,
    exact: Annotated[bool, Query(description="Scan every row instead of using the index.")] = False,
    ef_search: Annotated[
        int | None,
        Query(
            ge=knobs.EF_SEARCH.low,
            le=knobs.EF_SEARCH.high,
            description="HNSW candidate list (default 100, at least k).",
        ),
    ] = None,
    probes: Annotated[
        int | None,
        Query(ge=knobs.PROBES.low, le=knobs.PROBES.high, description="IVFFlat lists to scan."),
    ] = None,
    filters: SearchFilters = Depends(search_filters),  # noqa: B008 (FastAPI's dependency idiom)
) -> Page:
    if offset + k > MAX_K:
        raise ConfigError(f"offset + k is {offset + k}; results go at most {MAX_K} deep, so ask for fewer.")
    # An empty form field (the page's "all datasets") means no filter.
    return Page(target, k, offset, dataset or None, split or None, exact, ef_search, probes, filters)


PageOptions = Annotated[Page, Depends(page_options)]
EmbeddedQuery = tuple[np.ndarray, bool]  # the query vector, and whether its text could not be cached


def _text_query(text: str) -> Callable[[Store], EmbeddedQuery]:
    def embed(store: Store) -> EmbeddedQuery:
        embedded = store.embed_texts([text])
        return embedded.vectors[0], bool(embedded.uncached)

    return embed


ImageId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="An image id from a search hit.")]


def create_app(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    upload_limit: int = UPLOAD_LIMIT,
    allowed_hosts: tuple[str, ...] | None = None,
    thumbnail_dir: Path | None = None,
    connections: int | None = None,
    connection_wait_s: float = CONNECTION_WAIT_S,
) -> FastAPI:
    """The application over the database of `settings`; its model is loaded (and warmed up) here, so a
    server starts answering at full speed. `allowed_hosts`: Host headers accepted (None: any); a server
    bound to the loopback accepts only loopback names, which stops DNS-rebinding pages from reading it.
    `connections`: database connections, so requests at once (default Settings.serve_connections)."""
    backend = Backend(settings, encoder=encoder, connections=connections, connection_wait_s=connection_wait_s)
    cache_dir = thumbnail_dir if thumbnail_dir is not None else settings.home / "thumbnails"

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        backend.close()

    app = FastAPI(
        title="vstore",
        version="1",
        summary="Search images and captions by text, by image, or by a stored image's id.",
        lifespan=lifespan,
        debug=False,
        docs_url=None,  # served by docs.py with local assets, so the pages work offline
        redoc_url=None,
    )
    app.state.backend = backend
    add_error_handlers(app)
    add_guards(app, upload_limit, allowed_hosts)
    add_api_pages(app)

    def search(
        clock: Clock,
        page: Page,
        query: Callable[[Store], EmbeddedQuery] | None,
        like: int | None,
        words: str | None = None,
    ) -> Response:
        # a text search under a role that may not write the text cache (`vstore db reader`) still
        # answers; the page and scripts can tell that the text was not cached for SQL clients
        def work(store: Store) -> tuple[list[Hit], bool, str]:
            if like is None and page.filters.mode != "vector":
                # words (text, hybrid): the Store runs the full text (and encodes for hybrid) itself
                assert words is not None
                result = store.search(SearchQuery(text=words), page.store_options())
                clock.stages["encode"] = 0.0
                return result.hits, bool(result.uncached), store.last_plan
            if like is None:
                assert query is not None
                vector, uncached = query(store)
                clock.lap("encode")
                return store.search_vector(vector, page.store_options()), uncached, store.last_plan
            clock.stages["encode"] = 0.0  # the stored vector is read by the search itself
            return store.search_like(like, page.store_options()), False, store.last_plan

        hits, uncached, plan = backend.run(work)  # the plan is read on the Store that ran the search
        clock.lap("search")
        more = len(hits) == page.offset + page.k and page.offset + page.k < MAX_K
        envelope = {
            "text_cache_skipped": uncached,
            "query": page.describe(),
            "offset": page.offset,
            "next_offset": page.offset + page.k if more else None,
            "model": backend.model.label,
            "random_weights": backend.model.random_weights,
            "plan": plan,  # how the search ran: mode, HNSW or an exact scan of the filtered rows, and why
        }
        return hits_response(envelope, hits[page.offset :], clock)

    @app.get("/health", tags=["status"])
    def health() -> dict[str, Any]:
        """Status, the database's model, row counts, and whether its embeddings come from random weights."""
        counts = backend.run(Store.counts)
        return {
            "status": "ok",
            "model": backend.model.label,
            "dim": backend.model.dim,
            "random_weights": backend.model.random_weights,
            "device": backend.device,
            "counts": counts,
        }

    @app.get("/api/datasets", tags=["status"])
    def datasets() -> dict[str, Any]:
        """Datasets with their searchable images per split (the page's filters)."""
        summaries = backend.run(Store.datasets)
        return {"datasets": [asdict(s) for s in summaries]}

    @app.get("/api/search", tags=["search"])
    def search_text(
        page: PageOptions,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="Words to look for.")],
    ) -> Response:
        """Text -> images (target=images) or text -> captions (target=captions), nearest first."""
        clock = Clock()
        if page.filters.mode != "vector":
            return search(clock, page, None, None, words=q)
        return search(clock, page, _text_query(q), None)

    @app.post("/api/search/image", tags=["search"])
    def search_upload(
        page: PageOptions,
        file: Annotated[UploadFile, File(description=f"An image file, at most {upload_limit:,} bytes.")],
    ) -> Response:
        """An uploaded image -> images or captions. The upload is prepared exactly like an ingested file
        (encode/images.py), so it gives the same vector as that file in the database."""
        clock = Clock()
        data = file.file.read(upload_limit + 1)
        if len(data) > upload_limit:
            raise UploadTooLarge(
                f"the upload is over the {upload_limit:,}-byte limit; send a smaller image "
                "(CLIP sees 224 x 224 pixels, so a few hundred KB is plenty)."
            )
        if not data:
            raise ImageError("the upload is empty (0 bytes); send a JPEG/PNG/... file.")
        return search(clock, page, lambda store: (store.encode_image_bytes(data), False), None)

    add_duplicates_route(app, backend)

    @app.get("/api/images/{image_id}", tags=["images"])
    def image_record(image_id: ImageId) -> dict[str, Any]:
        """One stored image: dataset, split, path relative to its dataset, size and its own captions."""
        record = backend.run(lambda store: store.get(image_id))
        return {
            "id": record.id,
            "dataset": record.dataset,
            "split": record.split,
            "path": record.relative_path,
            "status": record.status,
            "width": record.width,
            "height": record.height,
            "label": record.label,
            "source_id": record.source_id,
            "captions": record.captions,
            "image_url": f"/images/{record.id}",
        }

    @app.get("/api/images/{image_id}/similar", tags=["search"])
    def similar(image_id: ImageId, page: PageOptions) -> Response:
        """Image -> images: the stored images nearest to this one (itself left out)."""
        return search(Clock(), replace(page, target="images"), None, image_id)

    @app.get("/api/images/{image_id}/captions", tags=["search"])
    def captions(image_id: ImageId, page: PageOptions) -> Response:
        """Image -> text: the stored captions nearest to this image (of any image)."""
        return search(Clock(), replace(page, target="captions"), None, image_id)

    @app.get("/images/{image_id}", tags=["images"], response_class=Response)
    def image(
        image_id: ImageId,
        size: Annotated[
            int | None, Query(ge=16, le=4096, description="A thumbnail that fits in size x size pixels.")
        ] = None,
    ) -> Response:
        """The stored image's file, or a cached JPEG thumbnail. Served by id only, from its dataset's root."""
        record = backend.run(lambda store: store.get(image_id))
        file = image_file(record)
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        if size is None:
            handle = open_image(file)  # the checked file itself, whatever happens to its path meanwhile
            headers["Content-Length"] = str(file.stat.st_size)
            return StreamingResponse(stream(handle), media_type=file.media_type, headers=headers)
        data = thumbnail(file, thumbnail_size(size), cache_dir)
        return Response(data, media_type="image/jpeg", headers=headers)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


__all__ = ["Backend", "Page", "create_app"]  # Backend: re-exported for callers of create_app
