"""Object-level access for every owner-scoped object (API.md "Errors").

Bookings, posts, payments and applications belong to one user. For each of them, every read
and every write that names the object (in the path or in the body) is tried by its owner,
by another user, by staff and anonymously: another user gets 404 (as if it did not exist)
and changes nothing, anonymous gets 401 with `WWW-Authenticate: Token`, and 403 is kept for
staff-only actions on something the caller can see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from coocook.models import Booking, Review
from platform_core import services as platform_services
from platform_core.models import Payment
from review.models import Application, Campaign
from sns.models import SNSPost
from tests.coocook.factories import BookingFactory, ChefFactory
from tests.platform_core.factories import UserFactory
from tests.review.factories import ApplicationFactory, CampaignFactory
from tests.sns.factories import SNSPostFactory

pytestmark = pytest.mark.django_db


def _booking(owner: Any) -> Booking:
    return BookingFactory(user=owner)


def _finished_booking(owner: Any) -> Booking:
    return BookingFactory(user=owner, finished=True, status=Booking.Status.COMPLETED)


def _post(owner: Any) -> SNSPost:
    return SNSPostFactory(user=owner)


def _payment(owner: Any) -> Payment:
    booking = BookingFactory(user=owner)
    return platform_services.payment_create(
        user=owner, payable_kind="coocook.booking", payable_id=booking.pk, method="card"
    )


def _application(owner: Any) -> Application:
    return ApplicationFactory(user=owner)


def _booking_state(booking: Booking) -> tuple:
    booking.refresh_from_db()
    return (booking.status, Review.objects.filter(booking=booking).count(), _payments_of(booking.pk))


def _payments_of(booking_id: int) -> int:
    return Payment.objects.filter(payable_kind="coocook.booking", payable_id=booking_id).count()


def _post_state(post: SNSPost) -> tuple:
    post.refresh_from_db()
    return (post.status, post.attempts)


def _payment_state(payment: Payment) -> tuple:
    payment.refresh_from_db()
    return (payment.status, payment.refunded_at)


def _application_state(application: Application) -> tuple:
    application.refresh_from_db()
    return (application.status,)


@dataclass(frozen=True)
class Access:
    """One request that names an owner-scoped object, and who may make it."""

    name: str
    make: Callable[[Any], Any]
    state: Callable[[Any], tuple]
    method: str
    path: str  # "{id}" is the object's id
    body: Callable[[Any], dict] | None = None
    owner_status: int = 200  # the object's owner (not staff)
    staff_status: int = 200  # a staff user who doesn't own it

    def request(self, client: Any, obj: Any) -> Any:
        path = self.path.format(id=obj.pk)
        body = self.body(obj) if self.body else None
        return (
            getattr(client, self.method.lower())(path, body, format="json")
            if body
            else getattr(client, self.method.lower())(path)
        )


ACCESSES = [
    Access("read a booking", _booking, _booking_state, "GET", "/api/coocook/bookings/{id}"),
    Access("read a booking's reviews", _booking, _booking_state, "GET", "/api/coocook/bookings/{id}/reviews"),
    Access("cancel a booking", _booking, _booking_state, "POST", "/api/coocook/bookings/{id}/cancel"),
    Access(
        "review a booking",
        _finished_booking,
        _booking_state,
        "POST",
        "/api/coocook/reviews",
        body=lambda booking: {"booking_id": booking.pk, "rating": 5, "comment": "mine"},
        owner_status=201,
        staff_status=404,  # only the booking's user reviews it
    ),
    Access(
        "pay for a booking",
        _booking,
        _booking_state,
        "POST",
        "/api/payment/payments",
        body=lambda booking: {"booking_id": booking.pk, "method": "card"},
        owner_status=201,
        staff_status=404,  # staff don't pay for other people's bookings
    ),
    Access("read a post", _post, _post_state, "GET", "/api/sns/posts/{id}", staff_status=404),
    Access("cancel a post", _post, _post_state, "POST", "/api/sns/posts/{id}/cancel", staff_status=404),
    Access("read a payment", _payment, _payment_state, "GET", "/api/payment/payments/{id}"),
    Access("refund a payment", _payment, _payment_state, "POST", "/api/payment/payments/{id}/refund", owner_status=403),
    Access(
        "decide an application",
        _application,
        _application_state,
        "PATCH",
        "/api/review/applications/{id}",
        body=lambda application: {"status": "approved"},
        owner_status=403,
    ),
]
IDS = [access.name for access in ACCESSES]


@pytest.mark.parametrize("access", ACCESSES, ids=IDS)
def test_another_user_gets_404_and_changes_nothing(access, user, other_user, client_for):
    obj = access.make(user)
    before = access.state(obj)
    response = access.request(client_for(other_user), obj)
    assert response.status_code == 404, response.content
    assert set(response.json()) == {"detail", "code"}  # the same answer as for an id that doesn't exist
    assert access.state(obj) == before


@pytest.mark.parametrize("access", ACCESSES, ids=IDS)
def test_anonymous_gets_401_with_the_token_challenge_and_changes_nothing(access, user, client_for):
    obj = access.make(user)
    before = access.state(obj)
    response = access.request(client_for(None), obj)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert access.state(obj) == before


@pytest.mark.parametrize("access", ACCESSES, ids=IDS)
def test_a_revoked_token_gets_401_and_changes_nothing(access, user, client_for):
    obj = access.make(user)
    before = access.state(obj)
    client = client_for(user)
    assert client.post("/api/auth/logout").status_code == 204
    response = access.request(client, obj)
    assert response.status_code == 401
    assert access.state(obj) == before


@pytest.mark.parametrize("access", ACCESSES, ids=IDS)
def test_the_owner_gets_the_documented_answer(access, user, client_for):
    obj = access.make(user)
    before = access.state(obj)
    response = access.request(client_for(user), obj)
    assert response.status_code == access.owner_status, response.content
    if access.owner_status == 403:  # a staff-only action on the caller's own object
        assert response.json()["code"] == "permission_denied"
        assert access.state(obj) == before


@pytest.mark.parametrize("access", ACCESSES, ids=IDS)
def test_staff_get_the_documented_answer_on_someone_elses_object(access, user, staff_user, client_for):
    obj = access.make(user)
    before = access.state(obj)
    response = access.request(client_for(staff_user), obj)
    assert response.status_code == access.staff_status, response.content
    if access.staff_status == 404:
        assert access.state(obj) == before


@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("/api/coocook/bookings", _booking),
        ("/api/sns/posts", _post),
        ("/api/payment/payments", _payment),
        ("/api/review/applications", _application),
    ],
)
def test_lists_show_only_the_callers_own_objects(path, make, user, other_user, staff_user, client_for):
    mine = make(user)
    make(other_user)
    for viewer, expected in ((user, [mine.pk]), (UserFactory(), []), (staff_user, [])):
        response = client_for(viewer).get(path)
        assert response.status_code == 200
        assert [item["id"] for item in response.json()["results"]] == expected


def test_an_id_past_bigint_is_404_not_an_overflow(user, client_for):
    client = client_for(user)
    huge = 2**70
    for path in (
        f"/api/coocook/bookings/{huge}",
        f"/api/sns/posts/{huge}",
        f"/api/payment/payments/{huge}",
        f"/api/coocook/chefs/{huge}",
        f"/api/review/campaigns/{huge}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.patch(f"/api/review/applications/{huge}", {"status": "approved"}, format="json").status_code == 404


# --- staff-only actions: 403 on what the caller can see, 404 on what it can't ----------------


def test_non_staff_changing_a_visible_campaign_is_403_and_an_invisible_draft_404(user, client_for):
    active = CampaignFactory()
    draft = CampaignFactory(status=Campaign.Status.DRAFT)
    client = client_for(user)
    refused = client.patch(f"/api/review/campaigns/{active.pk}", {"title": "mine now"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert client.patch(f"/api/review/campaigns/{draft.pk}", {"title": "x"}, format="json").status_code == 404
    active.refresh_from_db()
    draft.refresh_from_db()
    assert active.title != "mine now"
    assert draft.title != "x"


def test_non_staff_creating_chefs_or_campaigns_is_403_and_anonymous_401(user, client_for):
    chef = {"name": "N", "cuisine_type": "korean", "bio": "", "hourly_rate": "10.00", "currency": "KRW"}
    campaign = {
        "title": "T",
        "brand": "B",
        "category": "c",
        "reward": "1.00",
        "max_reviewers": 1,
        "deadline": "2099-01-01T00:00:00Z",
    }
    for path, body in (("/api/coocook/chefs", chef), ("/api/review/campaigns", campaign)):
        assert client_for(user).post(path, body, format="json").status_code == 403
        assert client_for(None).post(path, body, format="json").status_code == 401


def test_a_chef_is_changed_only_by_staff_and_its_own_user(user, other_user, staff_user, client_for):
    chef = ChefFactory(owner=user)
    hidden = ChefFactory(owner=user, is_active=False)
    assert client_for(other_user).patch(f"/api/coocook/chefs/{chef.pk}", {"bio": "x"}, format="json").status_code == 403
    assert (
        client_for(other_user).patch(f"/api/coocook/chefs/{hidden.pk}", {"bio": "x"}, format="json").status_code == 404
    )
    assert client_for(user).patch(f"/api/coocook/chefs/{chef.pk}", {"bio": "own"}, format="json").status_code == 200
    owner_activation = client_for(user).patch(f"/api/coocook/chefs/{hidden.pk}", {"is_active": True}, format="json")
    hidden.refresh_from_db()
    assert owner_activation.status_code in (200, 400, 403)
    assert hidden.is_active is False  # is_active is for staff only
    assert (
        client_for(staff_user).patch(f"/api/coocook/chefs/{hidden.pk}", {"bio": "s"}, format="json").status_code == 200
    )
