"""What an ingest returns (IngestReport) and what it tells the progress callback (IngestProgress)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IngestProgress:
    images_done: int  # images looked at so far (new, unchanged, renamed, failed)
    images_total: int | None  # estimate from the source, for the ETA
    images_encoded: int
    captions_encoded: int


@dataclass
class IngestReport:
    dataset: str = ""
    format: str = ""
    root: str = ""
    splits: list[str] | None = None
    model: str = ""
    random_weights: bool = False
    device: str = ""
    scanned: int = 0  # image files found
    added: int = 0  # new rows with a fresh embedding
    updated: int = 0  # existing paths whose content changed: re-encoded
    unchanged: int = 0  # size+mtime (or content hash) unchanged: not re-encoded
    imported_adopted: int = 0  # imported vectors (`vstore import --root`) kept for files read the first time
    renamed: int = 0  # content already stored under another path: embedding reused, no encode
    missing: int = 0  # rows whose file is gone: marked missing (not deleted)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    captions_added: int = 0  # captions embedded and written (new or changed text)
    captions_removed: int = 0  # stored captions the source no longer has for a scanned image: deleted
    captions_empty: int = 0  # blank captions skipped
    captions_invalid: int = 0  # not a string (a JSON list, a number): skipped
    captions_duplicate: int = 0  # the same text again for the same image: skipped
    captions_truncated: int = 0  # longer than the tokenizer context: embedded truncated
    captions_unknown_image: int = 0  # refer to an image id the annotations do not list: skipped
    uncaptioned_images: int = 0  # ingested without captions
    annotations_missing_file: int = (
        0  # annotations (COCO) or manifest rows whose file is not on disk: skipped
    )
    missing_files: list[str] = field(default_factory=list)  # the first few of those files, as named
    indexes_rebuilt: list[str] = field(default_factory=list)  # deferred for a bulk load, then rebuilt
    images_encoded: int = 0
    model_loaded: bool = False  # this run loaded the model (an unchanged re-run does not)
    model_load_s: float = 0.0  # ... and spent this long on it (torch + open_clip imports, weights)
    setup_s: float = 0.0  # schema check, dataset row, worker start (the model loads later, when first needed)
    index_s: float = 0.0  # rebuilding indexes deferred for a bulk load (or left by a crashed one)
    decode_s: float = 0.0  # decode worker time, summed over workers
    decode_wait_s: float = 0.0  # time the main loop waited for decoded images (the model idle)
    encode_s: float = 0.0
    write_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def images_per_s(self) -> float:
        """Images encoded per second of pipeline time (setup, model loading and index rebuilds excluded)."""
        seconds = self.wall_s - self.setup_s - self.model_load_s - self.index_s
        return self.images_encoded / seconds if seconds > 0 else 0.0

    def as_dict(self) -> dict:
        from dataclasses import asdict

        data = asdict(self)
        data["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        data["images_per_s"] = round(self.images_per_s, 2)
        return data
