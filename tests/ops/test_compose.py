"""docker-compose.yml: valid against the Compose Specification schema, every file, script and
command it refers to exists in the project, and the start order and roles are as documented."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.core.management import get_commands

from tests.ops.tools import DEPLOY, ROOT, run_promtool

COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
ONE_SHOT = {"migrate", "backup"}
APP_IMAGE_SERVICES = {"migrate", "web", "worker", "beat", "backup"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def as_list(command) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts.append((source, target))
    return mounts


def test_the_file_is_valid_against_the_compose_specification(compose):
    assert schema_errors(compose) == []


def test_the_schema_check_catches_mistakes(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_done"
    broken["services"]["worker"]["healthchek"] = {"test": ["CMD", "true"]}
    errors = schema_errors(broken)
    assert len(errors) == 2, errors


def test_every_bind_mounted_file_and_build_context_exists(compose):
    for name, service in compose["services"].items():
        for source, _ in bind_mounts(service):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert context.is_dir(), name
            dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"


def test_every_file_a_dockerfile_copies_exists():
    for dockerfile in DEPLOY.rglob("Dockerfile"):
        context = ROOT if dockerfile.parent.name == "app" else dockerfile.parent
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
                for source in sources:
                    assert (context / source).exists(), f"{dockerfile}: COPY {source}"


def test_commands_of_the_app_services_refer_to_real_files_modules_and_management_commands(compose):
    django_commands = get_commands()
    celery_apps = 0
    for name in APP_IMAGE_SERVICES:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "deploy/app/Dockerfile"  # WORKDIR /app = the repository root
        words = [w for part in as_list(service["command"]) for w in (shlex.split(part) if " " in part else [part])]
        for script in [w for w in words if w.endswith(".sh") and (ROOT / w).is_file()]:
            # What a start script runs is checked the same way.
            for line in (ROOT / script).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    words += shlex.split(line.replace('"$@"', ""), comments=True)
        words = [w for w in words if w not in ("&&", "sh", "-c")]
        for i, word in enumerate(words):
            if re.fullmatch(r"[\w./-]+\.(py|sh)|scripts/\w+|deploy/[\w./-]+", word):
                assert (ROOT / word).exists(), f"{name}: {word} does not exist"
            if word == "manage.py":
                assert words[i + 1] in django_commands, f"{name}: no management command {words[i + 1]!r}"
            if word == "-A":
                assert (ROOT / words[i + 1] / "celery.py").exists(), f"{name}: no Celery app {words[i + 1]}"
                celery_apps += 1
    assert celery_apps >= 2  # worker (through deploy/app/worker.sh) and beat


def test_paths_used_inside_containers_are_mounted_from_the_project(compose):
    needs = {
        "db-primary": [
            "/etc/postgresql/postgresql.conf",
            "/etc/postgresql/postgresql.common.conf",
            "/etc/postgresql/pg_hba.conf",
            "/docker-entrypoint-initdb.d/10-softfactory.sh",
        ],
        "db-replica-1": [
            "/usr/local/bin/replica-entrypoint.sh",
            "/etc/postgresql/postgresql.conf",
            "/etc/postgresql/postgresql.common.conf",
            "/etc/postgresql/pg_hba.conf",
        ],
        "db-replica-2": [
            "/usr/local/bin/replica-entrypoint.sh",
            "/etc/postgresql/postgresql.conf",
            "/etc/postgresql/postgresql.common.conf",
            "/etc/postgresql/pg_hba.conf",
        ],
        "redis": ["/usr/local/etc/redis/redis.conf"],
        "prometheus": ["/etc/prometheus/prometheus.yml", "/etc/prometheus/rules"],
        "grafana": ["/etc/grafana/provisioning", "/var/lib/grafana/dashboards"],
        "gateway": ["/etc/nginx/nginx.conf"],
    }
    for name, paths in needs.items():
        service = compose["services"][name]
        targets = {target: source for source, target in bind_mounts(service)}
        text = json.dumps([service.get("command"), service.get("entrypoint")])
        for path in paths:
            assert path in targets, f"{name}: {path} is not mounted"
            assert (ROOT / targets[path]).exists()
        for used in re.findall(r"(/etc/[\w./-]+|/usr/local/[\w./-]+)", text):
            assert any(used == t or used.startswith(t + "/") for t in targets), f"{name}: {used} is not mounted"
    # What the mounted configs refer to is mounted next to them.
    assert "hba_file = '/etc/postgresql/pg_hba.conf'" in (DEPLOY / "postgres" / "postgresql.primary.conf").read_text()
    assert "include 'postgresql.common.conf'" in (DEPLOY / "postgres" / "postgresql.replica.conf").read_text()
    assert "/etc/prometheus/rules/*.yml" in (DEPLOY / "prometheus" / "prometheus.yml").read_text()


def test_every_shell_script_parses():
    scripts = [*DEPLOY.rglob("*.sh")]
    assert len(scripts) >= 4
    for script in scripts:
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


def test_services_come_up_in_order_behind_health_checks(compose):
    services = compose["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no health check"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services
            assert condition["condition"] in ("service_healthy", "service_completed_successfully"), name
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["web"]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    for replica in ("db-replica-1", "db-replica-2"):
        assert services[replica]["depends_on"] == {"db-primary": {"condition": "service_healthy"}}


def test_the_production_shape_has_every_part_the_issue_lists(compose):
    services = compose["services"]
    expected = {
        "db-primary", "db-replica-1", "db-replica-2", "pgbouncer", "redis", "migrate", "web", "worker", "beat",
        "prometheus", "grafana", "node-exporter", "postgres-exporter", "redis-exporter", "celery-exporter", "gateway",
    }  # fmt: skip
    assert expected <= set(services)
    beats = [name for name, s in services.items() if "beat" in as_list(s.get("command"))]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["migrate"]["restart"] == "no"


def test_replicas_bootstrap_themselves_like_the_local_stack(compose):
    script = (DEPLOY / "postgres" / "replica-entrypoint.sh").read_text()
    # The local stack's bootstrap (scripts/stack ensure_replica): drop a stale slot, then a base
    # backup that writes the recovery settings and creates the replica's own slot.
    assert "pg_drop_replication_slot" in script
    assert "pg_basebackup" in script and "-R -X stream -c fast -C -S" in script
    stack = (ROOT / "scripts" / "stack").read_text()
    assert '"-R", "-X", "stream", "-c", "fast", "-C", "-S", name' in stack
    names = set()
    for replica in ("db-replica-1", "db-replica-2"):
        service = compose["services"][replica]
        names.add(service["environment"]["REPLICA_NAME"])
        assert f"cluster_name={service['environment']['REPLICA_NAME']}" in as_list(service["command"])
        assert service["entrypoint"] == ["/usr/local/bin/replica-entrypoint.sh"]
    assert names == {"replica_1", "replica_2"}
    init = (DEPLOY / "postgres" / "primary-init.sh").read_text()
    assert "REPLICATION PASSWORD" in init
    hba = (DEPLOY / "postgres" / "pg_hba.conf").read_text()
    assert re.search(r"^host\s+replication\s+replicator\s+samenet\s+scram-sha-256", hba, re.M)


def test_web_and_workers_use_pgbouncer_and_migrate_connects_directly(compose):
    services = compose["services"]
    for name in ("web", "worker"):
        assert "@pgbouncer:6432/" in services[name]["environment"]["DATABASE_POOL_URL"]
    for name in ("migrate", "beat", "backup"):
        assert "DATABASE_POOL_URL" not in services[name]["environment"]
    assert "@db-primary:5432/" in services["migrate"]["environment"]["DATABASE_URL"]
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"].startswith("/run/softfactory")
    assert 'rm -rf "$PROMETHEUS_MULTIPROC_DIR"' in (DEPLOY / "app" / "web.sh").read_text()


def test_redis_persists_with_aof_and_evicts_only_keys_with_a_ttl(compose):
    conf = (DEPLOY / "redis" / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^appendfsync everysec$", conf, re.M)
    assert re.search(r"^maxmemory-policy volatile-lru$", conf, re.M)
    assert "/usr/local/etc/redis/redis.conf" in " ".join(as_list(compose["services"]["redis"]["command"]))
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]


def test_only_prometheus_may_scrape_the_web_metrics(compose):
    address = compose["services"]["prometheus"]["networks"]["default"]["ipv4_address"]
    allowed = compose["services"]["web"]["environment"]["METRICS_ALLOWED_ADDRESSES"].split(",")
    assert address in allowed
    assert "location = /metrics" in (DEPLOY / "nginx" / "nginx.conf").read_text()


def test_prometheus_config_is_valid_and_scrapes_compose_services(compose, tmp_path):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(DEPLOY / "prometheus" / "rules" / "*.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run_promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    for job in config["scrape_configs"]:
        hosts = [t.split(":")[0] for c in job.get("static_configs", []) for t in c["targets"]]
        hosts += [n for c in job.get("dns_sd_configs", []) for n in c["names"]]
        for host in hosts:
            assert host == "localhost" or host in compose["services"], f"{job['job_name']}: {host}"
