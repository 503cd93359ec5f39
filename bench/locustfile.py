"""SoftFactory load profiles for locust: pure HTTP, no Django import (docs/PERFORMANCE.md).

Importing Django (settings) before locust's gevent monkey-patching breaks it, and the load tool
lives in its own virtualenv (bench/.venv), so this file only speaks HTTP. `bench/run.py` picks
the user class on the command line and configures it through environment variables:

* `MixUser` - the realistic mix: browse and filter chefs, open a chef, read its reviews, search
  and open campaigns, list one's bookings and posts, book and pay, schedule a post. Every user
  authenticates with one of the API tokens the seeder wrote (`BENCH_TOKENS_FILE`), so password
  hashing is not part of the measured window.
* `EndpointUser` - one endpoint at fixed concurrency with no think time (`BENCH_PATHS`,
  `|`-separated, cycled; `BENCH_AUTH=1` sends a token). Keep-alive HTTP client.
* `LoginUser` - `POST /api/auth/login` with the seeded users' shared password, measured apart.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import between, constant, task
from locust.contrib.fasthttp import FastHttpUser

CUISINES = ("korean", "japanese", "italian", "french", "chinese", "thai", "indian", "mexican", "vegan", "spanish")
CATEGORIES = ("beauty", "food", "restaurant", "fashion", "tech", "home", "travel", "kids", "pets", "fitness")
# What people search for most; a long tail of rarer words would mostly miss the cache, as it should.
SEARCH_WORDS = ("serum", "kimchi", "omakase", "sneakers", "earbuds", "vacuum", "jeju", "yoga", "kit", "set")
CHEF_ORDERINGS = ("-rating", "-rating", "-rating", "-rating", "hourly_rate", "-hourly_rate", "-created_at")
# Most visitors look at the first pages only.
PAGES = (1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5)
PLATFORMS = ("twitter", "instagram", "facebook", "linkedin", "threads")
KST = dt.timezone(dt.timedelta(hours=9))


def _tokens() -> list[str]:
    path = os.environ.get("BENCH_TOKENS_FILE", "")
    if not path:
        return []
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


TOKENS = _tokens()
_next_user = itertools.count()


def _token() -> str:
    if not TOKENS:
        raise RuntimeError("BENCH_TOKENS_FILE lists no API tokens")
    return TOKENS[next(_next_user) % len(TOKENS)]


def _ids(body: Any) -> list[int]:
    if isinstance(body, dict):
        return [item["id"] for item in body.get("results", []) if isinstance(item, dict) and "id" in item]
    return []


class MixUser(FastHttpUser):
    """One signed-in customer of every domain, with 1-3 s of think time between actions."""

    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Token {_token()}"}
        self.chefs: list[int] = []
        self.campaigns: list[int] = []
        self.post_delay = float(os.environ.get("BENCH_POST_DELAY_SECONDS", "20"))

    def _get_json(self, path: str, name: str) -> Any:
        with self.client.get(path, headers=self.auth, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return None
            try:
                return response.json()
            except ValueError:
                response.failure("not JSON")
                return None

    def _remember(self, seen: list[int], ids: list[int]) -> None:
        seen.extend(ids)
        del seen[:-60]

    @task(25)
    def browse_chefs(self) -> None:
        page = random.choice(PAGES)
        body = self._get_json(f"/api/coocook/chefs?page={page}", "GET /api/coocook/chefs")
        self._remember(self.chefs, _ids(body))

    @task(15)
    def filter_chefs(self) -> None:
        cuisine, ordering = random.choice(CUISINES), random.choice(CHEF_ORDERINGS)
        page = random.choice(PAGES[:9])
        body = self._get_json(
            f"/api/coocook/chefs?cuisine={cuisine}&ordering={ordering}&page={page}",
            "GET /api/coocook/chefs?cuisine&ordering",
        )
        self._remember(self.chefs, _ids(body))

    @task(15)
    def open_chef(self) -> None:
        if not self.chefs:
            return self.browse_chefs()
        self._get_json(f"/api/coocook/chefs/{random.choice(self.chefs)}", "GET /api/coocook/chefs/{id}")
        return None

    @task(10)
    def chef_reviews(self) -> None:
        if not self.chefs:
            return self.browse_chefs()
        self._get_json(f"/api/coocook/chefs/{random.choice(self.chefs)}/reviews", "GET /api/coocook/chefs/{id}/reviews")
        return None

    @task(10)
    def search_campaigns(self) -> None:
        if random.random() < 0.5:
            path = f"/api/review/campaigns?category={random.choice(CATEGORIES)}"
        else:
            path = f"/api/review/campaigns?q={random.choice(SEARCH_WORDS)}"
        body = self._get_json(path, "GET /api/review/campaigns?category|q")
        self._remember(self.campaigns, _ids(body))

    @task(5)
    def open_campaign(self) -> None:
        if not self.campaigns:
            return self.search_campaigns()
        self._get_json(f"/api/review/campaigns/{random.choice(self.campaigns)}", "GET /api/review/campaigns/{id}")
        return None

    @task(5)
    def my_bookings(self) -> None:
        self._get_json("/api/coocook/bookings", "GET /api/coocook/bookings")

    @task(3)
    def my_posts(self) -> None:
        self._get_json("/api/sns/posts", "GET /api/sns/posts")

    @task(2)
    def me(self) -> None:
        self._get_json("/api/auth/me", "GET /api/auth/me")

    @task(3)
    def book_and_pay(self) -> None:
        if not self.chefs:
            return self.browse_chefs()
        # Far ahead and spread out, so two users rarely want the same chef at the same hour;
        # when they do, 409 is the right answer, not an error.
        day = dt.datetime.now(KST).date() + dt.timedelta(days=random.randint(400, 1500))
        body = {
            "chef_id": random.choice(self.chefs),
            "booking_date": day.isoformat(),
            "start_time": f"{random.randint(10, 20):02d}:00",
            "duration_hours": random.randint(1, 3),
            "guests": random.randint(1, 6),
            "notes": "",
        }
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/api/coocook/bookings", json=body, headers=headers, name="POST /api/coocook/bookings", catch_response=True
        ) as response:
            if response.status_code == 409:
                response.success()
                return None
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}")
                return None
            booking_id = response.json()["id"]
        payment = {"booking_id": booking_id, "method": random.choice(("card", "bank_transfer"))}
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/api/payment/payments",
            json=payment,
            headers=headers,
            name="POST /api/payment/payments",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}")
        return None

    @task(3)
    def schedule_post(self) -> None:
        body = {"platform": random.choice(PLATFORMS), "content": f"Benchmark post {uuid.uuid4().hex[:12]}"}
        if random.random() < 0.3:
            # Due a little later (the runner waits for these after the run); the others go out now.
            at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.post_delay)
            body["scheduled_at"] = at.isoformat()
        headers = {**self.auth, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            "/api/sns/schedule", json=body, headers=headers, name="POST /api/sns/schedule", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}")


class EndpointUser(FastHttpUser):
    """The same request(s) back to back: throughput and latency of one endpoint."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.paths = itertools.cycle(p for p in os.environ.get("BENCH_PATHS", "/healthz").split("|") if p)
        self.request_name = os.environ.get("BENCH_NAME") or None
        self.auth = {"Authorization": f"Token {_token()}"} if os.environ.get("BENCH_AUTH") == "1" else {}

    @task
    def hit(self) -> None:
        with self.client.get(
            next(self.paths), headers=self.auth, name=self.request_name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")


class LoginUser(FastHttpUser):
    """Password logins (Argon2 in production): measured apart from the mix."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.users = int(os.environ.get("BENCH_USER_COUNT", "1000"))
        self.password = os.environ.get("BENCH_PASSWORD", "")

    @task
    def login(self) -> None:
        body = {"email": f"seed-user-{random.randrange(self.users)}@example.com", "password": self.password}
        with self.client.post(
            "/api/auth/login", json=body, name="POST /api/auth/login", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
