"""Every write path invalidates: GET (miss) -> GET (hit) -> write -> GET shows the change, for the
writer and for another anonymous client; a rollback leaves the cached entry in place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from coocook import services as coocook_services
from coocook.models import Chef, Review
from review import services as review_services
from review.models import Application, Campaign
from softfactory import cache
from tests.cache.conftest import anonymous, invalidations_metric
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory, days_from_today
from tests.platform_core.factories import StaffFactory, UserFactory
from tests.review.factories import ApplicationFactory, CampaignFactory

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

CHEFS = "/api/coocook/chefs"
CAMPAIGNS = "/api/review/campaigns"
Check = Callable[[str, object], bool]


def generation(namespace: str) -> int:
    return int(get_redis_connection("default").hget(cache.meta_key(namespace), "gen") or 0)


def cached_then_written(urls: list[str], write: Callable[[], None], changed: Check, *, writer: APIClient | None = None):
    """The issue's protocol for one write path, over every URL that shows the written data."""
    for url in urls:
        client = anonymous()
        first = client.get(url)
        assert first["X-Cache"] == "miss", url
        second = client.get(url)
        assert second["X-Cache"] == "hit", url
        assert second.content == first.content
        assert not changed(url, first), f"{url} shows the change before the write"
    write()
    readers = [anonymous()] if writer is None else [writer, anonymous()]
    for url in urls:
        for reader in readers:
            response = reader.get(url)
            assert changed(url, response), f"{url} is stale after the write: {response.content[:300]!r}"


def names(response) -> list[str]:
    body = response.json()
    return [item["name"] for item in body.get("results", [body])] if response.status_code == 200 else []


def chef_urls(chef: Chef) -> list[str]:
    return [CHEFS, f"{CHEFS}/{chef.pk}"]


def shows_name(name: str) -> Check:
    return lambda url, response: name in names(response)


@pytest.fixture
def staff_client(client_for):
    return client_for(StaffFactory())


# --- chefs ------------------------------------------------------------------------------


def test_a_staff_patch_of_a_chef_shows_in_the_list_and_detail(staff_client):
    chef = ChefFactory(name="Before")
    cached_then_written(
        chef_urls(chef),
        lambda: staff_client.patch(f"{CHEFS}/{chef.pk}", {"name": "After"}, format="json"),
        shows_name("After"),
        writer=staff_client,
    )


def test_the_chefs_own_user_replacing_its_profile_shows_everywhere(client_for):
    owner = UserFactory()
    chef = ChefFactory(owner=owner, name="Before")
    writer = client_for(owner)
    body = {"name": "Owner edit", "cuisine_type": "thai", "bio": "", "hourly_rate": "10.00", "currency": "KRW"}
    cached_then_written(
        chef_urls(chef),
        lambda: writer.put(f"{CHEFS}/{chef.pk}", body, format="json"),
        shows_name("Owner edit"),
        writer=writer,
    )


def test_a_created_chef_appears_in_the_list(staff_client):
    ChefFactory(name="Existing")
    body = {"name": "Newcomer", "cuisine_type": "thai", "hourly_rate": "10.00", "currency": "KRW"}
    cached_then_written(
        [CHEFS], lambda: staff_client.post(CHEFS, body, format="json"), shows_name("Newcomer"), writer=staff_client
    )


def test_a_model_save_shows(client_for):
    chef = ChefFactory(name="Before", hourly_rate=Decimal("10"))

    def write():
        chef.hourly_rate = Decimal("99.00")
        chef.save()

    cached_then_written(
        chef_urls(chef), write, lambda url, r: r.json().get("results", [r.json()])[0]["hourly_rate"] == "99.00"
    )


def test_a_model_delete_shows(client_for):
    keep, doomed = ChefFactory(name="Keep"), ChefFactory(name="Doomed")
    url = f"{CHEFS}/{doomed.pk}"
    cached_then_written(
        [CHEFS, url], doomed.delete, lambda u, r: r.status_code == 404 if u == url else names(r) == ["Keep"]
    )
    assert keep.pk


def test_a_queryset_update_shows():
    chef = ChefFactory(name="Before")
    cached_then_written(
        chef_urls(chef), lambda: Chef.objects.filter(pk=chef.pk).update(name="Updated"), shows_name("Updated")
    )


def test_a_queryset_delete_shows():
    ChefFactory(name="Keep")
    ChefFactory.create_batch(2, name="Doomed")
    cached_then_written([CHEFS], lambda: Chef.objects.filter(name="Doomed").delete(), lambda u, r: names(r) == ["Keep"])


def test_bulk_create_shows():
    ChefFactory(name="Existing")
    cached_then_written(
        [CHEFS],
        lambda: Chef.objects.bulk_create(
            [Chef(name=f"Bulk {i}", cuisine_type="thai", hourly_rate=Decimal("1")) for i in range(3)]
        ),
        lambda u, r: r.json()["count"] == 4,
    )


