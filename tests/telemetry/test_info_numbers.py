"""Schema version 5: an info text split into an interned template and its last number
(``info_numbers``, ``step_writer``) reads back exactly: the same text, the same values type for type
and bit for bit, through the records, the version 3 shaped rows and the view ``steps``."""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.info_numbers import MAX_FLOAT, join_info, number_after, split_info
from gym_gui.telemetry.json_text import encode_json, load_json
from gym_gui.telemetry.sqlite_rows import STEP_READ_COLUMNS, decode_step
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore
from gym_gui.telemetry.step_layout import SPLIT_SQL
from gym_gui.telemetry.step_payload import compact_step
from gym_gui.telemetry.step_reads import RAW_COLUMNS, read_steps
from gym_gui.telemetry.step_writer import SPLIT_AFTER_TEXTS

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308, 1.7976931348623157e308,
                     MAX_FLOAT, -MAX_FLOAT, math.nextafter(MAX_FLOAT, 0), 0.1, 1 / 3, 1e-7, 1e16, 123.0]),
    st.integers(0, 2**64 - 1).map(lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0]),
)
NUMBERS = st.one_of(INT64, st.sampled_from([2**63, -(2**63) - 1, 2**70, 0, -1]), FLOATS)
LEAVES = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=5))
VALUES = st.one_of(LEAVES, st.lists(LEAVES, max_size=2), st.dictionaries(st.text(max_size=3), LEAVES, max_size=2))
KEYS = st.text(alphabet=st.sampled_from('ab:"\\{}\u00e9\ud800 '), max_size=4)
INFOS = st.dictionaries(KEYS, st.one_of(VALUES, NUMBERS, NUMBERS), max_size=4)


def same(a: Any, b: Any) -> bool:
    """Equal, type for type and in key order (bool is not int, -0.0 is not 0.0), NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


def _text(info: dict[str, Any]) -> str | None:
    try:
        return encode_json(info)
    except (TypeError, ValueError):
        return None


@settings(max_examples=400, deadline=None, derandomize=True)
@given(INFOS)
def test_a_split_text_joins_back_to_the_same_text(info: dict[str, Any]) -> None:
    text = _text(info)
    if text is None:
        return
    split = split_info(text)
    last = list(load_json(text).values())[-1] if info else None
    if split is None:
        return
    template, number = split
    assert template.endswith(":") and join_info(template, number) == text
    assert same(number, last) and type(number) in (int, float)
    assert same(load_json(join_info(template, number)), load_json(text))


@pytest.mark.parametrize(("info", "number"), [
    ({"epsilon": 0.95, "loss": 0.0001999600079984003}, 0.0001999600079984003),
    ({"a": [1, {"b": 2}], "n": -3}, -3), ({"n": 2**63 - 1}, 2**63 - 1), ({"n": -(2**63)}, -(2**63)),
    ({"n": 5e-324}, 5e-324), ({"n": 1e17}, 1e17), ({"x": "y", "n": 0.0}, 0.0), ({"k:\"": 1.5}, 1.5),
])
def test_texts_ending_in_a_number_are_split(info: dict[str, Any], number: Any) -> None:
    split = split_info(encode_json(info))
    assert split is not None and same(split[1], number)


@pytest.mark.parametrize("info", [
    {}, {"n": -0.0}, {"n": 2**63}, {"n": -(2**63) - 1}, {"n": float("nan")}, {"n": float("inf")}, {"n": 1e308},
    {"n": MAX_FLOAT}, {"n": True}, {"n": None}, {"n": "1"}, {"n": [1]}, {"n": {"m": 1}}, {"n": 1, "s": "x:1"},
])
def test_texts_whose_last_value_is_not_a_plain_number_stay_whole(info: dict[str, Any]) -> None:
    assert split_info(encode_json(info)) is None


@pytest.mark.parametrize("text", ['{"n":1e-05}', '{"n":01}', '{"n":-0}', '{"n":1.50}', '{"n":1E5}', '[1]', '{"n":1} '])
def test_texts_in_another_form_stay_whole(text: str) -> None:
    assert split_info(text) is None


@settings(max_examples=300, deadline=None, derandomize=True)
@given(INFOS, st.one_of(VALUES, NUMBERS), st.text(alphabet=st.sampled_from('0123456789.eE-+_ ,:"}{[]a'), max_size=8))
def test_a_text_after_another_texts_template_splits_as_split_info_splits_it(info: dict[str, Any], value: Any,
                                                                           junk: str) -> None:
    """The writer's shortcut for a stream's next info (its template, then ``number_after``) gives
    ``split_info``'s split, or None and then the writer asks ``split_info``."""
    text = _text(info)
    split = split_info(text) if text is not None else None
    if split is None:
        return
    template = split[0]
    encoded = _text({"v": value})
    for tail in ([encoded[5:]] if encoded is not None else []) + [junk + "}", junk]:
        other = template + tail
        number = number_after(other, len(template))
        if number is not None:
            assert split_info(other) == (template, number) and join_info(template, number) == other


