"""Benchmarks write scratch rows and delete them again; they must never do that next to a user's data.
`refuse_user_data` stops them when the database holds a dataset they did not create."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from vstore.errors import UserDataPresent

# (name, root, format) of a dataset -> whether the benchmark itself created it
IsOurs = Callable[[str, str, str], bool]


def refuse_user_data(conn: psycopg.Connection, is_ours: IsOurs, *, force: bool = False) -> None:
    """Raise UserDataPresent when a dataset in the database is not one `is_ours` recognises."""
    if force:
        return
    rows = conn.execute("SELECT name, root, format FROM public.datasets ORDER BY name").fetchall()
    foreign = [name for name, root, fmt in rows if not is_ours(name, root, fmt)]
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UserDataPresent(
            f"this database holds datasets the benchmark did not create ({shown}; `vstore datasets` lists "
            "them), and benchmarks write and delete rows; point it at a scratch database "
            "(e.g. VSTORE_HOME=/tmp/vsbench) or pass --force."
        )
