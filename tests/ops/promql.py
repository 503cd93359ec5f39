"""Metric names in PromQL expressions (alert rules, Grafana panels), and what a scrape exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.tools import DEPLOY, RULES_DIR

DASHBOARDS_DIR = DEPLOY / "grafana" / "dashboards"
EXPORTER_METRICS = DEPLOY / "prometheus" / "exporter-metrics.yml"
# Grafana's interval variables stand for a duration.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
_KEYWORDS |= {"inf", "nan", "Inf", "NaN"}
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects (not functions, keywords, labels or durations)."""
    expr = grafana_to_promql(expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery windows
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in _IDENT.finditer(expr):
        before = expr[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":  # 1e3, 0.5
            continue
        if expr[match.end() :].lstrip().startswith("("):  # a function or aggregation
            continue
        if match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def rule_expressions() -> dict[str, str]:
    found = {}
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found[f"{path.name}: {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    return found


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panel_expressions() -> dict[str, str]:
    found = {}
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found[f"{name}: {panel['title']} [{target['refId']}]"] = target["expr"]
    return found


def exporter_metrics() -> dict[str, set[str]]:
    listed = yaml.safe_load(EXPORTER_METRICS.read_text())
    return {exporter: set(entry["metrics"]) for exporter, entry in listed.items()}


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "untyped": ("",),
    "info": ("_info",),
}


def exported_names(text: str) -> tuple[set[str], set[str]]:
    """(names a scrape declares, HELP/TYPE included; names that carry at least one sample)."""
    declared: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        sampled |= {sample.name for sample in family.samples}
    return declared | sampled, sampled


def write_as_recording_rules(expressions: dict[str, str], path: Path) -> None:
    """Panel queries as recording rules, so `promtool check rules` parses every one of them."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
        for i, expr in enumerate(expressions.values())
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
