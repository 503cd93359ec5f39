"""scripts/stack on a second, throwaway stack (its own var/ and ports); the suite's stack is untouched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import run_stack, stack_state

pytestmark = pytest.mark.stack


def psql(var: Path, server: str, sql: str) -> str:
    return run_stack("psql", server, "-d", "postgres", "-Atqc", sql, var=var).stdout.strip()


def all_pids(var: Path) -> list[int]:
    pids: list[int] = []
    for name in ("primary", "replica_1", "replica_2", "redis"):
        out = run_stack("pids", name, var=var, check=False).stdout.split()
        pids += [int(p) for p in out]
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def throwaway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    var = tmp_path_factory.mktemp("second-stack") / "var"
    run_stack("start", var=var)
    try:
        yield var
    finally:
        run_stack("destroy", var=var, check=False)


def test_the_second_stack_uses_its_own_ports(throwaway):
    ours = set(stack_state()["ports"].values())
    theirs = set(stack_state(throwaway)["ports"].values())
    assert len(theirs) == 4
    assert not ours & theirs


def test_starting_twice_is_harmless(throwaway):
    before = (stack_state(throwaway)["ports"], all_pids(throwaway))
    result = run_stack("start", var=throwaway)
    assert "DATABASE_URL" in result.stdout
    assert (stack_state(throwaway)["ports"], all_pids(throwaway)) == before
    assert run_stack("status", var=throwaway).returncode == 0


def test_each_replica_streams_from_its_own_slot(throwaway):
    rows = psql(throwaway, "primary", "SELECT application_name || ':' || state FROM pg_stat_replication ORDER BY 1")
    assert rows.splitlines() == ["replica_1:streaming", "replica_2:streaming"]
    slots = psql(throwaway, "primary", "SELECT slot_name || ':' || active FROM pg_replication_slots ORDER BY 1")
    assert slots.splitlines() == ["replica_1:true", "replica_2:true"]
    names = {psql(throwaway, r, "SHOW cluster_name") for r in ("replica_1", "replica_2")}
    assert names == {"replica_1", "replica_2"}


def test_a_stopped_replica_catches_up_after_restart(throwaway):
    run_stack("ctl", "replica_1", "stop", "--mode", "immediate", var=throwaway)
    psql(throwaway, "primary", "CREATE TABLE catch_up AS SELECT g AS n FROM generate_series(1, 50000) g")
    held = psql(
        throwaway,
        "primary",
        "SELECT active || ':' || (restart_lsn IS NOT NULL) FROM pg_replication_slots WHERE slot_name = 'replica_1'",
    )
    assert held == "false:true"  # the slot keeps the WAL the stopped replica still needs
    run_stack("start", var=throwaway)
    deadline = time.monotonic() + 30
    while psql(throwaway, "replica_1", "SELECT to_regclass('catch_up') IS NOT NULL") != "t":
        assert time.monotonic() < deadline, "replica_1 did not catch up"
        time.sleep(0.2)
    assert psql(throwaway, "replica_1", "SELECT count(*) FROM catch_up") == "50000"


def test_a_stale_pid_file_is_repaired_on_start(throwaway):
    run_stack("ctl", "replica_2", "stop", "--mode", "immediate", var=throwaway)
    pid_file = Path(stack_state(throwaway)["pg_root"]) / "replica_2" / "postmaster.pid"
    assert not pid_file.exists()
    pid_file.write_text("999999\n")  # a server that crashed hard leaves one behind
    result = run_stack("start", var=throwaway)
    assert "stale postmaster.pid" in result.stderr
    assert run_stack("status", var=throwaway).returncode == 0


def test_reset_rebuilds_every_cluster(throwaway):
    before = psql(throwaway, "primary", "SELECT system_identifier FROM pg_control_system()")
    run_stack("reset", var=throwaway)
    after = psql(throwaway, "primary", "SELECT system_identifier FROM pg_control_system()")
    assert after != before
    assert psql(throwaway, "primary", "SELECT to_regclass('catch_up') IS NULL") == "t"
    assert psql(throwaway, "primary", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "2"


def test_a_half_made_replica_is_rebuilt_on_start(throwaway):
    run_stack("ctl", "replica_2", "stop", var=throwaway)
    (Path(stack_state(throwaway)["pg_root"]) / "replica_2" / ".softfactory-ready").unlink()
    result = run_stack("start", var=throwaway)
    assert "half-made replica" in result.stderr
    assert psql(throwaway, "replica_2", "SELECT pg_is_in_recovery()") == "t"


def test_stop_leaves_no_process_running(throwaway):
    pids = all_pids(throwaway)
    assert len(pids) >= 4
    run_stack("stop", var=throwaway)
    assert [pid for pid in pids if alive(pid)] == []
    assert run_stack("status", var=throwaway, check=False).returncode == 3
