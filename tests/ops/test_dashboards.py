"""Grafana dashboards and provisioning: valid files, parseable queries, every topic the issue lists."""

from __future__ import annotations

import yaml

from tests.ops.promql import dashboards, metric_names, panel_expressions, write_as_recording_rules
from tests.ops.tools import DEPLOY, run_promtool

PROVISIONING = DEPLOY / "grafana" / "provisioning"


def all_panels():
    for name, board in dashboards().items():
        for panel in board["panels"]:
            yield name, panel


def names_in_panels() -> set[str]:
    found: set[str] = set()
    for expr in panel_expressions().values():
        found |= metric_names(expr)
    return found


def test_every_dashboard_has_a_unique_uid_and_panels_on_the_provisioned_datasource():
    boards = dashboards()
    assert len(boards) >= 4
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for name, panel in all_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, name
        assert panel["targets"], f"{name}: {panel['title']} has no query"
        assert {t["datasource"]["uid"] for t in panel["targets"]} == {"prometheus"}
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert [d["uid"] for d in datasource["datasources"]] == ["prometheus"]


def test_panel_ids_are_unique_within_each_dashboard_and_panels_do_not_overlap():
    for name, board in dashboards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids), name
        cells = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, f"{name}: {panel['title']} is wider than the grid"
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{name}: {panel['title']} overlaps another panel"
            cells |= mine


def test_the_provisioning_file_loads_the_dashboards_directory_compose_mounts():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "softfactory.yml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


def test_promtool_parses_every_panel_query(tmp_path):
    rules = tmp_path / "dashboard_queries.yml"
    write_as_recording_rules(panel_expressions(), rules)
    result = run_promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_panel_query_is_caught(tmp_path):
    rules = tmp_path / "broken.yml"
    write_as_recording_rules(
        {"broken": "sum(rate(django_http_requests_total_by_view_transport_method_total[5m])"}, rules
    )
    assert run_promtool("check", "rules", str(rules)).returncode != 0


def test_the_dashboards_cover_every_topic_of_the_issue():
    used = names_in_panels()
    queries = "\n".join(panel_expressions().values())
    # request latency p50/p95/p99 and error rate per view
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in used
    for quantile in ("0.50", "0.95", "0.99"):
        assert (
            f"histogram_quantile({quantile}, sum by (le, view)" in queries
            or f"histogram_quantile({quantile}," in queries
        )
    assert 'sum by (view) (rate(django_http_responses_total_by_status_view_method_total{status=~"5.."' in queries
    # cache hit ratio per namespace
    assert "sum by (namespace) (rate(softfactory_cache_requests_total" in queries
    # database connections and query rate per alias, replica lag
    assert {"softfactory_db_connections", "softfactory_db_max_connections", "softfactory_db_pool_limit"} <= used
    assert "sum by (alias) (rate(django_db_execute_total" in queries
    assert {"softfactory_db_replay_lag_seconds", "softfactory_replica_lag_seconds"} <= used
    # Celery queues and outcomes, SNS publish delay
    assert {"celery_queue_length", "celery_task_failed_total", "softfactory_celery_tasks_total"} <= used
    assert "softfactory_sns_publish_delay_seconds_bucket" in used
    # worker CPU/memory (node exporter), service health
    assert {"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "up"} <= used
