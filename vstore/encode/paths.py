"""How a file's path relative to its dataset root is stored, and back: losslessly and unambiguously.

PostgreSQL text must be valid UTF-8, but a POSIX file name is any bytes. The stored form is the name
decoded as UTF-8, '/'-separated, with two escapes: a backslash is written `\\\\` and a byte that is not
UTF-8 is written `\\xNN`. So the latin-1 name b'caf\\xe9.jpg' is stored as `caf\\xe9.jpg` and a file
literally named `caf\\xe9.jpg` (with a backslash) as `caf\\\\xe9.jpg`: two files, two strings, the same
string on every run, and `filesystem_path` gives each one's bytes back.
"""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def stored_path(relative: str) -> str:
    """The stored form of a relative path as os.walk/os.fsdecode give it (surrogate escapes for bytes
    that are not UTF-8)."""
    text = os.fsencode(relative.replace(os.sep, "/")).decode("utf-8", "surrogateescape")
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char)
    return "".join(out)


def native_path(stored: str) -> str:
    """The inverse of stored_path: the relative path as the operating system names it ('/' joined)."""
    if "\\" not in stored:
        return stored
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(stored):
        raw += stored[position : match.start()].encode("utf-8")
        escape = match.group(1)
        raw += b"\\" if escape == "\\" else bytes([int(escape[1:], 16)])
        position = match.end()
    raw += stored[position:].encode("utf-8")
    return os.fsdecode(bytes(raw))


def filesystem_path(root: str, stored: str) -> str:
    """Where a stored path lives on disk: the dataset root joined with the decoded relative path."""
    return os.path.join(root, *native_path(stored).split("/"))
