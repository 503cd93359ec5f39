"""Content negotiation: the common Accept headers take the short path, everything else DRF's."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from softfactory.negotiation import JSONFirstNegotiation
from tests.coocook.factories import ChefFactory

pytestmark = pytest.mark.django_db

CHEFS = "/api/coocook/chefs"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", " application/json "])
def test_plain_accept_headers_get_json(accept):
    ChefFactory()
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = APIClient().get(CHEFS, **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["count"] == 1


@pytest.mark.parametrize(
    ("accept", "status"),
    [("application/xml", 406), ("text/html;q=0.9, application/json;q=0.8", 200), ("application/*", 200)],
)
def test_other_accept_headers_are_negotiated_by_drf(accept, status):
    assert APIClient().get(CHEFS, HTTP_ACCEPT=accept).status_code == status


def test_a_format_override_is_negotiated_by_drf():
    assert APIClient().get(CHEFS, {"format": "xml"}).status_code == 404  # DRF: no renderer for that format
    assert APIClient().get(CHEFS, {"format": "json"}).status_code == 200


def test_the_short_path_answers_what_drfs_own_negotiation_would(rf):
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.renderers import JSONRenderer
    from rest_framework.request import Request

    for accept in ("*/*", "application/json", ""):
        request = Request(rf.get(CHEFS, HTTP_ACCEPT=accept) if accept else rf.get(CHEFS))
        renderers = [JSONRenderer()]
        fast = JSONFirstNegotiation().select_renderer(request, renderers)
        slow = DefaultContentNegotiation().select_renderer(request, renderers)
        assert (type(fast[0]), fast[1]) == (type(slow[0]), slow[1])
