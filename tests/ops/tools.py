"""Paths of the deploy/ files and the promtool binary the Makefile unpacks into var/tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks"
PROMTOOL = ROOT / "var" / "tools" / "promtool"


def promtool() -> Path:
    """var/tools/promtool, fetched by `make promtool` (Debian's prometheus package) if missing."""
    if not PROMTOOL.exists():
        subprocess.run(["make", "-s", "promtool"], cwd=ROOT, check=True, capture_output=True)
    return PROMTOOL


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool()), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
