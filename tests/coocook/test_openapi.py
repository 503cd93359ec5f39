"""The OpenAPI document describes the coocook endpoints with their answers and error codes."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture(scope="module")
def paths(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    return schema["paths"], schema["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("get", "/api/coocook/chefs", {"200", "400"}),
        ("post", "/api/coocook/chefs", {"201", "400", "401", "403"}),
        ("get", "/api/coocook/chefs/{id}", {"200", "404"}),
        ("put", "/api/coocook/chefs/{id}", {"200", "400", "401", "403", "404"}),
        ("patch", "/api/coocook/chefs/{id}", {"200", "400", "401", "403", "404"}),
        ("get", "/api/coocook/chefs/{id}/reviews", {"200", "400", "404"}),
        ("get", "/api/coocook/bookings", {"200", "400", "401"}),
        ("post", "/api/coocook/bookings", {"201", "400", "401", "409", "422"}),
        ("get", "/api/coocook/bookings/{id}", {"200", "401", "404"}),
        ("post", "/api/coocook/bookings/{id}/cancel", {"200", "401", "404", "409"}),
        ("get", "/api/coocook/bookings/{id}/reviews", {"200", "400", "401", "404"}),
        ("post", "/api/coocook/reviews", {"201", "400", "401", "404", "409"}),
    ],
)
def test_each_coocook_operation_documents_its_answers(paths, method, path, codes):
    operations, _ = paths
    assert codes <= set(operations[path][method]["responses"])


@pytest.mark.parametrize("path", ["/api/coocook/chefs", "/api/coocook/bookings", "/api/coocook/chefs/{id}/reviews"])
def test_lists_are_documented_as_the_paginated_envelope(paths, path):
    operations, components = paths
    ref = operations[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    envelope = components[ref.rsplit("/", 1)[1]]
    assert set(envelope["properties"]) == {"count", "page", "per_page", "next", "previous", "results"}


def test_the_chef_list_documents_its_filters_and_orderings(paths):
    operations, _ = paths
    parameters = {p["name"]: p for p in operations["/api/coocook/chefs"]["get"]["parameters"]}
    assert {"cuisine", "min_rating", "q", "ordering", "page", "per_page"} <= set(parameters)
    assert set(parameters["ordering"]["schema"]["enum"]) == {
        "rating",
        "-rating",
        "hourly_rate",
        "-hourly_rate",
        "-created_at",
    }


def test_booking_creation_documents_the_idempotency_key(paths):
    operations, _ = paths
    parameters = operations["/api/coocook/bookings"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in parameters)
