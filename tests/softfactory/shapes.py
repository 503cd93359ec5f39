"""Helpers for the list tests that compare a ShapedList's compiled path with the ORM path."""

from __future__ import annotations

from typing import Any

import pytest

from softfactory.api import ShapedList


def compiled_and_orm(
    client: Any, path: str, params: dict[str, Any], pages: ShapedList, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any, list[bool]]:
    """(the answer from compiled SQL, the ORM path's answer to the same request, per lookup of a
    shape whether a compiled one was used)."""
    shapes_used: list[bool] = []
    compile_or_reuse = pages.query.shape

    def spy(arguments: dict[str, Any]) -> Any:
        shape = compile_or_reuse(arguments)
        shapes_used.append(shape is not None)
        return shape

    monkeypatch.setattr(pages.query, "shape", spy)
    compiled = client.get(path, params)
    monkeypatch.setattr(pages.query, "shape", lambda arguments: None)  # the ORM path, as before
    orm = client.get(path, params)
    return compiled, orm, shapes_used
