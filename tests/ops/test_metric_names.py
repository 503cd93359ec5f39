"""Every metric name the alert rules and dashboards use exists: in a live scrape of the app, or in
the documented metrics of a listed exporter (deploy/prometheus/exporter-metrics.yml)."""

from __future__ import annotations

import pytest
from celery import shared_task

from sns import tasks as sns_tasks
from tests.coocook.factories import ChefFactory
from tests.ops.promql import exported_names, exporter_metrics, metric_names, panel_expressions, rule_expressions


@shared_task(name="tests.ops.noop")
def noop() -> int:
    return 1


def used_names() -> dict[str, set[str]]:
    """metric name -> where it is used."""
    used: dict[str, set[str]] = {}
    for where, expr in {**rule_expressions(), **panel_expressions()}.items():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    return used


def exercise_the_app(client, django_user_model) -> None:
    """Run the code paths that produce the app's metrics, so their samples exist."""
    assert client.get("/healthz").status_code == 200
    ChefFactory()  # a write: its namespace's generation is bumped after commit
    for _ in range(2):  # a cached public read: a miss, then a hit
        assert client.get("/api/coocook/chefs").status_code == 200
        assert client.get("/api/review/campaigns").status_code == 200
    assert client.get("/api/no-such-thing").status_code == 404
    response = client.post(
        "/api/auth/register",
        {"email": "ops-metrics@example.com", "password": "a-Long-enough-pass-42", "name": "Ops"},
        content_type="application/json",
    )
    assert response.status_code == 201
    noop.apply()  # one Celery task run through the project's task class, in this process
    # The SNS dispatcher's run (records its time in Redis) and the posts-by-status export.
    sns_tasks.dispatch_due_posts.apply()
    sns_tasks.record_post_stats.apply()


@pytest.fixture
def scrape(client, django_user_model, settings):
    settings.DATABASE_POOL_LIMIT = 25  # exported only when a pool is configured
    exercise_the_app(client, django_user_model)
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return exported_names(response.content.decode())


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_every_metric_in_the_rules_and_dashboards_is_exported_by_the_app_or_a_listed_exporter(scrape):
    declared, _ = scrape
    listed = set().union(*exporter_metrics().values())
    missing = {name: sorted(where) for name, where in used_names().items() if name not in declared | listed}
    assert not missing, f"used but exported by neither the app nor a listed exporter: {missing}"


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_exercised_code_paths_produce_samples_for_the_metrics_they_own(scrape):
    _, sampled = scrape
    for name in (
        "django_http_requests_total_by_view_transport_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_view_method_total",
        "django_db_execute_total",
        "django_db_query_duration_seconds_bucket",
        "django_db_new_connections_total",
        "softfactory_db_route_total",
        "softfactory_celery_tasks_total",
        "softfactory_db_up",
        "softfactory_db_connections",
        "softfactory_db_max_connections",
        "softfactory_db_pool_limit",
        "softfactory_db_replicas_expected",
        "softfactory_db_replicas_streaming",
        "softfactory_db_invalid_indexes",
        "softfactory_db_replay_lag_seconds",
        "softfactory_db_replay_lag_bytes",
        "softfactory_sns_dispatcher_last_run_age_seconds",
        "softfactory_sns_posts",
        "softfactory_cache_requests_total",
        "softfactory_cache_fill_source_total",
        "softfactory_cache_fill_seconds_bucket",
        "softfactory_cache_lock_total",
        "softfactory_cache_invalidations_total",
    ):
        assert name in sampled, f"{name} has no sample after its code path ran"


def test_every_listed_exporter_name_is_used_somewhere():
    # The list documents what we depend on; a stale entry would hide a renamed metric.
    used = set(used_names())
    for exporter, names in exporter_metrics().items():
        assert names <= used, f"{exporter}: listed but unused {sorted(names - used)}"


def test_the_name_extraction_sees_through_functions_labels_and_windows():
    expr = (
        'histogram_quantile(0.99, sum by (le, view) (rate(a_bucket{view!~"x|y", le="1e3"}[$__rate_interval])))'
        " / on (view) group_left () max without (pid) (b_total offset 5m) > bool 1e3 and c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
