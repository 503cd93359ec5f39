"""The replica monitor's health cache and circuit breaker, with a fake prober and clock (no servers)."""

from __future__ import annotations

import pytest

from softfactory.replicas import CLOSED, OPEN, ReplicaHealth, ReplicaMonitor, format_lsn, parse_lsn


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProber:
    def __init__(self) -> None:
        self.states: dict[str, ReplicaHealth] = {}
        self.calls: list[str] = []

    def set(self, alias: str, state: str, lag_seconds: float = 0.0, lag_bytes: int = 0) -> None:
        self.states[alias] = ReplicaHealth(alias, state, lag_seconds, lag_bytes, "0/100")

    def __call__(self, alias: str, primary_lsn: str | None) -> ReplicaHealth:
        self.calls.append(alias)
        return self.states[alias]


@pytest.fixture
def world(settings):
    settings.REPLICA_ALIASES = ["replica_1", "replica_2"]
    settings.REPLICA_CHECK_INTERVAL_SECONDS = 1.0
    settings.REPLICA_BREAKER_COOLDOWN_SECONDS = 2.0
    settings.REPLICA_MAX_LAG_SECONDS = 1.0
    settings.REPLICA_MAX_LAG_BYTES = 1000
    clock, prober = FakeClock(), FakeProber()
    prober.set("replica_1", "streaming")
    prober.set("replica_2", "streaming")
    return ReplicaMonitor(clock=clock, prober=prober, primary_lsn=lambda: "0/200"), clock, prober


def test_each_replica_is_probed_at_most_once_per_interval(world):
    monitor, clock, prober = world
    for _ in range(20):
        assert monitor.usable() == ["replica_1", "replica_2"]
        clock.now += 0.04
    assert prober.calls == ["replica_1", "replica_2"]
    clock.now += 0.3
    monitor.usable()
    assert prober.calls.count("replica_1") == 2


def test_a_failed_probe_opens_the_breaker_until_a_half_open_probe_succeeds(world):
    monitor, clock, prober = world
    prober.set("replica_2", "down")
    assert monitor.usable() == ["replica_1"]
    assert monitor.view("replica_2").breaker == OPEN
    prober.set("replica_2", "streaming")
    clock.now += 1.5  # still inside the cool-down (2 s, jittered up to 3 s)
    assert monitor.usable() == ["replica_1"]
    clock.now += 2.0
    assert monitor.usable() == ["replica_1", "replica_2"]
    assert monitor.view("replica_2").breaker == CLOSED


def test_the_cool_down_grows_with_consecutive_failures(world):
    monitor, clock, prober = world
    prober.set("replica_1", "down")
    cooldowns = []
    for _ in range(4):
        monitor.usable()
        view = monitor.view("replica_1")
        cooldowns.append(view.open_until - clock.now)
        clock.now = view.open_until + 0.01
    assert all(2.0 * 2**i <= c <= 3.0 * 2**i for i, c in enumerate(cooldowns)), cooldowns


def test_a_reported_connect_failure_stops_the_replica_being_chosen_at_once(world):
    monitor, clock, prober = world
    assert monitor.usable() == ["replica_1", "replica_2"]
    monitor.report_failure("replica_1")
    assert monitor.usable() == ["replica_2"]
    assert monitor.substitutes("replica_1") == ["replica_2", "default"]


@pytest.mark.parametrize("state", ["paused", "promoted", "down"])
def test_paused_promoted_and_down_replicas_are_skipped(world, state):
    monitor, clock, prober = world
    prober.set("replica_1", state)
    assert monitor.usable() == ["replica_2"]
    assert monitor.usable(max_lag_factor=2.0) == ["replica_2"]


def test_lagging_replicas_are_skipped_and_used_only_within_relaxed_limits(world):
    monitor, clock, prober = world
    prober.set("replica_1", "lagging", lag_seconds=1.5, lag_bytes=10)
    prober.set("replica_2", "lagging", lag_seconds=5.0, lag_bytes=10)
    assert monitor.usable() == []
    assert monitor.usable(max_lag_factor=2.0) == ["replica_1"]


def test_wal_positions_compare_as_numbers_not_strings():
    assert parse_lsn("0/10") > parse_lsn("0/9")
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
    assert "0/10" < "0/9"  # what a string comparison would get wrong
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
