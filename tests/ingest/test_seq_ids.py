"""seq_ids: the one rule for the seq_ids a producer makes, and shown_ids: ids made safe to print."""

from __future__ import annotations

from typing import Any

import pytest

from gym_gui.ingest.seq_ids import MAX_SEQ_ID, next_seq_id, seq_floor_of
from gym_gui.ingest.shown_ids import shown_id, shown_text


@pytest.mark.parametrize(("last", "proposed", "expected"), [
    (0, None, 1), (0, 5, 5), (5, 5, 6), (5, 3, 6), (5, -7, 6), (0, 0, 1),
    (0, MAX_SEQ_ID, MAX_SEQ_ID), (0, MAX_SEQ_ID + 1, 1), (0, 2**200, 1),
    (MAX_SEQ_ID - 1, None, MAX_SEQ_ID), (MAX_SEQ_ID - 1, MAX_SEQ_ID + 5, MAX_SEQ_ID),
    (MAX_SEQ_ID, None, None), (MAX_SEQ_ID, MAX_SEQ_ID, None), (MAX_SEQ_ID, 2**64, None),
    (3, 7.0, 4), (3, True, 4), (3, "9", 4),  # only a real int is the source's own number
])
def test_next_seq_id(last: int, proposed: Any, expected: int | None) -> None:
    assert next_seq_id(last, proposed) == expected


@pytest.mark.parametrize(("stored", "floor"), [
    (None, 0), (-5, 0), (0, 0), (41, 41), (MAX_SEQ_ID, MAX_SEQ_ID), (MAX_SEQ_ID + 9, MAX_SEQ_ID), ("12", 0),
])
def test_seq_floor_of(stored: Any, floor: int) -> None:
    assert seq_floor_of(stored) == floor


@pytest.mark.parametrize(("value", "shown"), [
    ("run-1", "run-1"), ("é-ok", "é-ok"), ("a\x1b[2Jb", "a\\x1b[2Jb"), ("\x07", "\\x07"),
    ("lone\udcff", "lone\\udcff"), ("line\nbreak", "line\\x0abreak"), ("\u2028", "\\u2028"), (7, "7"),
])
def test_shown_id_escapes_what_is_not_printable(value: Any, shown: str) -> None:
    assert shown_id(value) == shown


def test_shown_id_cuts_long_ids_and_says_how_much() -> None:
    assert shown_id("x" * 1000, 10) == "x" * 10 + "...(+990 chars)"
    assert shown_id("\x00" * 100, 4) == "\\x00" * 4 + "...(+96 chars)"


def test_shown_text_keeps_lines_and_escapes_the_rest() -> None:
    assert shown_text("Traceback:\n\tline \x1b[31m") == "Traceback:\n    line \\x1b[31m"
    assert shown_text("y" * 50, 20).endswith("...(+30 chars)")
