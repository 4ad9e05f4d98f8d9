"""The machine-readable output of the benchmarks in tools/ (the ``BENCH_JSON`` line). Qt-free, stdlib only.

A benchmark keeps printing its own text, and prints as its LAST stdout line::

    BENCH_JSON {"v": 1, "bench": "bus", "figures": [{...}, ...]}

one line, compact JSON, nothing after it. ``tools/bench_all.py`` (``tools/bench``) runs the
benchmarks, reads that line and prints every figure in one table. A figure is an object with:

- ``name`` (str, unique, stable across runs, dotted with the bench first: ``"bus.runbus_ns.4"``);
  ``--compare`` matches old and new figures by it;
- ``label`` (str): what a person reads in the table;
- ``value`` (number, or null when it could not be measured: say why in ``note``);
- ``unit`` (str): ``"steps/s"``, ``"us/step"``, ``"ms"``, ``"bytes/step"``, ``"ns/publish"``, ...;
- ``better``: ``"higher"`` or ``"lower"`` (which way is an improvement; ``--compare`` uses it);
- ``baseline`` (number or null) and ``baseline_label`` (str): the figure's baseline measured IN
  THE SAME RUN, in the same unit (the table shows value/baseline as the ratio);
- ``target`` (object or null): ``{"on": "value" | "ratio", "op": "<=" | ">=", "limit": number,
  "source": "issue 13 #5"}``; pass/fail is judged on the value or on value/baseline;
- ``note`` (str, optional): anything the reader needs (``"rows verified"``, why it is null, ...).

Use :func:`figure` and :func:`print_bench_json` (``sys.path`` has tools/ when a script in tools/
runs), or print the same line by hand: the format is the contract, not this module.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Mapping, Sequence, TextIO

__all__ = ["BENCH_JSON_PREFIX", "FORMAT_VERSION", "figure", "parse_bench_json", "print_bench_json", "target"]

BENCH_JSON_PREFIX = "BENCH_JSON "
FORMAT_VERSION = 1
_BETTER = ("higher", "lower")
_OPS = ("<=", ">=")


def target(op: str, limit: float, *, on: str = "value", source: str = "") -> dict[str, Any]:
    """A target: ``value op limit`` (``on="value"``) or ``value / baseline op limit`` (``on="ratio"``)."""
    if op not in _OPS or on not in ("value", "ratio"):
        raise ValueError(f"bad target {op!r} on {on!r}")
    return {"on": on, "op": op, "limit": float(limit), "source": source}


def figure(name: str, label: str, value: float | None, unit: str, better: str, *,
           baseline: float | None = None, baseline_label: str = "", target: Mapping[str, Any] | None = None,
           note: str = "") -> dict[str, Any]:
    """One figure of the ``BENCH_JSON`` line (see the module docstring). Any thread; pure."""
    if better not in _BETTER:
        raise ValueError(f"better must be one of {_BETTER}, got {better!r}")
    out: dict[str, Any] = {"name": name, "label": label, "value": _number(value), "unit": unit, "better": better,
                           "baseline": _number(baseline), "baseline_label": baseline_label,
                           "target": dict(target) if target is not None else None}
    if note:
        out["note"] = note
    return out


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no NaN: a figure that is not a number is null


def print_bench_json(bench: str, figures: Sequence[Mapping[str, Any]], out: TextIO | None = None) -> None:
    """Print the ``BENCH_JSON`` line for ``figures`` (call it last). Caller's thread; writes to stdout."""
    stream = out if out is not None else sys.stdout
    stream.write(BENCH_JSON_PREFIX + json.dumps({"v": FORMAT_VERSION, "bench": bench, "figures": list(figures)},
                                                separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()


def parse_bench_json(stdout: str) -> dict[str, Any] | None:
    """The object of the last ``BENCH_JSON`` line of ``stdout``, or None if there is none. Pure.

    Raises ValueError when the line is there but is not a valid object of this format.
    """
    for line in reversed(stdout.splitlines()):
        if line.startswith(BENCH_JSON_PREFIX):
            obj = json.loads(line[len(BENCH_JSON_PREFIX):])
            if not isinstance(obj, dict) or not isinstance(obj.get("figures"), list):
                raise ValueError("BENCH_JSON line is not an object with a figures list")
            for fig in obj["figures"]:
                if not isinstance(fig, dict) or not isinstance(fig.get("name"), str) or fig.get("better") not in _BETTER:
                    raise ValueError(f"BENCH_JSON figure without a name or direction: {fig!r}")
            return obj
    return None
