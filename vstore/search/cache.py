"""The text cache (table text_queries): every text the Store encodes is written there, which is what
`vstore.text('...')` reads for SQL clients. Under a role that may not write (`vstore db reader`, a
read-only replica) new texts are still encoded and searched; the result names them as not cached, so
the caller can tell the user.

Every row names the model its vector comes from (`model`, revision 0010). Reads take only rows of the
caller's model, and the database refuses a row of any model but the recorded one: a process that loaded
its model before a `vstore reembed` gets ModelSwitched instead of caching an old-model vector."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg

from vstore.db.connect import CANNOT_WRITE, scalar, vector_array
from vstore.db.migrations import read_model
from vstore.db.sql import load
from vstore.encode.encoder import ModelSpec
from vstore.errors import ConfigError, ModelSwitched


@dataclass(frozen=True)
class CachedText:
    id: int
    text: str
    added: bool  # False when the text was already in the cache (it was not encoded again)


@dataclass(frozen=True)
class EmbeddedTexts:
    """Vectors for texts (one row per text, in order), with what happened to the cache."""

    vectors: np.ndarray
    cached: list[CachedText] = field(default_factory=list)  # each distinct text's cache row
    uncached: list[str] = field(default_factory=list)  # encoded, but this role may not write the cache


def check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the query text is empty; give some words to search for.")
    if "\x00" in text:
        raise ConfigError("the query text contains a NUL character, which PostgreSQL text cannot store.")
    return text


def embed_through_cache(
    conn: psycopg.Connection,
    texts: Sequence[str],
    encode: Callable[[list[str]], np.ndarray],
    dim: int,
    model: str,
) -> EmbeddedTexts:
    """Vectors for `texts` from the cache where present; the others are encoded with `encode` and added
    to the cache (or, when the role may not write, returned as `uncached`). `model`: the model_key of the
    model `encode` runs (embedding_model.model_key when the process loaded it)."""
    texts = [check_text(t) for t in texts]
    unique = list(dict.fromkeys(texts))
    keys = {"texts": unique, "model": model}
    found = {
        r[0]: vector_array(r[1]) for r in conn.execute(load("queries/search_cached_texts"), keys).fetchall()
    }
    missing = [t for t in unique if t not in found]
    ids: dict[str, tuple[int, bool]] = {}
    uncached: list[str] = []
    if missing:
        encoded = encode(missing)
        for text, vector in zip(missing, encoded, strict=True):
            found[text] = np.asarray(vector, dtype=np.float32)
        try:
            with conn.transaction():
                for text, vector in zip(missing, encoded, strict=True):
                    params = {"text": text, "embedding": vector, "model": model}
                    ids[text] = (int(scalar(conn, load("queries/search_cache_text"), params)), True)
        except CANNOT_WRITE:  # searched all the same; the caller tells the user it was not cached
            ids.clear()
            uncached = missing
        except psycopg.errors.ForeignKeyViolation:  # the record moved to another model meanwhile
            raise ModelSwitched(
                f"the database switched to another model (`vstore reembed`) while this process encoded "
                f"with {model}; nothing was cached. Run the command again (a running `vstore serve` "
                "switches by itself)."
            ) from None
    if len(ids) < len(unique):
        for text, id_ in conn.execute(load("queries/search_cached_text_ids"), keys).fetchall():
            ids.setdefault(text, (int(id_), False))
    vectors = np.stack([found[t] for t in texts]) if texts else np.zeros((0, dim), np.float32)
    cached = [CachedText(ids[t][0], t, ids[t][1]) for t in unique if t in ids]
    return EmbeddedTexts(vectors, cached, uncached)


def recorded_model_key(conn: psycopg.Connection) -> str:
    """embedding_model.model_key: the recorded model as the text cache rows name it."""
    return str(scalar(conn, load("queries/search_model_key")))


def check_model(conn: psycopg.Connection, held: ModelSpec, held_key: str) -> None:
    """ModelSwitched when the recorded model is no longer `held` (a `vstore reembed` since the caller
    read it). One read by primary key."""
    if recorded_model_key(conn) != held_key:
        raise switched(held, read_model(conn))


def switched(held: ModelSpec, recorded: ModelSpec | None) -> ModelSwitched:
    now = recorded.label if recorded is not None else "no model"
    return ModelSwitched(
        f"the database switched to {now} (`vstore reembed`) after this process loaded {held.label}; run the "
        "command again (a running `vstore serve` switches by itself)."
    )
