"""TelemetrySQLiteStore against EMBEDDING.md section 4: the existing gym_gui callers' record API.

Real SQLite files in tmp_path, the real writer thread; records written through this API are checked
through the event-based API too, and events written by ``write_batch`` through this one.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
import threading
import time
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from gym_gui.telemetry import data_model
from gym_gui.telemetry.data_model import EpisodeRollup, StepRecord, format_episode_id, parse_episode_id
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.sqlite_schema import SchemaVersionError
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from polling import wait_until

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)



def step(run_id: str, index: int, step_index: int, *, agent_id: str | None = "agent1", worker: str | None = None,
         **fields: Any) -> StepRecord:
    values: dict[str, Any] = dict(
        episode_id=format_episode_id(run_id, index, worker), step_index=step_index, action=step_index % 4,
        observation=step_index, reward=0.5, terminated=False, truncated=False, info={"prob": 1.0},
        timestamp=T0 + timedelta(seconds=index * 100 + step_index), run_id=run_id, agent_id=agent_id,
        worker_id=worker,
    )
    values.update(fields)
    return StepRecord(**values)


def rollup(run_id: str, index: int, *, agent_id: str | None = "agent1", steps: int = 3, **fields: Any) -> EpisodeRollup:
    values: dict[str, Any] = dict(
        episode_id=format_episode_id(run_id, index, fields.get("worker_id")), total_reward=0.5 * steps,
        steps=steps, terminated=True, truncated=False, metadata={"seed": index},
        timestamp=T0 + timedelta(seconds=index * 100 + 99), agent_id=agent_id, run_id=run_id,
    )
    values.update(fields)
    return EpisodeRollup(**values)


def raw_count(path: Path, table: str) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def store(db_path: Path) -> Iterator[TelemetrySQLiteStore]:
    s = TelemetrySQLiteStore(db_path)
    yield s
    s.close()


# -- records -------------------------------------------------------------------------------------
def test_record_classes_have_the_existing_shape() -> None:
    step_fields = [(f.name, f.default) for f in dataclasses.fields(StepRecord)]
    assert [n for n, _ in step_fields] == [
        "episode_id", "step_index", "action", "observation", "reward", "terminated", "truncated", "info",
        "timestamp", "render_payload", "agent_id", "render_hint", "frame_ref", "obs_ref", "payload_version",
        "run_id", "worker_id", "time_step", "space_signature", "vector_metadata"]
    assert dict(step_fields)["payload_version"] == 0 and dict(step_fields)["render_payload"] is None
    assert [f.name for f in dataclasses.fields(EpisodeRollup)] == [
        "episode_id", "total_reward", "steps", "terminated", "truncated", "metadata", "timestamp", "agent_id",
        "run_id", "game_id", "worker_id"]
    s = StepRecord("r-ep000000", 0, None, None, 0.0, False, False)
    assert s.info == {} and s.timestamp.tzinfo is timezone.utc and s.agent_id is None
    assert not hasattr(s, "__dict__") and "__slots__" in vars(StepRecord)
    assert dataclasses.replace(s, agent_id="a").agent_id == "a" and s.agent_id is None
    e = EpisodeRollup("r-ep000000", 1.0, 2, True, False)
    assert e.metadata == {} and e.worker_id is None and not hasattr(e, "__dict__")
    assert StepRecord("x", 0, 0, 0, 0.0, False, False).info is not s.info  # a fresh dict per record


def test_episode_ids_format_and_parse() -> None:
    assert format_episode_id("run1", 7) == "run1-ep000007"
    assert format_episode_id("run1", 7, "3") == "run1-w3-ep000007"
    assert parse_episode_id("run1-ep000007") == ("run1", None, 7)
    assert parse_episode_id("run1-w3-ep000007") == ("run1", "3", 7)
    assert parse_episode_id("a-wb-ep000001", "a-wb") == ("a-wb", None, 1)  # the run id is known: exact
    assert parse_episode_id("run1-ep000007", "run2") is None
    assert parse_episode_id("") is None and parse_episode_id("free text") is None and parse_episode_id(None) is None


def test_the_host_apps_record_classes_are_taken_and_returned(store: TelemetrySQLiteStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(slots=True)
    class HostStep(StepRecord):
        pass

    @dataclasses.dataclass(slots=True)
    class HostRollup(EpisodeRollup):
        pass

    module = types.ModuleType("gym_gui.core.data_model.telemetry_core")
    module.StepRecord, module.EpisodeRollup = HostStep, HostRollup  # type: ignore[attr-defined]
    for name in ("gym_gui.core", "gym_gui.core.data_model"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(data_model, "_classes", None)
    assert data_model.record_classes() == (HostStep, HostRollup)
    store.record_step(step("run1", 0, 0))
    store.record_episode(rollup("run1", 0), wait=True)
    assert type(store.recent_steps()[0]) is HostStep
    assert type(store.episodes_for_run("run1")[0]) is HostRollup  # (monkeypatch restores the cache afterwards)


def test_the_package_re_exports_the_store_lazily_and_without_qt() -> None:
    import subprocess

    script = (
        "import sys\n"
        "import gym_gui.telemetry as t\n"
        "assert 'gym_gui.telemetry.sqlite_store' not in sys.modules\n"
        "from gym_gui.telemetry import TelemetrySQLiteStore\n"
        "from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore as S\n"
        "assert TelemetrySQLiteStore is S and 'TelemetrySQLiteStore' in t.__all__\n"
        "assert not {'PyQt5', 'PyQt6', 'qtpy'} & set(sys.modules), sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr


def test_a_host_module_that_fails_to_import_is_tried_again(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    half = types.ModuleType("gym_gui.core.data_model.telemetry_core")  # still importing: no classes yet
    for name in ("gym_gui.core", "gym_gui.core.data_model"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, half.__name__, half)
    monkeypatch.setattr(data_model, "_classes", None)
    assert data_model.record_classes() == (StepRecord, EpisodeRollup) and "failed to import" in caplog.text
    assert data_model._classes is None  # not cached
    half.StepRecord, half.EpisodeRollup = StepRecord, EpisodeRollup  # type: ignore[attr-defined]
    assert data_model.record_classes() == (StepRecord, EpisodeRollup) and data_model._classes is not None


# -- constructor ---------------------------------------------------------------------------------
def test_constructor_takes_str_or_path_expands_home_and_creates_folders(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with TelemetrySQLiteStore("~/var/telemetry/t.sqlite", batch_size=8, max_buffer_bytes=1024) as s:
        assert s.path == (tmp_path / "var" / "telemetry" / "t.sqlite").resolve() and s.path.exists()
        assert s.db_path == s.path
    with TelemetrySQLiteStore(tmp_path / "rel" / ".." / "p.sqlite") as s:
        assert s.path == (tmp_path / "p.sqlite")


def test_a_malformed_file_raises_log622a(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as s:
        s.record_step(step("run1", 0, 0))
        s.flush()
        s.checkpoint_wal("TRUNCATE")
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xab" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match=r"^LOG622A: .*malformed"):
        TelemetrySQLiteStore(path)


def test_a_foreign_file_is_still_refused_with_schema_version_error(tmp_path: Path) -> None:
    path = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError):
        TelemetrySQLiteStore(path)


# -- writes and reads ----------------------------------------------------------------------------
def test_every_field_round_trips(store: TelemetrySQLiteStore) -> None:
    s = StepRecord(
        episode_id="run1-w2-ep000004", step_index=3, action=2, observation={"pos": [1, 2]}, reward=1.5,
        terminated=True, truncated=False, info={"k": "v"}, timestamp=T0, render_payload={"game_id": "g1", "grid": [[1]]},
        agent_id="agent7", render_hint={"mode": "grid"}, frame_ref="frames/4.png", obs_ref="obs/4.npy",
        payload_version=3, run_id="run1", worker_id="2", time_step=99, space_signature={"obs": "Discrete(16)"},
        vector_metadata={"envs": 4},
    )
    store.record_step(s)
    e = EpisodeRollup("run1-w2-ep000004", 1.5, 4, True, False, {"episode_index": 4, "x": 1}, T0, "agent7",
                      "run1", "g1", "2")
    store.record_episode(e, wait=True)
    (back,) = store.episode_steps("run1-w2-ep000004")
    assert back == dataclasses.replace(s, obs_ref=None)  # obs_ref is never read back
    assert store.recent_steps(1) == (back,)
    assert store.episodes_for_run("run1") == (e,)
    assert store.recent_episodes() == (e,)


def test_a_step_with_missing_run_id_takes_it_from_the_episode_id(store: TelemetrySQLiteStore) -> None:
    store.record_step(StepRecord("runA-ep000002", 0, 1, 5, 0.0, False, False, timestamp=T0))
    store.record_episode(EpisodeRollup("runA-w9-ep000002", 0.0, 1, True, False, timestamp=T0), wait=True)
    (s,) = store.recent_steps()
    assert s.run_id == "runA" and s.episode_id == "runA-ep000002" and s.agent_id is None
    (e,) = store.episodes_for_run("runA")
    assert (e.run_id, e.worker_id, e.episode_id) == ("runA", "9", "runA-w9-ep000002")  # filled from the id
    assert [r.episode_index for r in store.episode_records("runA")] == [2]


def test_duck_typed_and_numpy_input(store: TelemetrySQLiteStore) -> None:
    class Plain:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    store.record_step(types.SimpleNamespace(
        episode_id="run1-ep000000", step_index=np.int64(0), action=np.int32(3), observation=np.arange(3),
        reward=np.float32(0.25), terminated=np.bool_(True), truncated=False, info={}, timestamp=T0,
        render_payload=None, agent_id=None, run_id="run1"))
    store.record_episode(Plain(episode_id="run1-ep000000", total_reward=np.float64(0.25), steps=np.int64(1),
                               terminated=True, truncated=False, metadata={}, timestamp=T0, agent_id=None,
                               run_id="run1", game_id=None, worker_id=None), wait=True)
    (s,) = store.recent_steps()
    assert (s.step_index, s.action, s.reward, s.terminated) == (0, 3, 0.25, True)
    assert isinstance(s.observation, np.ndarray) and s.observation.dtype == np.arange(3).dtype
    assert s.observation.tolist() == [0, 1, 2]
    assert type(s.step_index) is int and type(s.reward) is float and s.terminated is True
    (e,) = store.episodes_for_run("run1")
    assert (e.total_reward, e.steps) == (0.25, 1)
    assert store.get_run_summary("run1")["total_reward"] == 0.25  # the typed column holds it


def test_array_observations_read_back_as_arrays(store: TelemetrySQLiteStore) -> None:
    frame = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    store.record_step(step("run1", 0, 0, observation=frame))
    store.record_step(step("run1", 0, 1, observation=np.float32(0.5)))  # a numpy scalar: a plain number
    store.flush()
    first, second = store.episode_steps("run1-ep000000")
    assert first.observation.dtype == np.uint8 and first.observation.shape == (2, 3, 4)
    assert np.array_equal(first.observation, frame) and second.observation == 0.5
    (event_row, _) = store.steps_for_episode("run1", "agent1", 0)
    assert event_row.observation == frame.tolist()  # the event API sees the JSON form


def test_numeric_strings_are_read_as_the_columns_affinity_would(store: TelemetrySQLiteStore) -> None:
    store.record_step(StepRecord("run1-ep000000", "3", None, 0, " 0.5", False, False))  # type: ignore[arg-type]
    store.record_episode(EpisodeRollup("run1-ep000000", "1.5", "4", True, False), wait=True)  # type: ignore[arg-type]
    (s,) = store.recent_steps()
    assert (s.step_index, s.reward) == (3, 0.5)
    (e,) = store.episodes_for_run("run1")
    assert (e.total_reward, e.steps) == (1.5, 4)


def test_unencodable_values_are_kept_as_text_and_counted(store: TelemetrySQLiteStore) -> None:
    store.record_step(step("run1", 0, 0, render_hint={"obj": object()}))
    store.flush()
    (s,) = store.recent_steps()
    assert isinstance(s.render_hint, str) and s.render_hint.startswith("<unencodable dict")
    assert store.record_stats["unencodable"] == 1


def test_record_episode_writes_pending_steps_first_and_wait_commits_everything(
        store: TelemetrySQLiteStore, db_path: Path) -> None:
    for i in range(10):
        store.record_step(step("run1", 0, i))
    store.record_episode(rollup("run1", 0, steps=10), wait=True)
    assert raw_count(db_path, "steps") == 10 and raw_count(db_path, "episodes") == 1  # another connection
    events = store.events_after("run1", "agent1", 0)
    assert [e.topic for e in events] == [Topic.STEP_APPENDED] * 10 + [Topic.EPISODE_FINALIZED]
    assert [e.seq_id for e in events] == list(range(1, 12)) and store.max_seq_id("run1", "agent1") == 11


def test_record_step_only_enqueues_and_flush_commits(store: TelemetrySQLiteStore, db_path: Path) -> None:
    store.record_step(step("run1", 0, 0))
    store.record_episode(rollup("run1", 0, steps=1))  # wait=False: returns at once
    store.flush()
    assert raw_count(db_path, "steps") == 1 and raw_count(db_path, "episodes") == 1


def test_the_writer_flushes_a_partial_batch_when_idle(store: TelemetrySQLiteStore, db_path: Path) -> None:
    store.record_step(step("run1", 0, 0))
    wait_until(lambda: raw_count(db_path, "steps") == 1, timeout_s=2.0)  # 0.1 s idle flush, no flush() call


def test_a_repeated_episode_id_and_step_index_is_ignored_but_empty_episode_ids_are_all_kept(
        store: TelemetrySQLiteStore) -> None:
    store.record_step(step("run1", 0, 0))
    store.record_step(step("run1", 0, 0, reward=9.0))  # same batch
    store.flush()
    store.record_step(step("run1", 0, 0, reward=8.0))  # a later batch
    store.record_step(step("run1", 0, 0, agent_id="agent2"))  # another stream: kept
    for i in range(3):
        store.record_step(StepRecord("", 0, 0, 0, 0.1 * i, False, False, run_id="run1", agent_id="agent1"))
    store.flush()
    assert [s.reward for s in store.episode_steps("run1-ep000000")] == [0.5, 0.5]
    assert sorted(s.agent_id for s in store.episode_steps("run1-ep000000")) == ["agent1", "agent2"]
    empty = store.episode_steps("")
    assert len(empty) == 3 and {s.episode_id for s in empty} == {""}
    assert store.record_stats["ignored"] == 2 and store.step_count("run1") == 5


def test_the_repeat_rule_sees_rows_written_by_others(store: TelemetrySQLiteStore, db_path: Path,
                                                     factory: Any) -> None:
    for i in range(3):
        store.record_step(step("run1", 0, i))
    store.flush()
    with TelemetrySQLiteStore(db_path) as other:  # another connection (the other process's store)
        other.record_step(step("run1", 0, 2, reward=7.0))  # a repeat of this store's row
        other.record_step(step("run1", 0, 3))
        other.flush()
    store.record_step(step("run1", 0, 3, reward=7.0))  # a repeat of the other store's row
    f = factory("run1", "agent1", first_seq=1000)
    store.write_batch([f.step(0, 4, episode_id="run1-ep000000")])  # an event on this store's own connection
    store.record_step(step("run1", 0, 4, reward=7.0))
    store.flush()
    assert [(s.step_index, s.reward) for s in store.episode_steps("run1-ep000000")] == [
        (0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5), (4, 0.5)]
    store.delete_episode("run1-ep000000")
    store.record_step(step("run1", 0, 0, reward=2.0))  # after a deletion the key is free again
    store.flush()
    assert [(s.step_index, s.reward) for s in store.episode_steps("run1-ep000000")] == [(0, 2.0)]


def test_record_episode_upserts_on_episode_id(store: TelemetrySQLiteStore) -> None:
    store.record_episode(rollup("run1", 0, steps=3))
    store.record_episode(rollup("run1", 0, steps=5, agent_id="agent2"), wait=True)  # every column replaced
    (e,) = store.episodes_for_run("run1")
    assert (e.steps, e.agent_id) == (5, "agent2")
    # metadata["episode_index"] wins over the parsed index
    store.record_episode(rollup("run1", 1, episode_id="run1-ep000001", metadata={"episode_index": "7"}), wait=True)
    assert sorted(r.episode_index for r in store.episode_records("run1")) == [0, 7]
    assert {e.episode_id for e in store.episodes_for_run("run1")} == {"run1-ep000000", "run1-ep000001"}


def test_episodes_that_share_a_key_or_have_no_index_are_all_kept(store: TelemetrySQLiteStore) -> None:
    store.record_episode(rollup("run1", 0, worker_id="1", episode_id="run1-w1-ep000000"))
    store.record_episode(rollup("run1", 0, worker_id="2", episode_id="run1-w2-ep000000"))
    store.record_episode(rollup("run1", 0, episode_id="custom"))
    store.record_episode(rollup("run1", 0, episode_id=""))
    store.record_episode(rollup("run1", 0, episode_id=""), wait=True)
    ids = sorted(e.episode_id for e in store.episodes_for_run("run1"))
    assert ids == ["", "", "custom", "run1-w1-ep000000", "run1-w2-ep000000"]
    store.record_episode(rollup("run1", 0, episode_id="custom", steps=9), wait=True)  # upsert finds it again
    assert [e.steps for e in store.episodes_for_run("run1") if e.episode_id == "custom"] == [9]


def test_episodes_for_run_filters_orders_limits_and_flushes(store: TelemetrySQLiteStore) -> None:
    for i, agent in enumerate(["a", "b", "a", "b"]):
        store.record_episode(rollup("run1", i, agent_id=agent))
    store.record_episode(rollup("run2", 0))
    got = store.episodes_for_run("run1")  # no flush() before: the method flushes
    assert isinstance(got, tuple) and [e.episode_id for e in got] == [format_episode_id("run1", i) for i in range(4)]
    assert [e.episode_id[-1] for e in store.episodes_for_run("run1", agent_id="b")] == ["1", "3"]
    assert len(store.episodes_for_run("run1", agent_id="")) == 4  # a falsy agent does not filter
    assert [e.episode_id[-1] for e in store.episodes_for_run("run1", order_desc=True, limit=2)] == ["3", "2"]
    assert store.episodes_for_run("run1", limit=0) == ()


def test_recent_steps_interleave_concurrent_streams_by_time(store: TelemetrySQLiteStore) -> None:
    # two runs written side by side (the steps alternate in time), and an old run stored before them
    for i in range(3):
        store.record_step(step("old", 0, i, timestamp=T0 - timedelta(hours=1, seconds=-i)))
    for i in range(4):
        store.record_step(step("left", 0, i, timestamp=T0 + timedelta(seconds=2 * i)))
        store.record_step(step("right", 0, i, timestamp=T0 + timedelta(seconds=2 * i + 1)))
    store.flush()
    assert [(s.run_id, s.step_index) for s in store.recent_steps(5)] == [
        ("right", 3), ("left", 3), ("right", 2), ("left", 2), ("right", 1)]
    everything = store.recent_steps(100)
    assert len(everything) == 11 and [(s.run_id, s.step_index) for s in everything[-3:]] == [
        ("old", 2), ("old", 1), ("old", 0)]
    assert store.recent_steps(0) == ()
    store.purge_steps(3)  # keeps the newest in the same order
    assert [(s.run_id, s.step_index) for s in store.recent_steps(100)] == [("right", 3), ("left", 3), ("right", 2)]


def test_recent_reads_are_newest_first(store: TelemetrySQLiteStore) -> None:
    for i in range(5):
        store.record_step(step("run1", 0, i))
    for i in range(3):
        store.record_episode(rollup("run1", i, timestamp=T0 + timedelta(hours=3 - i)))
    store.flush()
    assert [s.step_index for s in store.recent_steps(3)] == [4, 3, 2]
    assert isinstance(store.recent_steps(), tuple) and len(store.recent_steps()) == 5
    assert [e.episode_id[-1] for e in store.recent_episodes(2)] == ["0", "1"]  # by timestamp text


def test_get_run_summary(store: TelemetrySQLiteStore) -> None:
    assert store.get_run_summary("nope") == {"run_id": "nope", "episodes": 0, "steps": 0, "total_reward": 0.0,
                                             "last_update": "", "status": "unknown", "agent_id": ""}
    for i in range(4):
        store.record_step(step("run1", 0, i, agent_id="agent1" if i < 3 else None))
    store.record_episode(rollup("run1", 0, steps=10))  # more steps than rows: the max wins
    store.record_episode(rollup("run1", 1, steps=2), wait=True)
    summary = store.get_run_summary("run1")
    assert summary == {"run_id": "run1", "episodes": 2, "steps": 12, "total_reward": 6.0,
                       "last_update": (T0 + timedelta(seconds=3)).isoformat(), "status": "unknown",
                       "agent_id": "agent1"}


def test_deletions(store: TelemetrySQLiteStore) -> None:
    for run in ("run1", "run2"):
        for ep in range(2):
            for i in range(3):
                store.record_step(step(run, ep, i))
            store.record_episode(rollup(run, ep))
    store.delete_episode("run1-ep000000")  # wait=True by default: after the queued writes
    assert store.episode_steps("run1-ep000000") == () and len(store.episode_steps("run1-ep000001")) == 3
    assert [e.episode_id for e in store.episodes_for_run("run1")] == ["run1-ep000001"]
    store.delete_run("run1")
    assert store.episodes_for_run("run1") == () and store.step_count("run1") == 0
    assert store.is_run_deleted("run1") and not store.is_run_archived("run1")
    assert store.get_run_summary("run1")["status"] == "deleted"
    store.archive_run("run2", wait=False)
    store.flush()
    assert store.is_run_archived("run2") and store.episodes_for_run("run2") == ()
    assert not store.is_run_deleted("run2") and not store.is_run_deleted("nope")
    store.record_step(step("run3", 0, 0))
    store.delete_all_episodes()
    assert store.recent_steps() == () and store.recent_episodes() == ()


def test_purge_steps_keeps_the_newest(store: TelemetrySQLiteStore) -> None:
    for i in range(10):
        store.record_step(step("run1", 0, i))
    store.purge_steps(4)
    assert [s.step_index for s in store.recent_steps()] == [9, 8, 7, 6]
    store.purge_steps(0)
    assert store.recent_steps() == ()


def test_checkpoint_wal_runs_the_known_modes_and_never_raises(store: TelemetrySQLiteStore, db_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    store.record_step(step("run1", 0, 0))
    store.flush()
    wal = Path(str(db_path) + "-wal")
    assert wal.stat().st_size > 0
    for mode in ("passive", "FULL", "Restart"):
        store.checkpoint_wal(mode)
    store.checkpoint_wal()
    assert wal.stat().st_size == 0  # TRUNCATE
    store.checkpoint_wal("BOGUS; DROP TABLE steps")
    assert "unknown mode" in caplog.text and store.step_count("run1") == 1
    store.close()
    store.checkpoint_wal()  # closed: logged
    assert "checkpoint_wal(TRUNCATE) failed" in caplog.text


# -- threads, failures, lifecycle ----------------------------------------------------------------
def test_writes_from_several_threads_are_all_stored(store: TelemetrySQLiteStore) -> None:
    start = threading.Barrier(4)

    def produce(n: int) -> None:  # one worker (its own episode ids) and agent per thread
        agent, worker = f"agent{n}", str(n)
        start.wait()
        for ep in range(5):
            for i in range(40):
                store.record_step(step("run1", ep, i, agent_id=agent, worker=worker))
            store.record_episode(rollup("run1", ep, agent_id=agent, steps=40, worker_id=worker), wait=(ep == 4))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush()
    assert store.step_count("run1") == 4 * 5 * 40
    for n in range(4):
        records = store.episode_records("run1", f"agent{n}")
        assert [r.episode_index for r in records] == list(range(5))
        steps = store.steps_for_episode("run1", f"agent{n}", 2)
        assert [s.step_index for s in steps] == list(range(40))  # seq order = queue order
    assert store.record_stats["lost"] == 0 and store.record_stats["ignored"] == 0


def test_event_batches_and_records_written_at_once_share_the_connection(store: TelemetrySQLiteStore,
                                                                       factory: Any) -> None:
    events = factory("run-events", "agent1").run(episodes=20, length=25)
    start = threading.Barrier(2)

    def write_events() -> None:
        start.wait()
        for i in range(0, len(events), 50):
            store.write_batch(events[i:i + 50])

    thread = threading.Thread(target=write_events)
    thread.start()
    start.wait()
    for ep in range(20):
        for i in range(25):
            store.record_step(step("run-records", ep, i))
        store.record_episode(rollup("run-records", ep, steps=25))
    thread.join()
    store.flush()
    assert store.step_count("run-events") == store.step_count("run-records") == 500
    assert len(store.episodes_for_run("run-events")) == len(store.episodes_for_run("run-records")) == 20


def test_the_writer_survives_a_locked_database_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    store = TelemetrySQLiteStore(path, busy_timeout_s=0.02)
    try:
        store.record_step(step("run1", 0, 0))
        store.flush()
        blocker = sqlite3.connect(str(path), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        for i in range(1, 50):
            store.record_step(step("run1", 0, i))
        store.record_episode(rollup("run1", 0, steps=50))
        wait_until(lambda: store.record_stats["retries"] >= 2)
        assert store.step_count("run1") == 1
        blocker.execute("ROLLBACK")
        blocker.close()
        store.flush()
        assert store.step_count("run1") == 50 and len(store.episodes_for_run("run1")) == 1
        assert store.record_stats["lost"] == 0 and store.record_stats["quarantined"] == 0
    finally:
        store.close()


def test_a_record_sqlite_refuses_is_kept_aside_and_the_rest_of_its_batch_is_stored(
        store: TelemetrySQLiteStore) -> None:
    store.record_step(step("run1", 0, 0))
    store.record_step(StepRecord("bad\udc80-ep000000", 0, 1, 1, 0.0, False, False))  # not storable as UTF-8
    store.record_step(step("run1", 0, 1))
    store.flush()
    assert [s.step_index for s in store.episode_steps("run1-ep000000")] == [0, 1]
    ((event, error),) = store.rejected_events()
    assert event.topic is Topic.STEP_APPENDED and "Unicode" in error
    assert event.payload["episode_id"] == "bad\udc80-ep000000"
    assert store.record_stats["quarantined"] == 1 and store.record_stats["lost"] == 0


def test_close_writes_the_queue_and_stops_the_thread(db_path: Path) -> None:
    store = TelemetrySQLiteStore(db_path)
    assert store._records is None  # started lazily, on the first record write
    for i in range(5):
        store.record_step(step("run1", 0, i))
    writer = store._records
    assert writer is not None and writer.thread.is_alive() and writer.thread.daemon
    store.close()
    assert not writer.thread.is_alive()
    store.close()  # idempotent
    store.record_step(step("run1", 0, 9))  # after close: not raised, counted
    store.record_episode(rollup("run1", 0), wait=True)
    store.flush()
    assert writer.stats["lost"] == 2
    assert raw_count(db_path, "steps") == 5


def test_close_gives_up_after_about_two_seconds_on_a_database_that_stays_locked(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    store = TelemetrySQLiteStore(path, busy_timeout_s=0.02)
    blocker = sqlite3.connect(str(path), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        for i in range(40):
            store.record_step(step("run1", 0, i))
        writer = store._records
        assert writer is not None
        wait_until(lambda: writer.stats["retries"] >= 1)
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 3.0
        wait_until(lambda: not writer.thread.is_alive())
        assert writer.stats["lost"] == 40 and writer.stats["steps"] == 0  # counted and logged, not silent
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


def test_with_block_closes_and_does_not_suppress(db_path: Path) -> None:
    with pytest.raises(KeyError):
        with TelemetrySQLiteStore(db_path) as store:
            store.record_step(step("run1", 0, 0))
            writer = store._records
            raise KeyError("boom")
    assert store._closed and writer is not None and not writer.thread.is_alive()
    assert raw_count(db_path, "steps") == 1


def test_an_unreferenced_store_is_closed_by_del(db_path: Path) -> None:
    store = TelemetrySQLiteStore(db_path)
    store.record_step(step("run1", 0, 0))
    writer = store._records
    assert writer is not None
    del store  # the writer thread holds no reference to the store
    writer.thread.join(5.0)
    assert not writer.thread.is_alive() and raw_count(db_path, "steps") == 1


def test_the_writer_does_not_keep_the_interpreter_alive_and_writes_at_exit(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "t.sqlite"
    script = (
        "import sys\n"
        "from gym_gui.telemetry import TelemetrySQLiteStore\n"
        "from gym_gui.telemetry.data_model import StepRecord\n"
        f"store = TelemetrySQLiteStore({str(path)!r})\n"
        "for i in range(100):\n"
        "    store.record_step(StepRecord('run1-ep000000', i, 0, 0, 0.0, False, False))\n"
        "sys.modules['__main__'].keep = store\n"  # still referenced at exit: only atexit closes it
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert raw_count(path, "steps") == 100


# -- both APIs on one file -----------------------------------------------------------------------
def test_record_rows_are_visible_to_the_event_api(store: TelemetrySQLiteStore) -> None:
    for i in range(3):
        store.record_step(step("run1", 0, i, worker="w1", frame_ref=f"f{i}.png"), seq_id=100 + i)
    store.record_episode(rollup("run1", 0, episode_id="run1-ww1-ep000000", worker_id="w1"), wait=True)
    (run,) = store.runs()
    assert run.run_id == "run1" and run.status == "running" and run.agent_ids == ("agent1",)
    steps = store.steps_for_episode("run1", "agent1", 0)
    assert [s.step_index for s in steps] == [0, 1, 2]
    assert steps[0].payload["worker_id"] == "w1" and steps[0].payload["frame_ref"] == "f0.png"
    assert steps[0].payload["producer_seq_id"] == 100 and steps[0].reward == 0.5
    (episode,) = store.episode_records("run1")
    assert (episode.episode_index, episode.length, episode.total_reward) == (0, 3, 1.5)
    assert episode.payload["worker_id"] == "w1" and episode.metadata == {"seed": 0}
    assert [e.topic for e in store.events_after("run1", "agent1", 0)][-1] is Topic.EPISODE_FINALIZED


def test_the_episode_id_columns_raw_sql_reads_agree_with_the_records(store: TelemetrySQLiteStore, db_path: Path,
                                                                      factory: Any) -> None:
    for episode_id, worker in [("run1-ep000000", None), ("run1-w2-ep000001", "2"), ("custom", None), ("", None),
                               ("run1-w5-ep000003", None)]:
        store.record_step(StepRecord(episode_id, 0, 0, 0, 0.0, False, False, run_id="run1", worker_id=worker))
        store.record_episode(EpisodeRollup(episode_id, 0.0, 1, True, False, run_id="run1", worker_id=worker))
    store.record_episode(EpisodeRollup("run1-ep000009", 0.0, 1, True, False, {"episode_index": 4}, run_id="run1"))
    store.record_episode(EpisodeRollup("run1-w7-ep000000", 0.0, 1, True, False, run_id="run1"))  # displaced
    f = factory("run1", "agent1")
    store.write_batch([f.step(6, 0, episode_id="run1-ep000006"), f.step(8, 0), f.episode(8, 1)])
    store.flush()
    conn = sqlite3.connect(str(db_path))
    try:
        raw_steps = sorted(r[0] for r in conn.execute("SELECT episode_id FROM steps"))
        raw_episodes = sorted(r[0] for r in conn.execute("SELECT episode_id FROM episodes"))
    finally:
        conn.close()
    assert raw_steps == sorted(s.episode_id for s in store.recent_steps(1000))
    assert raw_episodes == sorted(e.episode_id for e in store.recent_episodes(1000))
    assert "run1-w7-ep000000" in raw_episodes and "run1-ep000008" in raw_episodes and "" in raw_episodes


def test_event_rows_are_visible_as_records(store: TelemetrySQLiteStore, factory: Any) -> None:
    f = factory("run1", "agent1")
    events = [f.started()] + [f.step(0, i, episode_id="run1-ep000000", worker_id="w1") for i in range(3)]
    events += [f.episode(0, 3), f.step(1, 0)]
    store.write_batch(events)
    steps = store.episode_steps("run1-ep000000")
    assert [s.step_index for s in steps] == [0, 1, 2] and steps[0].worker_id == "w1"
    assert steps[0].render_payload == {"grid": [["S", "F"], ["H", "G"]], "agent": [0, 0]}
    assert steps[0].timestamp == datetime.fromisoformat(events[1].ts_iso) and steps[0].info == {"prob": 1.0}
    (e,) = store.episodes_for_run("run1")
    assert (e.episode_id, e.steps, e.total_reward, e.metadata) == ("run1-ep000000", 3, 1.5, {"seed": 0})
    assert [s.episode_id for s in store.recent_steps(1)] == ["run1-ep000001"]
    # A record written after events continues the stream's seq_ids.
    store.record_step(step("run1", 1, 1))
    store.flush()
    assert store.max_seq_id("run1", "agent1") == events[-1].seq_id + 1
