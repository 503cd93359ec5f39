"""The Prometheus alert rules: valid, unit-tested with promtool (firing and quiet), each with a runbook."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from tests.ops.tools import ROOT, RULE_TESTS_DIR, RULES_DIR, run_promtool

REQUIRED_ALERTS = {
    "SoftFactoryHighErrorRate",  # error rate > 1 %
    "SoftFactoryHighLatencyP99",  # p99 > 1 s
    "SoftFactoryCacheHitRatioLow",  # hit ratio < 70 %
    "SoftFactoryDatabaseConnectionsHigh",  # > 80 % of the limit
    "SoftFactoryServiceDown",
    "SoftFactoryReplicaLagHigh",  # > 1 s
    "SoftFactoryReplicaMissing",
    "SoftFactoryInvalidIndexes",
    "SoftFactoryCeleryTaskFailureRate",
    "SoftFactorySnsDispatcherStalled",
    "SoftFactoryRedisDown",
}


def rule_files():
    return sorted(RULES_DIR.glob("*.yml"))


def alerts() -> dict[str, dict]:
    found = {}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = rule
    return found


def rule_tests() -> list[dict]:
    cases = []
    for path in sorted(RULE_TESTS_DIR.glob("*.yml")):
        cases += yaml.safe_load(path.read_text())["tests"]
    return cases


def test_promtool_accepts_every_rule_file():
    result = run_promtool("check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass():
    result = run_promtool("test", "rules", *map(str, sorted(RULE_TESTS_DIR.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_the_issue_asks_for_exists():
    assert set(alerts()) >= REQUIRED_ALERTS


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_each_alert_is_tested_both_firing_and_quiet(alert):
    firing = quiet = 0
    for case in rule_tests():
        for check in case.get("alert_rule_test", []):
            if check["alertname"] == alert:
                if check.get("exp_alerts"):
                    firing += 1
                else:
                    quiet += 1
    assert firing >= 1, f"no promtool test expects {alert} to fire"
    assert quiet >= 1, f"no promtool test expects {alert} to stay quiet"


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_each_alert_links_a_runbook_that_says_what_it_means_and_how_to_check_and_fix(alert):
    rule = alerts()[alert]
    assert rule["labels"]["severity"] in ("warning", "critical")
    url = rule["annotations"]["runbook_url"]
    assert url == f"docs/runbooks/{alert}.md"
    text = (ROOT / url).read_text()
    for heading in ("## What it means", "## How to check", "## How to fix"):
        assert heading in text, f"{url} lacks {heading!r}"
    assert alert in text


def test_a_broken_threshold_fails_the_rule_unit_tests(tmp_path):
    # The unit tests can fail: raise the error-rate threshold to 10 % and the firing case breaks.
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in rule_files():
        text = path.read_text()
        broken = re.sub(r"\) > 0\.01\n", ") > 0.10\n", text)
        (tmp_path / "rules" / path.name).write_text(broken)
    for path in RULE_TESTS_DIR.glob("*.yml"):
        shutil.copy(path, tmp_path / "tests" / path.name)
    assert (tmp_path / "rules" / "softfactory.yml").read_text() != (RULES_DIR / "softfactory.yml").read_text()
    result = run_promtool("test", "rules", *map(str, sorted((tmp_path / "tests").glob("*.yml"))))
    assert result.returncode != 0
    assert "SoftFactoryHighErrorRate" in result.stdout + result.stderr
