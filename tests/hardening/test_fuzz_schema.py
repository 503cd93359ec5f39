"""Schemathesis against /api/schema/ on a live gunicorn, as an ordinary user and as staff.

Every operation of the schema is fuzzed (none excluded) in all of schemathesis' phases: schema
examples, coverage (boundary values, wrong types, unexpected methods), property-based fuzzing
(positive and negative data) and stateful sequences over the links it infers from the schema
(a booking created, then read, cancelled, reviewed, paid...). The checks are every response
check schemathesis has: no 5xx, status codes, content types, headers and bodies as documented,
use-after-free, resource availability, ignored auth, 405s with `Allow`. Two checks are left out
on purpose and said so: `positive_data_acceptance` (schema-valid input that a business rule
refuses — a past start, a weak password, an unknown chef — is a correct 400) and
`negative_data_rejection` (DRF's documented coercions, e.g. `0` for a boolean or a number for a
decimal string, are accepted on purpose).

Each run's per-operation case counts are printed; every operation must get at least
MIN_CASES_PER_OPERATION cases from each role.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from coocook.models import Booking
from platform_core import services as platform_services
from platform_core.models import User
from review.models import Application, Campaign
from sns.models import SNSPost
from tests.coocook.factories import BookingFactory, ChefFactory, ReviewFactory, days_from_today
from tests.live import ROOT, _stop, _wait_until_healthy, free_port, server_environment
from tests.platform_core.factories import PASSWORD, StaffFactory, UserFactory
from tests.review.factories import ApplicationFactory, CampaignFactory
from tests.sns.factories import SNSPostFactory

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
MIN_CASES_PER_OPERATION = 20
RUN_TIMEOUT_SECONDS = 420
CHECKS_LEFT_OUT = "positive_data_acceptance,negative_data_rejection"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
NO_CONTROL = ["--no-control-socket"]  # no ~/.gunicorn/gunicorn.ctl shared with other servers


@pytest.fixture(scope="module")
def fuzz_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """gunicorn (4 workers) on the test database; the registration throttle is raised so the
    fuzzer reaches the registration rules instead of a wall of 429s (throttles have their own tests)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("fuzz-gunicorn")
    log = workdir / "gunicorn.log"
    with django_db_blocker.unblock():
        env = server_environment(port, workdir)
    env["THROTTLE_REGISTER_RATE"] = "100000/min"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "softfactory.wsgi", "-c", "gunicorn.conf.py", *NO_CONTROL],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, base_url, log)
        yield base_url
    finally:
        _stop(process)
        server_log = log.read_text(errors="replace")
        if "Traceback" in server_log:
            print(f"gunicorn log of the fuzz server (tracebacks found):\n{server_log[-8000:]}")


def _seed_world() -> tuple[User, User]:
    """Data for both roles to find: own bookings (future, finished, reviewed, paid), posts in
    every state, applications, campaigns active and draft, an inactive chef."""
    user = UserFactory(email="fuzz-user@example.com")
    staff = StaffFactory(email="fuzz-staff@example.com")
    other = UserFactory()
    chefs = [ChefFactory(), ChefFactory(cuisine_type="italian"), ChefFactory(is_active=False, owner=user)]
    for owner in (user, staff):
        future = BookingFactory(user=owner, chef=chefs[0])
        BookingFactory(user=owner, chef=chefs[1], booking_date=days_from_today(30 + owner.pk))
        BookingFactory(user=owner, chef=chefs[1], finished=True, status=Booking.Status.COMPLETED)
        ReviewFactory(booking__user=owner, booking__chef=chefs[0], booking__status=Booking.Status.COMPLETED)
        platform_services.payment_create(
            user=owner, payable_kind="coocook.booking", payable_id=future.pk, method="card"
        )
        SNSPostFactory(user=owner)
        SNSPostFactory(user=owner, published=True)
        SNSPostFactory(user=owner, failed=True)
    BookingFactory(user=other, chef=chefs[0])
    SNSPostFactory(user=other)
    active = CampaignFactory(max_reviewers=1000)
    CampaignFactory(status=Campaign.Status.DRAFT)
    CampaignFactory(status=Campaign.Status.CLOSED, deadline=timezone.now() - dt.timedelta(days=1))
    ApplicationFactory(campaign=active, user=user)
    ApplicationFactory(campaign=CampaignFactory(), user=staff, status=Application.Status.APPROVED)
    assert SNSPost.objects.filter(user=user).count() == 3
    return user, staff