def _reference_number(num: str) -> Any:
    """The number a split takes of a value text ``num``, by the rule alone: a plain int of 64 bits
    or a float of magnitude below MAX_FLOAT, not -0.0, whose text is the one our encoder writes."""
    if not num or not (num[0].isdigit() or num[0] == "-"):
        return None
    try:
        number: Any = float(num) if any(c in num for c in ".eE") else int(num)
    except ValueError:
        return None
    if type(number) is int:
        return number if -(2**63) <= number < 2**63 and str(number) == num else None
    if not (math.isfinite(number) and abs(number) < MAX_FLOAT) or (number == 0.0 and math.copysign(1, number) < 0):
        return None
    return number if encode_json(number) == num else None


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.one_of(NUMBERS.map(lambda n: json.dumps(n) if isinstance(n, float) else str(n)),
                 NUMBERS.map(lambda n: _text({"v": n}) or "x").map(lambda t: t[5:-1]),
                 st.text(alphabet=st.sampled_from("0123456789.eE-+_ xIinfNa[]{}\"\t"), max_size=12)))
def test_the_number_of_a_value_text_follows_the_rule(num: str) -> None:
    number = number_after('{"k":' + num + "}", 5)
    assert same(number, _reference_number(num)), num


def _events(infos: list[dict[str, Any]], compact: bool) -> list[TelemetryEvent]:
    out = []
    for i, info in enumerate(infos):
        payload = {"episode_index": i // 7, "step_index": i % 7, "action": i % 4, "observation": i % 16,
                   "reward": 0.0, "terminated": False, "truncated": False, "info": info, "render_payload": None}
        made = compact_step(payload) if compact else None
        out.append(TelemetryEvent(Topic.STEP_APPENDED, "run", "a", i + 1, f"2026-03-04T05:06:07.{i:06d}+00:00",
                                  made if made is not None else payload))
    return out


def _warm_up(n: int = SPLIT_AFTER_TEXTS) -> list[dict[str, Any]]:
    return [{"loss": 1.0 / (i + 2)} for i in range(n)]


