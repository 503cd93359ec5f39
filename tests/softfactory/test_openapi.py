"""The OpenAPI document describes every endpoint of API.md and is valid OpenAPI 3."""

from __future__ import annotations

import re

import pytest
import yaml
from openapi_spec_validator import validate

API_ROWS = [
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/me"),
    ("post", "/api/payment/payments"),
    ("get", "/api/payment/payments"),
    ("get", "/api/payment/payments/{id}"),
    ("post", "/api/payment/payments/{id}/refund"),
    ("get", "/api/coocook/chefs"),
    ("get", "/api/coocook/chefs/{id}"),
    ("post", "/api/coocook/chefs"),
    ("put", "/api/coocook/chefs/{id}"),
    ("patch", "/api/coocook/chefs/{id}"),
    ("post", "/api/coocook/bookings"),
    ("get", "/api/coocook/bookings"),
    ("get", "/api/coocook/bookings/{id}"),
    ("post", "/api/coocook/bookings/{id}/cancel"),
    ("get", "/api/coocook/bookings/{id}/reviews"),
    ("get", "/api/coocook/chefs/{id}/reviews"),
    ("post", "/api/coocook/reviews"),
    ("get", "/api/review/campaigns"),
    ("get", "/api/review/campaigns/{id}"),
    ("post", "/api/review/campaigns"),
    ("patch", "/api/review/campaigns/{id}"),
    ("post", "/api/review/campaigns/{id}/applications"),
    ("get", "/api/review/applications"),
    ("patch", "/api/review/applications/{id}"),
    ("post", "/api/sns/schedule"),
    ("get", "/api/sns/posts"),
    ("get", "/api/sns/posts/{id}"),
    ("post", "/api/sns/posts/{id}/cancel"),
]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


@pytest.mark.parametrize(("method", "path"), API_ROWS)
def test_every_row_of_the_contract_is_described(schema, method, path):
    normalised = {re.sub(r"\{[^}]+\}", "{id}", p): ops for p, ops in schema["paths"].items()}
    assert path in normalised, f"{path} missing from the schema"
    operation = normalised[path].get(method)
    assert operation is not None, f"{method.upper()} {path} missing"
    assert operation["responses"], f"{method.upper()} {path} documents no responses"


def test_the_docs_page_loads_its_assets_from_this_server_not_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(not a.startswith(("http://", "https://", "//")) for a in assets), assets
