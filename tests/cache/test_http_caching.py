"""HTTP caching per API.md: ETag and 304, Cache-Control public/private, gzip, static files."""

from __future__ import annotations

import gzip
import re

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client
from rest_framework.test import APIClient

from tests.cache.conftest import anonymous
from tests.coocook.factories import ChefFactory
from tests.platform_core.factories import PASSWORD, UserFactory
from tests.review.factories import CampaignFactory

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CHEFS = "/api/coocook/chefs"
PUBLIC, PRIVATE = "public, no-cache", "private, no-store"


def vary(response) -> set[str]:
    return {v.strip() for v in response.get("Vary", "").split(",") if v.strip()}


def test_public_reads_without_credentials_are_public_no_cache_with_an_etag():
    chef = ChefFactory()
    campaign = CampaignFactory()
    for url in (
        CHEFS,
        f"{CHEFS}/{chef.pk}",
        f"{CHEFS}/{chef.pk}/reviews",
        "/api/review/campaigns",
        f"/api/review/campaigns/{campaign.pk}",
    ):
        miss, hit = anonymous().get(url), anonymous().get(url)
        for response in (miss, hit):
            assert response.status_code == 200
            assert response["Cache-Control"] == PUBLIC, url
            assert re.fullmatch(r'W/"[0-9a-f]{32}"', response["ETag"])
            assert {"Accept", "Authorization", "Cookie"} <= vary(response)
        assert hit["ETag"] == miss["ETag"]


def test_if_none_match_answers_304_without_a_body_until_the_data_changes():
    chef = ChefFactory(name="Before")
    url = f"{CHEFS}/{chef.pk}"
    first = anonymous().get(url)
    etag = first["ETag"]
    not_modified = anonymous().get(url, HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified["ETag"] == etag
    assert not_modified["Cache-Control"] == PUBLIC
    assert anonymous().get(url, HTTP_IF_NONE_MATCH=etag.removeprefix("W/")).status_code == 304  # weak comparison
    assert anonymous().get(url, HTTP_IF_NONE_MATCH=f'W/"other", {etag}').status_code == 304
    assert anonymous().get(url, HTTP_IF_NONE_MATCH='W/"other"').status_code == 200
    chef.name = "After"
    chef.save()
    changed = anonymous().get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["name"] == "After"
    assert changed["ETag"] != etag


def test_reads_with_credentials_are_private_no_store_and_still_revalidate(client_for):
    ChefFactory()
    user = UserFactory()
    with_token = client_for(user).get(CHEFS)
    assert with_token["Cache-Control"] == PRIVATE
    assert with_token["X-Cache"] == "miss"  # the same public entry: only the HTTP caching differs
    revalidated = client_for(user).get(CHEFS, HTTP_IF_NONE_MATCH=with_token["ETag"])
    assert revalidated.status_code == 304
    assert revalidated["Cache-Control"] == PRIVATE
    browser = APIClient()
    browser.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    with_session = browser.get(CHEFS)
    assert with_session.status_code == 200
    assert with_session["Cache-Control"] == PRIVATE
    assert with_session["ETag"] == with_token["ETag"]
    me = client_for(user).get("/api/auth/me")
    assert (me.status_code, me["Cache-Control"]) == (200, PRIVATE)
    assert me.has_header("ETag")


def test_every_other_api_response_is_private_no_store(client_for):
    hidden = ChefFactory(is_active=False)
    staff = client_for(UserFactory(is_staff=True))
    cases = [
        anonymous().post("/api/auth/login", {"email": "x@example.com", "password": "nope"}, format="json"),  # 400
        anonymous().get("/api/no/such/path"),  # 404
        anonymous().get(CHEFS, {"per_page": "0"}),  # 400
        anonymous().get(f"{CHEFS}/{hidden.pk}"),  # 404
        staff.get(f"{CHEFS}/{hidden.pk}"),  # 200, but only staff and its owner see it
        anonymous().get("/api/auth/me"),  # 401
        staff.post(CHEFS, {"name": "N", "cuisine_type": "x", "hourly_rate": "1.00", "currency": "KRW"}, format="json"),
    ]
    assert [r.status_code for r in cases] == [400, 404, 400, 404, 200, 401, 201]
    assert [r["Cache-Control"] for r in cases] == [PRIVATE] * len(cases)


def test_responses_are_gzip_compressed_for_clients_that_accept_it():
    ChefFactory.create_batch(20)
    plain = anonymous().get(CHEFS, {"per_page": "20"})
    compressed = anonymous().get(CHEFS, {"per_page": "20"}, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert "Content-Encoding" not in plain
    assert compressed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in vary(compressed)
    assert gzip.decompress(compressed.content) == plain.content
    assert len(compressed.content) < len(plain.content) / 2
    assert compressed["ETag"] == plain["ETag"]  # weak: the same validator either way
    again = anonymous().get(
        CHEFS, {"per_page": "20"}, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=compressed["ETag"]
    )
    assert again.status_code == 304


def test_cache_hits_are_served_with_the_body_compressed_once_at_fill_time():
    ChefFactory.create_batch(20)
    fill = anonymous().get(CHEFS, {"per_page": "20"}, HTTP_ACCEPT_ENCODING="gzip")
    hits = [anonymous().get(CHEFS, {"per_page": "20"}, HTTP_ACCEPT_ENCODING="gzip") for _ in range(2)]
    plain_hit = anonymous().get(CHEFS, {"per_page": "20"})
    assert [fill["X-Cache"], *(h["X-Cache"] for h in hits), plain_hit["X-Cache"]] == ["miss", "hit", "hit", "hit"]
    # Per-response compression (Django's, against BREACH) puts random bytes in every gzip header;
    # byte-identical hits show the stored copy is sent as it is, with no compression per request.
    assert hits[0].content == hits[1].content == fill.content
    for response in (fill, *hits):
        assert response["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in vary(response)
        assert gzip.decompress(response.content) == plain_hit.content
        assert response["ETag"] == plain_hit["ETag"]
    assert "Content-Encoding" not in plain_hit
    assert "Accept-Encoding" in vary(plain_hit)


def test_answers_carrying_tokens_are_never_compressed():
    """BREACH: a login answer holds a secret next to input the client chose."""
    user = UserFactory(name="x" * 150)
    response = anonymous().post(
        "/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json", HTTP_ACCEPT_ENCODING="gzip"
    )
    assert response.status_code == 200
    assert len(response.content) > 200
    assert "Content-Encoding" not in response


def test_static_files_have_hashed_names_and_far_future_caching():
    url = staticfiles_storage.url("admin/css/base.css")
    assert re.search(r"/base\.[0-9a-f]{12}\.css$", url), url
    response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"
    assert response["Content-Encoding"] == "gzip"  # whitenoise's pre-compressed copy
    body = gzip.decompress(b"".join(response.streaming_content))
    assert b"{" in body
