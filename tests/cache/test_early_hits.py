"""Known hits answered before URL resolution and DRF (softfactory.cache.EarlyHitsMiddleware), on the
real stack.

The first GET with a given signature goes through the view, which records the key it used;
later ones from callers DRF would accept are answered from the entry without DRF. Everything
else (misses, early refreshes, Redis errors, sessions, other schemes, bad tokens) is DRF's.
"""

from __future__ import annotations

import time

import pytest
from django.urls.resolvers import URLResolver
from rest_framework.views import APIView

from platform_core.models import User
from softfactory import cache
from tests.cache.conftest import anonymous, metric, requests_metric
from tests.coocook.factories import ChefFactory, ReviewFactory
from tests.platform_core.factories import UserFactory, token_for
from tests.review.factories import CampaignFactory
from tests.stack import wait_for_replay

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CHEFS = "/api/coocook/chefs"
CAMPAIGNS = "/api/review/campaigns"
# Headers that differ between two answers for reasons of their own (none expected today).
PER_ANSWER_HEADERS: set[str] = set()


class DRFCalls:
    """Counts DRF dispatches while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = APIView.dispatch

        def counted(view, request, *args, **kwargs):
            self.count += 1
            return original(view, request, *args, **kwargs)

        monkeypatch.setattr(APIView, "dispatch", counted)


def _headers(response) -> dict[str, str]:
    return {k: v for k, v in response.items() if k not in PER_ANSWER_HEADERS}


def _public_paths() -> list[str]:
    chef = ChefFactory()
    ReviewFactory(chef=chef, booking__chef=chef)
    campaign = CampaignFactory()
    wait_for_replay()
    return [
        f"{CHEFS}?per_page=2",
        f"{CHEFS}?cuisine={chef.cuisine_type}&ordering=hourly_rate",
        f"{CHEFS}/{chef.pk}",
        f"{CHEFS}/{chef.pk}/reviews",
        f"{CAMPAIGNS}?per_page=3",
        f"{CAMPAIGNS}/{campaign.pk}",
    ]


def test_a_known_hit_is_answered_without_url_resolution_or_drf(monkeypatch):
    ChefFactory.create_batch(3)
    wait_for_replay()
    client = anonymous()
    assert client.get(CHEFS)["X-Cache"] == "miss"  # the view answers, and the signature is learnt
    drf = DRFCalls(monkeypatch)
    resolved = []
    original_resolve = URLResolver.resolve
    monkeypatch.setattr(URLResolver, "resolve", lambda *a: resolved.append(a[1]) or original_resolve(*a))
    hits = requests_metric("chefs", "hit")
    early = client.get(CHEFS)
    assert early.status_code == 200
    assert early["X-Cache"] == "hit"
    assert drf.count == 0
    assert resolved == []
    assert requests_metric("chefs", "hit") == hits + 1  # counted like any other hit


def test_early_answers_are_counted_in_the_request_metrics_under_their_view():
    ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    labels = {"view": "chef-list", "method": "GET"}

    def counts() -> tuple[float, ...]:
        return (
            metric("django_http_responses_total_by_status_view_method_total", status="200", **labels),
            metric("django_http_requests_total_by_view_transport_method_total", transport="http", **labels),
            metric("django_http_requests_latency_seconds_by_view_method_count", **labels),
            metric("django_http_responses_total_by_status_total", status="200"),
        )

    client.get(CHEFS)
    before = counts()
    assert client.get(CHEFS)["X-Cache"] == "hit"
    assert counts() == tuple(value + 1 for value in before)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "token"])
def test_early_answers_equal_the_views_own_byte_for_byte_and_header_for_header(settings, signed_in):
    paths = _public_paths()
    client = anonymous()
    if signed_in:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(UserFactory())}")
    for path in paths:
        assert client.get(path).status_code == 200, path  # fills and learns
    settings.RESPONSE_CACHE_EARLY_HITS = False
    through_drf = {path: client.get(path) for path in paths}
    settings.RESPONSE_CACHE_EARLY_HITS = True
    for path in paths:
        early = client.get(path)
        assert through_drf[path]["X-Cache"] == early["X-Cache"] == "hit", path
        assert early.content == through_drf[path].content, path
        assert _headers(early) == _headers(through_drf[path]), path
        if not signed_in:
            assert early["Cache-Control"] == "public, no-cache"
        # 304 on revalidation, as for the view's own answers.
        assert client.get(path, HTTP_IF_NONE_MATCH=early["ETag"]).status_code == 304


def test_a_revoked_token_or_an_inactive_user_gets_drfs_401(monkeypatch):
    ChefFactory.create_batch(2)
    wait_for_replay()
    user = UserFactory()
    client = anonymous()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    assert client.get(CHEFS).status_code == 200
    assert client.get(CHEFS)["X-Cache"] == "hit"
    assert client.post("/api/auth/logout").status_code in (200, 204)
    revoked = client.get(CHEFS)
    assert revoked.status_code == 401
    assert "X-Cache" not in revoked

    other = UserFactory()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(other)}")
    assert client.get(CHEFS)["X-Cache"] == "hit"
    User.objects.filter(pk=other.pk).update(is_active=False)
    from platform_core.authentication import forget_tokens
    from platform_core.models import AuthToken

    forget_tokens(list(AuthToken.objects.filter(user=other).values_list("key_hash", flat=True)))
    assert client.get(CHEFS).status_code == 401


def test_sessions_and_other_authorization_schemes_go_through_drf(monkeypatch, staff_user):
    ChefFactory.create_batch(2)
    wait_for_replay()
    assert anonymous().get(CHEFS)["X-Cache"] == "miss"
    drf = DRFCalls(monkeypatch)
    bearer = anonymous().get(CHEFS, HTTP_AUTHORIZATION="Bearer something")
    assert bearer.status_code == 200  # not a token: DRF reads it as anonymous
    assert drf.count == 1
    malformed = anonymous().get(CHEFS, HTTP_AUTHORIZATION="Token")
    assert malformed.status_code == 401  # DRF's "no credentials provided"
    assert drf.count == 2
    session = anonymous()
    session.force_login(staff_user)
    assert session.get(CHEFS)["X-Cache"] == "hit"
    assert drf.count == 3


def test_a_miss_is_looked_up_once_and_filled_by_the_view(monkeypatch):
    chefs = ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    client.get(CHEFS)
    chefs[0].name = "Renamed"
    chefs[0].save()  # a new generation: the learnt key now misses
    lookups = []
    original = cache._lookup
    monkeypatch.setattr(cache, "_lookup", lambda *args: lookups.append(args) or original(*args))
    drf = DRFCalls(monkeypatch)
    wait_for_replay()
    missed = client.get(CHEFS)
    assert missed["X-Cache"] == "miss"
    assert "Renamed" in missed.content.decode()
    assert len(lookups) == 1
    assert drf.count == 1


def test_an_early_refresh_is_decided_once_and_made_by_the_view(monkeypatch):
    ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    client.get(CHEFS)
    draws = []
    monkeypatch.setattr(cache, "draw", lambda: draws.append(1) or 0.5)
    monkeypatch.setattr(cache, "clock", lambda: time.time() + cache.entry_ttl())  # past the soft expiry
    refreshed = client.get(CHEFS)
    assert refreshed["X-Cache"] == "refresh"
    assert len(draws) == 1


def test_with_redis_unreachable_the_view_answers_from_the_primary_after_one_attempt(monkeypatch):
    ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    client.get(CHEFS)
    attempts = []

    def unreachable(*args):
        attempts.append(args)
        raise cache.CacheUnavailable("test")

    monkeypatch.setattr(cache, "_lookup", unreachable)
    answer = client.get(CHEFS)
    assert answer.status_code == 200
    assert answer["X-Cache"] == "error"
    assert len(answer.json()["results"]) == 2
    assert len(attempts) == 1


def test_bad_requests_are_never_learnt_and_stay_4xx(monkeypatch):
    client = anonymous()
    for _ in range(2):
        assert client.get(CHEFS, {"per_page": "0"}).status_code == 400
        assert client.get(CHEFS, {"ordering": "nope"}).status_code == 400
        assert client.get(f"{CHEFS}/999999999").status_code == 404
    assert cache._learnt == {}


def test_learnt_signatures_are_bounded_per_process(monkeypatch):
    ChefFactory.create_batch(2)
    wait_for_replay()
    monkeypatch.setattr(cache, "EARLY_ROUTES_MAX", 2)
    client = anonymous()
    for page in ("1", "2", "3"):
        assert client.get(CHEFS, {"per_page": "1", "page": page}).status_code == 200
    assert len(cache._learnt) == 2
    assert {sig[3] for sig in cache._learnt} == {"per_page=1&page=2", "per_page=1&page=3"}  # the oldest went


def test_long_query_strings_are_answered_by_the_view_and_never_learnt(monkeypatch):
    ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    junk = {"utm_campaign": "x" * cache.EARLY_QUERY_MAX}
    assert client.get(CHEFS, junk)["X-Cache"] == "miss"
    drf = DRFCalls(monkeypatch)
    assert client.get(CHEFS, junk)["X-Cache"] == "hit"  # the same entry, through the view
    assert drf.count == 1
    assert cache._learnt == {}


def test_switched_off_every_request_goes_through_drf(monkeypatch, settings):
    ChefFactory.create_batch(2)
    wait_for_replay()
    client = anonymous()
    client.get(CHEFS)
    settings.RESPONSE_CACHE_EARLY_HITS = False
    drf = DRFCalls(monkeypatch)
    assert client.get(CHEFS)["X-Cache"] == "hit"
    assert drf.count == 1