def test_bulk_update_shows():
    chefs = ChefFactory.create_batch(2, name="Before")

    def write():
        for chef in chefs:
            chef.name = "Bulk updated"
        Chef.objects.bulk_update(chefs, ["name"])

    cached_then_written([CHEFS], write, lambda u, r: names(r) == ["Bulk updated", "Bulk updated"])


def test_an_admin_edit_shows():
    chef = ChefFactory(name="Before")
    admin = Client()
    admin.force_login(StaffFactory(is_superuser=True))
    form = {
        "name": "Admin edit",
        "cuisine_type": chef.cuisine_type,
        "bio": chef.bio,
        "hourly_rate": str(chef.hourly_rate),
        "currency": chef.currency,
        "is_active": "on",
        "owner": "",
    }

    def write():
        assert admin.post(f"/admin/coocook/chef/{chef.pk}/change/", form).status_code == 302

    cached_then_written(chef_urls(chef), write, shows_name("Admin edit"))


def test_an_admin_action_shows():
    keep, hidden = ChefFactory(name="Keep"), ChefFactory(name="Hidden")
    admin = Client()
    admin.force_login(StaffFactory(is_superuser=True))

    def write():
        admin.post("/admin/coocook/chef/", {"action": "deactivate", "_selected_action": [hidden.pk]})

    url = f"{CHEFS}/{hidden.pk}"
    cached_then_written([CHEFS, url], write, lambda u, r: r.status_code == 404 if u == url else names(r) == ["Keep"])
    assert keep.pk


def test_a_review_moves_the_chefs_rating_and_lists_the_review(client_for):
    customer = UserFactory()
    booking = BookingFactory(user=customer, finished=True)
    chef = booking.chef
    writer = client_for(customer)
    urls = [*chef_urls(chef), f"{CHEFS}/{chef.pk}/reviews"]

    def changed(url, response):
        body = response.json()
        if url.endswith("/reviews"):
            return [item["comment"] for item in body["results"]] == ["Superb"]
        item = body.get("results", [body])[0]
        return (item["rating"], item["review_count"]) == ("5.00", 1)

    cached_then_written(
        urls,
        lambda: writer.post(
            "/api/coocook/reviews", {"booking_id": booking.pk, "rating": 5, "comment": "Superb"}, format="json"
        ),
        changed,
        writer=writer,
    )


def test_moderating_a_review_comment_in_the_admin_shows():
    review = ReviewFactory(comment="Rude words")
    admin = Client()
    admin.force_login(StaffFactory(is_superuser=True))

    def write():
        assert admin.post(f"/admin/coocook/review/{review.pk}/change/", {"comment": "[removed]"}).status_code == 302

    cached_then_written(
        [f"{CHEFS}/{review.chef_id}/reviews"], write, lambda u, r: r.json()["results"][0]["comment"] == "[removed]"
    )


def test_raw_sql_shows_once_its_writer_bumps_the_namespace():
    chef = ChefFactory(name="Before")

    def write():
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE coocook_chef SET name = %s WHERE id = %s", ["Raw", chef.pk])
            cache.bump_on_commit("chefs")  # what a service running raw SQL must do

    cached_then_written(chef_urls(chef), write, shows_name("Raw"))


def test_the_cache_bump_command_invalidates_what_django_cannot_see(capsys):
    chef = ChefFactory(name="Before")

    def write():
        with connection.cursor() as cursor:  # as a COPY seed or another program would
            cursor.execute("UPDATE coocook_chef SET name = %s WHERE id = %s", ["Outside", chef.pk])
        call_command("cache_bump", "chefs")

    cached_then_written(chef_urls(chef), write, shows_name("Outside"))
    assert "bumped: chefs" in capsys.readouterr().out
    before = generation("chefs")
    call_command("cache_bump", "--all")
    assert generation("chefs") == before + 1
    assert all(generation(ns) > 0 for ns in ("reviews", "campaigns"))  # known, so bumped too
    with pytest.raises(CommandError):
        call_command("cache_bump", "chef")  # a typo is refused, not silently ignored


# --- campaigns --------------------------------------------------------------------------


def campaign_urls(campaign: Campaign) -> list[str]:
    return [CAMPAIGNS, f"{CAMPAIGNS}/{campaign.pk}"]


def campaign_item(response) -> dict:
    body = response.json()
    return body["results"][0] if "results" in body else body


def test_a_staff_patch_of_a_campaign_shows(staff_client):
    campaign = CampaignFactory(title="Before")
    cached_then_written(
        campaign_urls(campaign),
        lambda: staff_client.patch(f"{CAMPAIGNS}/{campaign.pk}", {"title": "After"}, format="json"),
        lambda u, r: campaign_item(r)["title"] == "After",
        writer=staff_client,
    )


