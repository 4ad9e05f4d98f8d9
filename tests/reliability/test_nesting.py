"""Issue 10, item 2: one nesting limit for reading and writing JSON.

A line nested between about 990 and 1,022 levels used to be read (orjson takes 1,024) but not
written (the stdlib encoder fails near 990), and its whole batch was lost. Now such a line is one
counted ``nested_too_deeply`` rejection; the rest of the batch, the run's completion included,
is stored, and the CLI's exit code says something was lost.
"""

from __future__ import annotations

import collections
import sqlite3
import types
from pathlib import Path
from typing import Any, Callable

import pytest

from gym_gui.telemetry import json_text
from gym_gui.telemetry.json_text import encode_json, load_json_exact

LIMIT = getattr(json_text, "MAX_JSON_DEPTH", 512)


def nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def nested_text(depth: int) -> str:
    return "[" * depth + "0" + "]" * depth


@pytest.mark.parametrize("depth", [LIMIT + 1, 990, 1000, 1022, 1024, 5000])
def test_the_encoder_and_decoder_refuse_the_same_depths(depth: int) -> None:
    with pytest.raises(ValueError, match="nested deeper than"):
        encode_json(nested(depth))
    with pytest.raises(ValueError, match="nested deeper than"):
        load_json_exact(nested_text(depth).encode())


class _Key(str):
    """A str subclass: a scalar to the walk, as str is."""


class _Count(int):
    """An int subclass: a scalar to the walk, as int is."""


@pytest.mark.parametrize("wrap", [dict, types.MappingProxyType, collections.OrderedDict])
def test_nesting_exceeds_counts_every_mapping_and_skips_every_scalar(wrap: Callable[[dict[str, Any]], Any]) -> None:
    scalars = ["s", _Key("k"), 1, _Count(2), 1.5, True, None]
    value: Any = scalars
    for _ in range(LIMIT - 1):
        value = wrap({"k": value, "s": _Key("x"), "n": _Count(3)})
    assert not json_text.nesting_exceeds(value, LIMIT)  # LIMIT levels: the mappings and the list
    assert json_text.nesting_exceeds(wrap({"k": value}), LIMIT)
    assert json_text.nesting_exceeds([scalars, [wrap({"deeper": value})]], LIMIT)
    assert not json_text.nesting_exceeds(_Key("{" * 600), LIMIT)  # a scalar root nests nothing


@pytest.mark.parametrize("leaf", [0, None, float("nan"), 2**70])  # orjson and stdlib paths alike
def test_everything_up_to_the_limit_is_written_and_read_back(leaf: Any) -> None:
    value = nested(LIMIT, leaf)
    text = encode_json(value)
    back = load_json_exact(text.encode())
    assert json_text.stdlib_encode(back) == json_text.stdlib_encode(value)


def test_a_too_deep_line_costs_one_counted_rejection_and_nothing_else(
        tmp_path: Path, script: Callable[[str], list[str]], cli: Callable[..., Any]) -> None:
    worker = script("""
        import json, sys
        def emit(rec):
            sys.stdout.write(json.dumps(rec) + "\\n")
        def step(i, info):
            return {"v": 1, "kind": "step", "run_id": "deep", "agent_id": "a", "episode_index": 0,
                    "step_index": i, "action": 0, "observation": 0, "reward": 1.0, "terminated": False,
                    "truncated": False, "info": info}
        emit({"v": 1, "kind": "run_started", "run_id": "deep", "agent_id": "a"})
        for i in range(5):
            emit(step(i, {}))
        text = json.dumps(step(5, {"x": "HOLE"})).replace('"HOLE"', "[" * 1000 + "0" + "]" * 1000)
        sys.stdout.write(text + "\\n")
        for i in range(6, 11):
            emit(step(i, {}))
        emit({"v": 1, "kind": "run_completed", "run_id": "deep", "agent_id": "a", "outcome": "completed"})
        sys.stdout.flush()
    """)
    db = tmp_path / "deep.sqlite"
    result = cli("--db", str(db), "--run-id", "deep", "--", *worker)
    assert result.returncode not in (0, None), result.stdout + result.stderr  # something was lost
    assert "nested_too_deeply 1" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 10
        assert conn.execute("SELECT status, outcome FROM runs").fetchall() == [("completed", "completed")]


@pytest.mark.parametrize("depth", [600, 1000, 3000])
def test_an_in_process_payload_too_deep_to_store_costs_only_itself(tmp_path: Path, depth: int) -> None:
    """A publisher in the GUI process can hand the store any payload: a too-deep one is kept aside
    (``run_events.error``), and the rest of its batch is stored."""
    from gym_gui.telemetry.events import TelemetryEvent, Topic
    from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

    def step(i: int, info: dict[str, Any]) -> TelemetryEvent:
        return TelemetryEvent(Topic.STEP_APPENDED, "r", "a", i, "2025-01-01T00:00:00+00:00",
                              {"episode_index": 0, "step_index": i, "action": 0, "observation": 0, "reward": 0.0,
                               "terminated": False, "truncated": False, "info": info, "render_payload": None})

    events = [step(i, {}) for i in range(1, 6)] + [step(6, {"d": nested(depth)})] + [step(i, {}) for i in range(7, 12)]
    store = TelemetrySQLiteStore(tmp_path / "inproc.sqlite")
    try:
        result = store.write_batch(events)
        assert store.step_count("r") == 10
        assert [e.seq_id for e, _reason in result.rejected] == [6] and not result.lost
    finally:
        store.close()
