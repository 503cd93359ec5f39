"""Content negotiation (settings REST_FRAMEWORK["DEFAULT_CONTENT_NEGOTIATION_CLASS"]).

Its own module: DRF imports it while `rest_framework.views` is being imported, so it must not
import anything that imports views (softfactory.api does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# What nearly every client sends: no Accept header (read as */*), */*, or exactly JSON.
PLAIN_ACCEPTS = frozenset({"", "*/*", "application/json"})


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered without parsing for the Accept headers nearly every client sends.

    With one renderer and no `?format=`, `Accept: */*` or `application/json` can only choose that
    renderer and its own media type, which is what DRF's parser would return; anything else
    (other types, quality values, a format override, several renderers) goes through DRF.
    Parsing the header cost about a tenth of a cached read.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        renderers = list(renderers)
        if (
            format_suffix is None
            and len(renderers) == 1
            and request.META.get("HTTP_ACCEPT", "").strip() in PLAIN_ACCEPTS
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], renderers[0].media_type
        result: tuple[Any, str] = super().select_renderer(request, renderers, format_suffix)
        return result