def test_an_application_taking_a_seat_shows_in_applicant_count(client_for):
    campaign = CampaignFactory()
    applicant = client_for(UserFactory())
    cached_then_written(
        campaign_urls(campaign),
        lambda: applicant.post(f"{CAMPAIGNS}/{campaign.pk}/applications", {"message": "Me!"}, format="json"),
        lambda u, r: campaign_item(r)["applicant_count"] == 1,
        writer=applicant,
    )


def test_a_rejection_giving_a_seat_back_shows(staff_client):
    application = ApplicationFactory()
    campaign = application.campaign

    def write():
        response = staff_client.patch(
            f"/api/review/applications/{application.pk}", {"status": "rejected"}, format="json"
        )
        assert response.status_code == 200

    cached_then_written(campaign_urls(campaign), write, lambda u, r: campaign_item(r)["applicant_count"] == 0)
    assert Application.objects.get().status == "rejected"


def test_a_campaign_admin_action_shows():
    campaign = CampaignFactory()
    admin = Client()
    admin.force_login(StaffFactory(is_superuser=True))
    cached_then_written(
        [f"{CAMPAIGNS}/{campaign.pk}"],
        lambda: admin.post("/admin/review/campaign/", {"action": "close", "_selected_action": [campaign.pk]}),
        lambda u, r: campaign_item(r)["status"] == "closed",
    )


def test_the_deadline_job_closing_campaigns_shows():
    campaign = CampaignFactory()
    cached_then_written(
        [CAMPAIGNS, f"{CAMPAIGNS}/{campaign.pk}"],
        lambda: review_services.campaigns_close_past_deadline(now=timezone.now() + dt.timedelta(days=30)),
        lambda u, r: r.json()["results"] == [] if u == CAMPAIGNS else campaign_item(r)["status"] == "closed",
    )


# --- what must NOT invalidate -----------------------------------------------------------


def test_a_booking_does_not_invalidate_the_chef_list(client_for):
    chef = ChefFactory()
    customer = client_for(UserFactory())
    cached = anonymous().get(CHEFS)
    before = generation("chefs")
    body = {
        "chef_id": chef.pk,
        "booking_date": str(days_from_today(10)),
        "start_time": "18:00",
        "duration_hours": 2,
        "guests": 2,
    }
    assert customer.post("/api/coocook/bookings", body, format="json").status_code == 201
    coocook_services.booking_cancel(booking_id=chef.bookings.get().pk, by=StaffFactory())
    assert generation("chefs") == before
    again = anonymous().get(CHEFS)
    assert again["X-Cache"] == "hit"
    assert again.content == cached.content


def test_changing_only_unlisted_chef_fields_bumps_nothing():
    chef = ChefFactory()
    anonymous().get(CHEFS)
    before = generation("chefs")
    chef.owner = UserFactory()
    chef.save(update_fields=["owner"])
    Chef.objects.filter(pk=chef.pk).update(rating_total=3)
    assert generation("chefs") == before
    assert anonymous().get(CHEFS)["X-Cache"] == "hit"


def test_a_rollback_leaves_the_cached_entry_in_place():
    chef = ChefFactory(name="Kept")
    cached = anonymous().get(f"{CHEFS}/{chef.pk}")
    before = generation("chefs")

    def writes_then_abort() -> None:
        with transaction.atomic():
            Chef.objects.filter(pk=chef.pk).update(name="Rolled back")
            chef.name = "Rolled back too"
            chef.save()
            Chef.objects.bulk_create([Chef(name="Ghost", cuisine_type="x", hourly_rate=Decimal("1"))])
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        writes_then_abort()
    assert generation("chefs") == before
    again = anonymous().get(f"{CHEFS}/{chef.pk}")
    assert again["X-Cache"] == "hit"
    assert again.content == cached.content


def test_a_rolled_back_savepoint_bumps_nothing_but_a_committed_one_bumps_once():
    chef = ChefFactory(name="Kept")
    anonymous().get(CHEFS)
    before = generation("chefs")
    with transaction.atomic():
        try:
            with transaction.atomic():
                Chef.objects.filter(pk=chef.pk).update(name="Savepoint")
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        UserFactory()  # the outer transaction commits other work
    assert generation("chefs") == before
    with transaction.atomic():
        for name in ("One", "Two", "Three"):
            Chef.objects.filter(pk=chef.pk).update(name=name)
            with transaction.atomic():
                chef.refresh_from_db()
                chef.save()
    assert generation("chefs") == before + 1  # one bump per transaction, after its commit
    assert "Three" in anonymous().get(CHEFS).content.decode()


def test_a_bump_happens_after_commit_never_before():
    chef = ChefFactory()
    before = generation("chefs")
    with transaction.atomic():
        Chef.objects.filter(pk=chef.pk).update(name="Pending")
        assert generation("chefs") == before  # not yet: a reader could cache pre-commit rows
    assert generation("chefs") == before + 1
    assert invalidations_metric("chefs", "ok") >= 1
    assert Review.objects.count() == 0
