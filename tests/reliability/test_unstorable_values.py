"""Values a worker can write that SQLite or JSON cannot hold as they are: each is stored exactly or
is one counted rejection, never a loss of its neighbours, and the CLI's summary and exit code say so.

Real ``python -m gym_gui.run`` processes on real worker scripts and a real SQLite file, except
where the store itself is the subject (a lone-surrogate id that only an embedding caller or a
remote writer can hand it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

from gym_gui.run_output import run_outcome, unstored_events
from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sink_core import SinkCore
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

TS = "2024-05-01T12:00:00.123456+00:00"
Cli = Callable[..., subprocess.CompletedProcess[str]]
Script = Callable[[str], list[str]]


def _step(run_id: str, step: int, *, agent_id: str = "a1", **fields: Any) -> dict[str, Any]:
    """A step in our workers' exact layout (the proxy's fastest path), ``fields`` replacing values."""
    record = {"v": 1, "kind": "step", "run_id": run_id, "agent_id": agent_id, "ts": TS, "episode_index": 0,
              "step_index": step, "action": 1, "observation": 5, "reward": 0.5, "terminated": False,
              "truncated": False, "info": {"prob": 1.0}, "render_payload": None}
    record.update(fields)
    return record


def _started(run_id: str) -> dict[str, Any]:
    return {"v": 1, "kind": "run_started", "run_id": run_id, "agent_id": "a1", "ts": TS, "env_id": "FrozenLake-v1",
            "config": {}}


def _completed(run_id: str, outcome: str = "completed") -> dict[str, Any]:
    return {"v": 1, "kind": "run_completed", "run_id": run_id, "agent_id": "a1", "ts": TS, "outcome": outcome,
            "summary": {}}


def _line(record: dict[str, Any] | str) -> str:
    # json.dumps escapes a lone surrogate as ``\udc80`` and writes ints of any size: what a worker can send
    return record if isinstance(record, str) else json.dumps(record)


def _run(cli: Cli, script: Script, tmp_path: Path, lines: list[dict[str, Any] | str]) -> tuple[
        subprocess.CompletedProcess[str], TelemetrySQLiteStore]:
    text = "\n".join(_line(r) for r in lines) + "\n"
    db = tmp_path / "runs.sqlite"
    worker = script(f"import sys\nsys.stdout.write({text!r})\n")
    done = cli("--db", str(db), "--", *worker)
    return done, TelemetrySQLiteStore(db)


def _stored_steps(store: TelemetrySQLiteStore, run_id: str) -> list[dict[str, Any]]:
    return [dict(e.payload) for e in store.events_after(run_id, "a1", 0) if e.topic is Topic.STEP_APPENDED]


def test_integers_beyond_64_bits_as_action_or_observation_are_stored_and_read_back_exactly(
        cli: Cli, script: Script, tmp_path: Path) -> None:
    values = [(2**63, 5), (1, -2**63 - 1), (10**400, 2**64), (2**63 - 1, -2**63)]
    lines: list[dict[str, Any] | str] = [_started("r1")]
    lines += [_step("r1", i, action=a, observation=o) for i, (a, o) in enumerate(values)]
    lines.append(_completed("r1"))
    done, store = _run(cli, script, tmp_path, lines)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "not stored: nothing" in done.stdout and "write errors (0 retries), 0 kept aside" in done.stdout
        assert [(s["action"], s["observation"]) for s in _stored_steps(store, "r1")] == values
        assert store.step_count("r1") == len(values)
    finally:
        store.close()


def test_a_lone_surrogate_in_a_run_or_agent_id_is_one_rejection_and_costs_no_other_event(
        cli: Cli, script: Script, tmp_path: Path) -> None:
    # the bad lines sit amid valid ones, in the same batch as the run's later steps and its completion
    lines: list[dict[str, Any] | str] = [_started("r1"), _step("r1", 0)]
    lines += [_step("r\udc80", 0), _step("r1", 1, agent_id="a\ud800"),
              {k: v for k, v in _step("r\udc80", 1).items() if k not in ("info", "render_payload")}]
    lines += [_step("r1", i) for i in range(1, 301)] + [_completed("r1")]
    done, store = _run(cli, script, tmp_path, lines)
    try:
        assert done.returncode == 3, done.stdout + done.stderr
        assert "rejected lines: wrong_type 3;" in done.stdout, done.stdout
        assert "0 kept aside, 0 lost" in done.stdout and "outcome completed" in done.stdout, done.stdout
        assert [s["step_index"] for s in _stored_steps(store, "r1")] == list(range(301))
    finally:
        store.close()


def test_a_number_beyond_the_double_range_anywhere_in_a_step_is_a_non_finite_rejection(
        cli: Cli, script: Script, tmp_path: Path) -> None:
    valid = _line(_step("r1", 0))
    bad = [valid.replace('"action": 1', '"action": 1e400'), valid.replace('"prob": 1.0', '"prob": -1E+400'),
           valid.replace('"observation": 5', '"observation": [1, 2e999]')]
    assert all(b != valid for b in bad)
    lines: list[dict[str, Any] | str] = [_started("r1"), *bad, _step("r1", 1), _completed("r1")]
    done, store = _run(cli, script, tmp_path, lines)
    try:
        assert done.returncode == 3, done.stdout + done.stderr
        assert "rejected lines: non_finite_number 3;" in done.stdout, done.stdout
        assert [s["step_index"] for s in _stored_steps(store, "r1")] == [1]
    finally:
        store.close()


def test_one_failed_run_among_several_makes_the_exit_code_1_whatever_the_order(
        cli: Cli, script: Script, tmp_path: Path) -> None:
    lines: list[dict[str, Any] | str] = [_started("r1"), _step("r1", 0), _completed("r1", "failed"),
                                         _started("r2"), _step("r2", 0), _completed("r2")]
    done, store = _run(cli, script, tmp_path, lines)
    store.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "run r1 (FrozenLake-v1): outcome failed" in done.stdout and "outcome completed" in done.stdout


def test_the_exit_outcome_is_the_worst_of_the_runs() -> None:
    assert run_outcome(["completed", "completed"]) == "completed"
    assert run_outcome(["failed", "completed"]) == run_outcome(["completed", "failed"]) == "failed"
    assert run_outcome(["cancelled", "completed"]) == "cancelled"
    assert run_outcome(["cancelled", "interrupted", "completed"]) == "interrupted"
    assert run_outcome([]) == "failed"


def test_events_kept_aside_count_as_not_stored() -> None:
    assert unstored_events(10, {"lost": 0, "persisted": 10, "rejected": 2}) == (0, 2)
    assert unstored_events(10, {"lost": 1, "persisted": 7, "rejected": 0}) == (3, 0)


def test_the_store_keeps_an_event_with_an_unstorable_id_aside_and_the_rest_of_its_batch(tmp_path: Path) -> None:
    """A lone-surrogate id from an in-process publisher: that event is kept aside in ``run_events``
    under its ids escaped, counted; the rest of its batch (the same transaction) is stored."""
    store = TelemetrySQLiteStore(tmp_path / "runs.sqlite")
    bus = RunBus()
    sink = SinkCore(store, bus)
    sink.start()
    try:
        def step(run_id: str, agent_id: str, seq: int) -> TelemetryEvent:
            payload = {k: v for k, v in _step(run_id, seq).items() if k not in ("v", "kind", "run_id", "agent_id", "ts")}
            return TelemetryEvent(Topic.STEP_APPENDED, run_id, agent_id, seq, TS, payload)

        # the bad stream's completion is in the batch too: the store releases completed runs' streams
        events = [TelemetryEvent(Topic.RUN_STARTED, "r1", "a1", 1, TS, {"env_id": "FrozenLake-v1"}),
                  step("r1", "a1", 2), step("r\udc80", "a1", 1), step("r1", "a\ud800", 1), step("r1", "a1", 3),
                  TelemetryEvent(Topic.RUN_COMPLETED, "r\udc80", "a1", 2, TS, {"outcome": "failed"}),
                  TelemetryEvent(Topic.RUN_COMPLETED, "r1", "a1", 4, TS, {"outcome": "completed"})]
        for evt in events:
            bus.publish(evt)
        assert sink.flush(10)
        stats = sink.stats()
        assert (stats["lost"], stats["rejected"], stats["persisted"], stats["errors"]) == (0, 3, 7, 0), stats
        assert [e.seq_id for e in store.events_after("r1", "a1", 0)] == [2, 3]
        run = store.run("r1")
        assert run is not None and run.outcome == "completed"
        kept = sorted((e.run_id, e.agent_id, e.seq_id, why.split(":")[0]) for e, why in store.rejected_events())
        assert kept == [("r1", "a\\ud800", 1, "unstorable_id"), ("r\\udc80", "a1", 1, "unstorable_id"),
                        ("r\\udc80", "a1", 2, "unstorable_id")]
        assert store.run("r\\udc80") is None  # no run row of its own
        assert sink.stop(5) and not sink.running
    finally:
        sink.stop(5)
        store.close()
