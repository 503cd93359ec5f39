"""Real concurrency: thirty clients race for one chef's slot through a live gunicorn."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from coocook.models import Booking
from tests.coocook.factories import ChefFactory, days_from_today
from tests.live import live_gunicorn  # noqa: F401  (the fixture)
from tests.platform_core.factories import UserFactory, token_for
from tests.stack import wait_for_replay

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CLIENTS = 30


def test_thirty_concurrent_requests_for_one_slot_create_exactly_one_booking(live_gunicorn):  # noqa: F811
    chef = ChefFactory()
    tokens = [token_for(user) for user in UserFactory.create_batch(CLIENTS)]
    body = {
        "chef_id": chef.pk,
        "booking_date": days_from_today(14).isoformat(),
        "start_time": "19:00",
        "duration_hours": 2,
        "guests": 2,
    }
    start = threading.Barrier(CLIENTS)

    def attempt(token: str) -> tuple[int, dict]:
        with requests.Session() as session:  # each client on its own HTTP connection
            start.wait(30)
            response = session.post(
                f"{live_gunicorn}/api/coocook/bookings",
                json=body,
                headers={"Authorization": f"Token {token}"},
                timeout=60,
            )
            return response.status_code, response.json()

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(attempt, tokens))

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * (CLIENTS - 1)
    assert {answer["code"] for status, answer in results if status == 409} == {"booking_overlap"}
    [created] = [answer for status, answer in results if status == 201]
    assert Booking.objects.using("default").filter(chef=chef).count() == 1
    assert Booking.objects.using("default").get(chef=chef).pk == created["id"]


def test_the_live_server_reads_the_test_database(live_gunicorn):  # noqa: F811
    chef = ChefFactory(name="Served live")
    response = requests.get(f"{live_gunicorn}/api/coocook/chefs/{chef.pk}", timeout=30)
    # Right after the write a replica may not have replayed it yet: the primary answers then.
    if response.status_code == 404:
        wait_for_replay()
        response = requests.get(f"{live_gunicorn}/api/coocook/chefs/{chef.pk}", timeout=30)
    assert response.status_code == 200
    assert response.json()["name"] == "Served live"
