"""``fetch --output DIR``: each body streamed to a new, safely named file in DIR.

A name is made from the URL so that it cannot leave the directory, whatever
the URL holds (``..``, encoded slashes, a query); an existing file is never
replaced, and a body that ends early leaves no file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from .._fetch import BodySink, SinkFactory
from .._http._models import Response
from .._text import escape

__all__ = ["body_sink", "prepare_output", "safe_filename"]

# Longest file name written by --output; most file systems allow 255 bytes.
_MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(url: str) -> str:
    """A file name for ``url``'s body that cannot leave the output directory.

    Host, port and path are flattened into one name of letters, digits,
    ``.``, ``_`` and ``-`` (``http://h:8080/a/b.txt`` -> ``h_8080_a_b.txt``),
    never starting with a dot; a path ending in ``/`` gets ``index.html``.
    A query, or a name cut to length, adds a short hash of the whole URL so
    distinct URLs keep distinct names.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        parts = urlsplit("")
        host, port = "", None
    path = unquote(parts.path)
    if not path or path.endswith("/"):
        path += "index.html"
    pieces = [host] + ([str(port)] if port else []) + [p for p in path.split("/") if p]
    name = _UNSAFE.sub("_", "_".join(pieces)).strip("._-") or "download"
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    if parts.query or len(name) > _MAX_NAME or not (host or parts.path):
        stem, dot, ext = name[:_MAX_NAME].rpartition(".")
        if not dot or len(ext) > 8:
            stem, ext = name[:_MAX_NAME], ""
        name = f"{stem}-{digest}" + (f".{ext}" if ext else "")
    return name


def _create_file(directory: str, url: str) -> tuple[str, BinaryIO]:
    """Create a new file for ``url``'s body under ``directory``; never replaces one."""
    name = safe_filename(url)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    root = os.path.realpath(directory)
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{stem}~{n}" + (f".{ext}" if ext else "")
        path = os.path.join(root, candidate)
        # safe_filename already guarantees this; checked again because a
        # write outside the directory must be impossible, not unlikely.
        if os.path.dirname(path) != root:
            raise ValueError(f"refusing to write outside {root}: {candidate!r}")
        try:
            # Closed by _FileSink.finish, which owns it from here.
            return path, open(path, "xb")
        except FileExistsError:
            continue
    raise FileExistsError(f"no free file name for {escape(url)} in {root}")


class _FileSink:
    """Streams one body into a new file; a body that ends early leaves no file behind."""

    def __init__(self, path: str, file: BinaryIO) -> None:
        self._path = path
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def finish(self, error: BaseException | None) -> None:
        self._file.close()
        if error is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


def body_sink(directory: str | None) -> SinkFactory:
    """The ``sink=`` for fetch_iter: successful bodies to files in ``directory``, or none kept."""

    def sink(url: str, response: Response) -> BodySink | None:
        if directory is None or response.status >= 400:
            return None  # counted and dropped
        return _FileSink(*_create_file(directory, url))

    return sink


def prepare_output(parser: argparse.ArgumentParser, directory: str) -> None:
    """Create ``--output DIR`` (and its parents) unless it exists; a usage error if it cannot be."""
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        parser.error(f"--output {directory}: exists and is not a directory")
    except OSError as exc:
        parser.error(f"--output {directory}: cannot create it: {exc.strerror or exc}")
