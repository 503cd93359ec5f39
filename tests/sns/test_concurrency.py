"""Concurrent cancels of one post, each request on its own thread and database connection."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections
from rest_framework.test import APIClient

from sns.models import SNSPost
from tests.platform_core.factories import UserFactory, token_for
from tests.sns.factories import SNSPostFactory


def _cancel_all_at_once(post_id: int, tokens: list[str]) -> list[tuple[int, str]]:
    """POST one cancel per token, all released together; returns (status, status or code) pairs."""
    start = threading.Barrier(len(tokens))
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def cancel(token: str) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            start.wait(timeout=30)
            response = client.post(f"/api/sns/posts/{post_id}/cancel")
            body = response.json()
            with lock:
                results.append((response.status_code, body.get("status") or body.get("code")))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=cancel, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(tokens)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_cancels_of_one_post_give_exactly_one_200():
    user = UserFactory.create()
    post = SNSPostFactory.create(user=user)

    results = _cancel_all_at_once(post.pk, [token_for(user), token_for(user)])

    assert Counter(results) == {(200, "cancelled"): 1, (409, "post_not_cancellable"): 1}
    assert SNSPost.objects.using("default").get(pk=post.pk).status == SNSPost.Status.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_cancels_of_one_post_give_exactly_one_200():
    user = UserFactory.create()
    post = SNSPostFactory.create(user=user)

    results = _cancel_all_at_once(post.pk, [token_for(user) for _ in range(8)])

    assert Counter(results) == {(200, "cancelled"): 1, (409, "post_not_cancellable"): 7}
    assert SNSPost.objects.using("default").get(pk=post.pk).status == SNSPost.Status.CANCELLED
