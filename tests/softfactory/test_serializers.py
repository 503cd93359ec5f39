"""softfactory.serializers.ModelSerializer renders exactly what DRF's own ModelSerializer would."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from rest_framework import serializers

from coocook.models import Chef
from coocook.serializers import BookingSerializer, ChefSerializer, ReviewSerializer
from platform_core.models import Payment, User
from platform_core.serializers import MeSerializer, PaymentSerializer, UserSerializer
from review.serializers import ApplicationSerializer, CampaignSerializer
from sns.serializers import SNSPostScheduledSerializer, SNSPostSerializer
from softfactory.serializers import ModelSerializer
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory
from tests.review.factories import ApplicationFactory, CampaignFactory
from tests.sns.factories import SNSPostFactory

SEOUL = dt.timezone(dt.timedelta(hours=9))


def _payment(**fields: Any) -> Payment:
    payment = Payment(
        id=7, payable_kind="booking", payable_id=3, user_id=1, amount=Decimal("1234.5"), currency="KRW",
        method="card", status="paid", created_at=dt.datetime(2030, 1, 2, 3, 4, 5, 600, tzinfo=SEOUL),
    )  # fmt: skip
    for name, value in fields.items():
        setattr(payment, name, value)
    return payment


# Unsaved instances: no id (null), values at their edges (None, odd decimals, offsets, microseconds).
INSTANCES = [
    (ChefSerializer, lambda: ChefFactory.build(hourly_rate=Decimal("7"), rating=Decimal("4.5"), bio="")),
    (ChefSerializer, lambda: ChefFactory.build(id=2**62, name="é \u2028 <b>", hourly_rate=Decimal("0.10"))),
    (BookingSerializer, lambda: BookingFactory.build(chef=ChefFactory.build(id=5), notes="x" * 300)),
    (ReviewSerializer, lambda: ReviewFactory.build(comment="")),
    (CampaignSerializer, lambda: CampaignFactory.build()),
    (ApplicationSerializer, lambda: ApplicationFactory.build()),
    (SNSPostScheduledSerializer, lambda: SNSPostFactory.build(id=3)),
    (SNSPostSerializer, lambda: SNSPostFactory.build(published_at=None, last_error="")),
    (SNSPostSerializer, lambda: SNSPostFactory.build(published_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))),
    (UserSerializer, lambda: User(id=4, email="a@example.com", name="")),
    (MeSerializer, lambda: User(id=4, email="a@example.com", name="N", is_staff=True)),
    (PaymentSerializer, _payment),
    (PaymentSerializer, lambda: _payment(amount=Decimal("0"), created_at=dt.datetime(2030, 6, 1, tzinfo=dt.UTC))),
]


def _project_serializers() -> list[type[ModelSerializer[Any]]]:
    found, pending = [], list(ModelSerializer.__subclasses__())
    while pending:
        cls = pending.pop()
        if not cls.__module__.startswith("tests."):
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_model_serializer_of_the_project_is_covered_here():
    covered = {serializer for serializer, _ in INSTANCES}
    assert set(_project_serializers()) <= covered


@pytest.mark.parametrize(("serializer_class", "make"), INSTANCES)
def test_the_output_is_what_drfs_own_model_serializer_gives(serializer_class, make):
    instance = make()
    assert serializer_class._output_plan() is not None, "expected the fast path for this serializer"
    ours = ModelSerializer.to_representation(serializer_class(), instance)
    drfs = serializers.ModelSerializer.to_representation(serializer_class(), instance)
    assert ours == drfs
    assert list(ours) == list(drfs)  # the same key order, hence the same bytes


def test_many_instances_render_each_with_the_same_fields():
    chefs = [ChefFactory.build(id=n, rating=Decimal(n) / 4) for n in range(1, 6)]
    data = ChefSerializer(chefs, many=True).data
    assert [row["id"] for row in data] == [1, 2, 3, 4, 5]
    assert [row["rating"] for row in data] == ["0.25", "0.50", "0.75", "1.00", "1.25"]


class _WithMethodField(ModelSerializer[Chef]):
    shout = serializers.SerializerMethodField()

    class Meta:
        model = Chef
        fields = ("id", "name", "shout")

    def get_shout(self, chef: Chef) -> str:
        return f"{chef.name.upper()} for {self.context.get('who', 'nobody')}"


class _Narrower(ChefSerializer):
    class Meta(ChefSerializer.Meta):
        fields = ("id", "name")


def test_a_serializer_with_a_context_dependent_field_renders_the_usual_way():
    chef = ChefFactory.build(id=1, name="ann")
    assert _WithMethodField._output_plan() is None
    assert _WithMethodField(chef, context={"who": "bob"}).data == {"id": 1, "name": "ann", "shout": "ANN for bob"}


def test_a_subclass_renders_its_own_fields_not_its_parents():
    chef = ChefFactory.build(id=1, name="ann")
    assert ChefSerializer(chef).data["is_active"] is True
    assert _Narrower(chef).data == {"id": 1, "name": "ann"}
    assert "is_active" in ChefSerializer(chef).data
