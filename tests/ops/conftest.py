"""Fixtures of the operations tests."""

from __future__ import annotations

import pytest

from tests.stack import run_stack


@pytest.fixture(scope="session")
def stack_pool() -> dict[str, str]:
    """The stack's PgBouncer: `scripts/stack start --with-pgbouncer` (installs Debian's package as
    root when missing; a no-op when it runs already). Returns what `start` exported."""
    result = run_stack("start", "--with-pgbouncer")
    return dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines() if line.startswith("export ")
    )
