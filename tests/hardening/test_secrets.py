"""No secret in the repository: a scan of every file git would commit (tracked, or new and not
ignored) for private keys, well-known token formats and high-entropy values assigned to
secret-sounding names; `.env.example` holds placeholders only; local secrets stay ignored."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", ".venv", "var", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
MAX_FILE_BYTES = 2 * 1024 * 1024
MIN_SECRET_LENGTH = 16
ENTROPY_BITS_PER_CHAR = 3.5  # random hex is ~4, base64 ~6; words and sentences stay well under

TOKEN_FORMATS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
SECRET_NAME = r"[A-Za-z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)[A-Za-z0-9_]*"
ASSIGNMENT = re.compile(rf"(?i)\b({SECRET_NAME})\b[\"']?\s*(?::|=|==)\s*[rbf]?[\"']?([^\s\"'`,;)\]}}]+)")
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:([^@\s/\"']+)@")
# Values that say what they are: placeholders, fixtures and references to the environment.
PLACEHOLDER_WORDS = (
    "change-me",
    "changeme",
    "example",
    "placeholder",
    "test",
    "dummy",
    "fake",
    "insecure",
    "not-for-production",
    "development",
    "your-",
    "xxx",
)
URL_PLACEHOLDER_PASSWORDS = {"password", "pass", "secret", "postgres", "softfactory", "user", "guest"}


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return (
        # Words and numbers joined by dashes: a human passphrase of a fixture, not a generated secret.
        re.fullmatch(r"(?:[A-Za-z]+|[0-9]+)(?:[-_](?:[A-Za-z]+|[0-9]+))*", value) is not None
        or any(word in lowered for word in PLACEHOLDER_WORDS)
        or "${" in value
        or "{" in value
        or "(" in value
        or re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", value) is not None  # settings.X, module.Class
        or value.startswith(("$", "<", "%"))
    )


def findings(text: str) -> list[str]:
    """What in `text` looks like a committed secret (empty when nothing does)."""
    found = [
        f"{name}: {match.group(0)[:40]}" for name, pattern in TOKEN_FORMATS.items() for match in pattern.finditer(text)
    ]
    for match in ASSIGNMENT.finditer(text):
        name, value = match.group(1), match.group(2)
        if len(value) >= MIN_SECRET_LENGTH and entropy(value) >= ENTROPY_BITS_PER_CHAR and not _is_placeholder(value):
            found.append(f"high-entropy value for {name}: {value[:6]}...")
    for match in URL_CREDENTIALS.finditer(text):
        password = match.group(1)
        if password.lower() not in URL_PLACEHOLDER_PASSWORDS and not _is_placeholder(password):
            found.append(f"credentials in a URL: ...:{password[:3]}...@")
    return found


def repository_files() -> list[Path]:
    """Every file a commit would hold: tracked files plus new files git doesn't ignore."""
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        return [ROOT / name.decode() for name in listed if name and (ROOT / name.decode()).is_file()]
    return [path for path in ROOT.rglob("*") if path.is_file() and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)]


def _text(path: Path) -> str | None:
    if path.stat().st_size > MAX_FILE_BYTES:
        return None
    raw = path.read_bytes()
    return None if b"\0" in raw else raw.decode("utf-8", errors="replace")


def test_no_file_of_the_repository_holds_a_secret():
    files = repository_files()
    assert len(files) > 50, "the scan found suspiciously few files"
    problems = []
    for path in files:
        text = _text(path)
        if text is None:
            continue
        problems += [f"{path.relative_to(ROOT)}: {finding}" for finding in findings(text)]
    assert not problems, "possible secrets committed:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "planted",
    [
        "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEow...\n",
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n",
        "aws_key = 'AKIA" + "Z7QW3ER4TY5UI6OP'",
        "SECRET_KEY = 'q8#v" + "Zt1!mW2@xR9$kLp4^nB7&cYe'",
        'STRIPE_API_KEY: "9fK2' + 'hQ7xLmP3vR8tW1zA6cE4"',
        "EMAIL_HOST_PASSWORD=Tr0ub4dor" + "-and-3xtra-Rand0m-G1bberish",
        "DATABASE_URL=postgres://app:S3cr3t-" + "Pa55w0rd-9xq@db:5432/app",
        "token = 'ghp_" + "a" * 18 + "B" * 18 + "'",
    ],
)
def test_the_scan_catches_planted_secrets(planted):
    assert findings(planted), planted


@pytest.mark.parametrize(
    "innocent",
    [
        'SECRET_KEY = env.str("SECRET_KEY", default="")',
        "SECRET_KEY=change-me-to-a-long-random-string",
        'SECRET_KEY="live-gunicorn-test-secret-key-not-for-production-0123456789"',
        "DATABASE_URL=postgres://softfactory:password@db-primary:5432/softfactory",
        "password = serializers.CharField(max_length=128, write_only=True)",
        'PASSWORD = "correct-horse-battery-staple"',
        "EMAIL_HOST_PASSWORD=",
    ],
)
def test_the_scan_lets_placeholders_and_code_through(innocent):
    assert findings(innocent) == [], innocent


def test_env_example_holds_placeholders_only():
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = {}
    for line in lines:
        stripped = line.lstrip("# ").strip()
        if "=" in stripped and re.match(r"^[A-Z][A-Z0-9_]*=", stripped):
            key, value = stripped.split("=", 1)
            values[key] = value
    assert values["SECRET_KEY"].startswith("change-me")
    for key, value in values.items():
        assert not findings(f"{key}={value}"), key
        for password in URL_CREDENTIALS.findall(value):
            assert password == "password", key
        if re.search(r"(SECRET|SECRET_KEY|PASSWORD|TOKEN|API_KEY)$", key):
            assert value == "" or _is_placeholder(value) or value.lower() in URL_PLACEHOLDER_PASSWORDS, key


def test_local_secrets_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "var/" in ignored  # var/secret_key, var/seed_tokens.txt, the stack's data
    assert ".env" in ignored
    if shutil.which("git") and (ROOT / ".git").exists():
        for path in ("var/secret_key", "var/seed_tokens.txt", ".env"):
            assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, path