def _run_schemathesis(base_url: str, email: str, report_dir: Path) -> subprocess.Popen[bytes]:
    report_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.hardening.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "SF_FUZZ_BASE_URL": base_url,
        "SF_FUZZ_EMAIL": email,
        "SF_FUZZ_PASSWORD": PASSWORD,
    }
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{base_url}/api/schema/",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--checks",
        "all",
        "--exclude-checks",
        CHECKS_LEFT_OUT,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "json,ndjson",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    if seed := os.environ.get("FUZZ_SEED"):
        command += ["--seed", seed]
    output = (report_dir / "output.txt").open("wb")
    # cwd: schemathesis keeps files next to where it runs; never in the checkout.
    return subprocess.Popen(command, cwd=report_dir, env=env, stdout=output, stderr=subprocess.STDOUT)


def _schema_operations(base_url: str) -> set[str]:
    schema = requests.get(f"{base_url}/api/schema/?format=json", timeout=30).json()
    methods = {"get", "put", "post", "delete", "patch"}
    return {f"{m.upper()} {path}" for path, item in schema["paths"].items() for m in item if m in methods}


def _cases_per_operation(report_dir: Path) -> dict[str, collections.Counter[str]]:
    """{"METHOD /path": Counter(phase -> cases)} from the run's NDJSON event stream."""
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in next(report_dir.glob("*.ndjson")).read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if not event:
            continue
        for case in event["recorder"].get("cases", {}).values():
            value = case["value"]
            counts[f"{value['method']} {value['path']}"][event["phase"]] += 1
    return counts


def _summary(report_dir: Path) -> dict:
    return json.loads(next(report_dir.glob("json-*.json")).read_text())


def test_schemathesis_finds_no_5xx_and_no_schema_violation_as_user_and_as_staff(fuzz_server, tmp_path, capsys):
    user, staff = _seed_world()
    operations = _schema_operations(fuzz_server)
    assert len(operations) >= 30
    roles = {"user": user.email, "staff": staff.email}
    runs = {role: _run_schemathesis(fuzz_server, email, tmp_path / role) for role, email in roles.items()}
    for process in runs.values():
        try:
            process.wait(RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    problems = []
    counts = {role: _cases_per_operation(tmp_path / role) for role in roles}
    phases = ("coverage", "fuzzing", "stateful")
    lines = [f"\nschemathesis, cases per operation (max-examples {MAX_EXAMPLES}; phases {', '.join(phases)}):"]
    lines.append(f"{'operation':48} " + " ".join(f"{role + ' ' + p[:4]:>13}" for role in roles for p in phases))
    for operation in sorted(operations, key=lambda op: (op.split()[1], op.split()[0])):
        row = []
        for role in roles:
            per_phase = counts[role].get(operation, collections.Counter())
            row += [per_phase[p] for p in phases]
            if sum(per_phase.values()) < MIN_CASES_PER_OPERATION:
                problems.append(f"{role}: {operation} got {sum(per_phase.values())} cases")
        lines.append(f"{operation:48} " + " ".join(f"{n:>13}" for n in row))
    for role in roles:
        report_dir = tmp_path / role
        output = (report_dir / "output.txt").read_text(errors="replace")
        summary = _summary(report_dir)
        lines.append(
            f"{role}: {summary['test_cases']['generated']} cases generated, "
            f"{summary['operations']['tested']}/{summary['operations']['total']} operations tested, "
            f"links {_links_line(output)}, seed {summary['seed']}, {summary['running_time']:.0f}s"
        )
        if runs[role].returncode != 0 or summary["failures"] or summary["errors"]:
            problems.append(f"{role}: schemathesis failed (exit {runs[role].returncode}):\n{output[-12000:]}")
        if summary["operations"]["tested"] != summary["operations"]["total"] or summary["operations"]["skipped"]:
            problems.append(f"{role}: not every operation was tested: {summary['operations']}")
    with capsys.disabled():  # shown by `make test` too, not only on failure
        print("\n".join(lines))
    assert not problems, "\n".join(problems)


def _links_line(output: str) -> str:
    for line in output.splitlines():
        if "API Links:" in line:
            return line.split("API Links:", 1)[1].strip()
    return "n/a"
