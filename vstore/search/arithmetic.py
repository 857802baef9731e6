"""Query arithmetic (as in rclip): "a cat" + beach.jpg - "snow", each term optionally weighted ("2:a cat").

The query vector is the weighted sum of the terms' unit vectors (minus terms with a negative weight),
L2-normalised again, so it searches like any other query (cosine distance). The same sum can be written in
SQL with pgvector's vector operators and l2_normalize (docs/search.md). This module only parses terms and
adds vectors: the Store supplies each term's vector (text cache, image file, stored image).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vstore.encode.encoder import l2_normalise
from vstore.encode.images import is_image_name
from vstore.errors import ConfigError

WEIGHT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*:(.*)$", re.DOTALL)


@dataclass(frozen=True)
class QueryTerm:
    """One term of a combined query: a text, an image file (Path) or a stored image (int id), with its
    weight (negative for a term to move away from)."""

    query: str | Path | int
    weight: float = 1.0


def parse_term(text: str, *, sign: float = 1.0) -> QueryTerm:
    """'beach.jpg' -> an image file (when it names an existing image file), '2:a cat' -> the text 'a cat'
    with weight 2, anything else -> a text. `sign` -1 makes a --minus term."""
    weight = 1.0
    match = WEIGHT.match(text)
    if match:
        weight, text = float(match.group(1)), match.group(2).strip()
    if weight <= 0:
        raise ConfigError(f"a query weight must be above 0 (got {weight:g}); use --minus to subtract.")
    if not text.strip():
        raise ConfigError("a query term is empty; write it like 'a cat', 2:'a cat' or photo.jpg.")
    path = Path(text).expanduser()
    query: str | Path = path if is_image_name(path.name) and path.is_file() else text
    return QueryTerm(query, sign * weight)


def parse_terms(
    main: Sequence[str] = (), plus: Sequence[str] = (), minus: Sequence[str] = ()
) -> list[QueryTerm]:
    """The terms of `vstore search MAIN --plus P --minus M` (each option repeatable)."""
    return (
        [parse_term(t) for t in main]
        + [parse_term(t) for t in plus]
        + [parse_term(t, sign=-1.0) for t in minus]
    )


def combine(terms: Sequence[QueryTerm], vector_of: Callable[[QueryTerm], np.ndarray]) -> np.ndarray:
    """sum(weight * unit vector of the term), L2-normalised. Refuses a sum that cancels out."""
    if not terms:
        raise ConfigError("give at least one query term: a text, an image file or a stored image id.")
    total = np.zeros_like(np.asarray(vector_of(terms[0]), dtype=np.float64))
    for term in terms:
        vector = l2_normalise(np.asarray(vector_of(term), dtype=np.float32)[None])[0]
        total += term.weight * vector
    if float(np.linalg.norm(total)) < 1e-6:
        raise ConfigError("the query terms cancel out (their weighted sum is zero); change a weight.")
    return l2_normalise(total.astype(np.float32)[None])[0]