def _check_file(path: Path, infos: list[dict[str, Any]], split_some: bool = True) -> None:
    """Every read gives each info as written: records, the v3 shaped rows' texts, the view's values."""
    texts = [_text(i) for i in infos]
    with TelemetrySQLiteStore(path) as store:
        episodes = sorted({i // 7 for i in range(len(infos))})
        records = [s for ep in episodes for s in store.steps_for_episode("run", "a", ep)]
        assert [s.seq_id for s in records] == list(range(1, len(infos) + 1))
        for record, info in zip(records, infos):
            assert same(dict(record.payload)["info"], info)
        after = [e for e in store.events_after("run", "a", 0, 10_000) if e.topic is Topic.STEP_APPENDED]
        assert all(same(e.payload["info"], info) for e, info in zip(after, infos)) and len(after) == len(infos)
        sql = (f"SELECT {RAW_COLUMNS} FROM stream_keys k JOIN step_rows s ON s.stream = k.stream "
               "WHERE k.run_id = 'run' AND k.agent_id = 'a' ORDER BY s.seq_id")
        rows = store.read_transaction(lambda conn: read_steps(conn, sql, ()))
        at = [c.strip() for c in STEP_READ_COLUMNS.split(",")].index("info_json")
        assert [r[at] for r in rows] == texts  # the very text the writer was handed
        assert all(same(decode_step(r).payload["info"], info) for r, info in zip(rows, infos))
    conn = sqlite3.connect(str(path))
    try:
        view = [r[0] for r in conn.execute(
            "SELECT info_json FROM steps WHERE run_id = 'run' AND agent_id = 'a' ORDER BY seq_id")]
        split = conn.execute("SELECT count(*) FROM step_rows s JOIN stream_keys k ON k.stream = s.stream "
                             f"WHERE k.run_id = 'run' AND {SPLIT_SQL}").fetchone()[0]
    finally:
        conn.close()
    assert all(same(load_json(v), info) for v, info in zip(view, infos)) and len(view) == len(infos)
    assert (split > 0) is split_some


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(INFOS, min_size=1, max_size=12), st.booleans())
def test_random_infos_read_back_exactly_through_every_read(infos: list[dict[str, Any]], compact: bool) -> None:
    infos = _warm_up() + [i for i in infos if _text(i) is not None] + [{"loss": 0.5, "n": n} for n in (
        2**63 - 1, -(2**63), 0, 1, -1, 5e-324, -1e-310, 1e17, 0.1, -0.0, 1e308)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.sqlite"
        with TelemetrySQLiteStore(path) as store:
            result = store.write_batch(_events(infos, compact))
            assert not result.rejected and not result.lost
        _check_file(path, infos)


def _stored(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("SELECT typeof(info_json), typeof(extra_json), count(*) FROM step_rows s "
                            "JOIN stream_keys k ON k.stream = s.stream WHERE k.run_id = 'run' "
                            "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def test_a_constant_info_stays_one_interned_text_and_a_changing_one_is_split(tmp_path: Path) -> None:
    constant = [{"prob": 1.0}] * 50
    changing = [{"epsilon": 0.9, "loss": 1.0 / (1 + i)} for i in range(50)]
    for name, infos, expected in (
            ("constant", constant, [("integer", "null", 50)]),
            ("changing", changing, [("integer", "null", SPLIT_AFTER_TEXTS), ("real", "blob", 50 - SPLIT_AFTER_TEXTS)])):
        path = tmp_path / f"{name}.sqlite"
        with TelemetrySQLiteStore(path) as store:
            store.write_batch(_events(infos[:30], True))
        with TelemetrySQLiteStore(path) as store:  # a new writer reads the stream's values and goes on alike
            store.write_batch(_events(infos, True)[30:])
        assert _stored(path) == expected
        _check_file(path, infos, name == "changing")


def test_infos_that_begin_with_the_last_template_but_end_otherwise_read_back_exactly(tmp_path: Path) -> None:
    """After a split, the next text starts with its template but holds more keys, a list, a string,
    another form of number: each is split by its own last value or stays whole, and reads back."""
    infos = _warm_up() + [{"loss": 0.5}, {"loss": 0.25}, {"loss": 1, "n": 2}, {"loss": [1]}, {"loss": "0.5"},
                          {"loss": 3}, {"loss": -0.0}, {"loss": 2**63}, {"loss": 1e308}, {"loss": 0.125},
                          {"loss": {"a": 1}}, {"loss": 7}]
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        assert not store.write_batch(_events(infos, True)).rejected
    _check_file(path, infos)


def test_a_stream_whose_values_are_full_keeps_new_infos_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gym_gui.telemetry import step_writer
    monkeypatch.setattr(step_writer, "MAX_VALUES_PER_STREAM", SPLIT_AFTER_TEXTS + 2)
    infos = _warm_up() + [{"epsilon": e, "loss": 0.25} for e in (0.5, 0.25, 0.125, 0.0625)]
    path = tmp_path / "t.sqlite"
    with TelemetrySQLiteStore(path) as store:
        store.write_batch(_events(infos, True))
    # 16 whole texts, the "null" render payload, one template; the next templates do not fit: inline
    assert _stored(path) == [("integer", "null", SPLIT_AFTER_TEXTS), ("real", "blob", 1), ("text", "null", 3)]
    _check_file(path, infos)


def test_the_view_gives_seventeen_digits_that_parse_to_the_same_float() -> None:
    conn = sqlite3.connect(":memory:")
    values = [0.95, 1 / 3, 0.0001999600079984003, 5e-324, 2.2250738585072014e-308, 9.999e17, 1.0, 1e16, -7.5e-200]
    texts = [conn.execute("SELECT printf('%!.17g', ?)", (v,)).fetchone()[0] for v in values]
    assert all(same(json.loads(t), v) for t, v in zip(texts, values))


def test_every_float_below_the_limit_reads_back_from_the_views_text() -> None:
    """SQLite's printf (3.40 on this machine misformats some doubles above 2**300) gives, below
    ``MAX_FLOAT``, a text of the same float64: random bit patterns, every binary exponent."""
    import random
    rng = random.Random(13)
    values = []
    while len(values) < 20_000:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(x) and abs(x) < MAX_FLOAT and not (x == 0.0 and math.copysign(1, x) < 0):
            values.append(x)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (n)")
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    texts = [t for (t,) in conn.execute("SELECT printf('%!.17g', n) FROM t ORDER BY rowid")]
    assert [float(t) for t in texts] == values


def test_a_template_ref_reads_back_alike_in_python_and_in_sql() -> None:
    from gym_gui.telemetry.info_numbers import blob_ref, ref_blob, ref_sql
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x TEXT)")  # extra_json's affinity: a BLOB stays a BLOB
    refs = [0, 1, 9, 15, 16, 127, 128, 255, 256, 4095, 4096, 65535, 65536, 2**24 - 1]
    conn.executemany("INSERT INTO t VALUES (?)", [(ref_blob(r),) for r in refs])
    rows = conn.execute(f"SELECT typeof(x), length(x), {ref_sql('x')} FROM t ORDER BY rowid").fetchall()
    assert [r[2] for r in rows] == refs == [blob_ref(ref_blob(r)) for r in refs]
    assert {r[0] for r in rows} == {"blob"} and [r[1] for r in rows] == [len(ref_blob(r)) for r in refs]
    assert [len(ref_blob(r)) for r in (255, 256, 65535, 65536)] == [1, 2, 2, 3]
