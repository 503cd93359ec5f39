"""Helpers the domain seeders share (they may import platform_core, not each other)."""

from __future__ import annotations

from collections.abc import Iterator


class CopyRowStream:
    """A file-like object for psycopg2's `copy_expert`: each read() returns the next block of
    COPY text lines, so rows are generated while PostgreSQL loads them (no giant string)."""

    def __init__(self, rows: Iterator[str], *, block: int = 2_000) -> None:
        self.rows = rows
        self.block = block

    def read(self, size: int = -1) -> str:
        # psycopg2 sends whatever one read() returns, so a block may exceed `size`.
        lines: list[str] = []
        for line in self.rows:
            lines.append(line)
            if len(lines) == self.block:
                break
        return "".join(lines)
