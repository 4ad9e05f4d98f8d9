"""tools/bench (tools/bench_all.py): the table, the JSON file and --compare, on synthetic figures and
on one real benchmark run with reduced sizes (tools/bench_bus.py --quick, a few seconds)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(TOOLS))
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench_all = _load("bench_all")
bench_figures = _load("bench_figures")
figure, target = bench_figures.figure, bench_figures.target


def _result(name: str, status: str, figures: list[dict[str, Any]] | None = None, note: str = "") -> Any:
    return bench_all.BenchResult(bench_all.BenchSpec(name, f"tools/{name}.py", what=f"{name} things"), status,
                                 figures=figures or [], note=note)


def _row(table: str, needle: str) -> list[str]:
    line = next(line for line in table.splitlines() if needle in line)
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_table_has_a_row_per_figure_with_ratio_target_and_verdict_and_names_missing_and_failed_benches() -> None:
    figs = [
        figure("x.rate", "rate", 90_000, "steps/s", "higher", baseline=100_000, baseline_label="raw",
               target=target(">=", 0.7, on="ratio", source="t1")),
        figure("x.bytes", "bytes", 228.0, "bytes/step", "lower", baseline=37.5, baseline_label="minimal",
               target=target("<=", 60, source="t4")),
        figure("x.plain", "plain", 3.5, "ms", "lower"),
        figure("x.none", "not measured", None, "ms", "lower", target=target("<=", 1), note="no display"),
    ]
    table = bench_all.render_table([_result("x", "ok", figs), _result("ghost", "missing", note="tools/ghost.py does not exist yet"),
                                    _result("broken", "error", note="exit 1, no BENCH_JSON line: Traceback")])
    assert _row(table, "x.rate") == ["rate `x.rate`", "90,000", "steps/s", "100,000 raw", "0.9", "ratio >= 0.7 (t1)", "pass"]
    assert _row(table, "x.bytes")[1:] == ["228", "bytes/step", "37.5 minimal", "6.08", "value <= 60 (t4)", "FAIL"]
    assert _row(table, "x.plain")[3:] == ["-", "-", "", "-"]
    assert _row(table, "x.none")[-1] == "n/a: no display"
    assert _row(table, "ghost")[-1] == "MISSING: tools/ghost.py does not exist yet"
    assert _row(table, "broken")[-1].startswith("ERROR: exit 1")


def test_compare_flags_only_changes_worse_than_15_percent_in_each_figures_direction() -> None:
    def fig(name: str, value: float, better: str, base: float | None = None) -> dict[str, Any]:
        return figure(name, name, value, "u", better, baseline=base)

    old = [fig("up.drop20", 100, "higher"), fig("up.drop10", 100, "higher"), fig("up.rise", 100, "higher"),
           fig("down.rise20", 100, "lower"), fig("down.rise10", 100, "lower"), fig("down.drop", 100, "lower"),
           fig("ratio.same", 100, "higher", 200), fig("ratio.worse", 100, "higher", 100), fig("zero", 0, "lower"),
           fig("gone", 1, "lower")]
    new = [fig("up.drop20", 80, "higher"), fig("up.drop10", 90, "higher"), fig("up.rise", 150, "higher"),
           fig("down.rise20", 120, "lower"), fig("down.rise10", 110, "lower"), fig("down.drop", 50, "lower"),
           fig("ratio.same", 70, "higher", 140),  # the machine was 30% slower for both sides: not a regression
           fig("ratio.worse", 100, "higher", 150),  # same value, but the in-run baseline got 50% faster
           fig("zero", 3, "lower"), fig("fresh", 1, "lower")]
    entries = {e["name"]: e for e in bench_all.compare(old, new)}
    assert {n for n, e in entries.items() if e["regressed"]} == {"up.drop20", "down.rise20", "ratio.worse", "zero"}
    assert entries["ratio.same"]["compared"] == "ratio" and entries["up.drop10"]["compared"] == "value"
    assert entries["up.rise"]["change"] == pytest.approx(0.5)
    assert entries["down.drop"]["change"] == pytest.approx(0.5)
    assert entries["down.rise20"]["change"] == pytest.approx(-0.2)
    assert "fresh" not in entries and "gone" not in entries
    assert "REGRESSED" in bench_all.render_compare(list(entries.values()), "old.json")


def test_parse_bench_json_takes_the_last_line_and_refuses_a_malformed_one() -> None:
    good = 'text\nBENCH_JSON {"v":1,"bench":"a","figures":[]}\nBENCH_JSON {"v":1,"bench":"b","figures":[]}\n'
    assert bench_figures.parse_bench_json(good)["bench"] == "b"
    assert bench_figures.parse_bench_json("no figures here\n") is None
    with pytest.raises(ValueError):
        bench_figures.parse_bench_json('BENCH_JSON {"v":1,"figures":[{"name":"x"}]}')


def test_a_real_quick_run_writes_json_that_compare_reads_and_a_regression_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ghost = bench_all.BenchSpec("ghost", "tools/bench_ghost_never_written.py", what="a bench not written yet")
    # The real bus benchmark, smaller still than --quick so the test stays fast on a busy machine.
    benches = tuple(dataclasses.replace(b, quick_args=("--events", "5000", "--rounds", "1")) if b.name == "bus" else b
                    for b in bench_all.BENCHES)
    monkeypatch.setattr(bench_all, "BENCHES", (*benches, ghost))
    first = tmp_path / "first.json"
    assert bench_all.main(["--quick", "--only", "bus,ghost", "--json", str(first), "--log-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "`bus.publish_ns.4`" in out and "MISSING: tools/bench_ghost_never_written.py" in out
    doc = json.loads(first.read_text())
    assert doc["quick"] is True and [b["status"] for b in doc["benches"]] == ["ok", "missing"]
    machine = doc["machine_loop_ns"]
    assert set(machine) == {"start", "end"} and all(0 < v < 100_000 for v in machine.values())
    assert f"reference loop {machine['start']:.0f} ns at the start, {machine['end']:.0f} ns at the end" in out
    bus, missing = doc["benches"]
    assert bus["machine_loop_ns"]["before"] == machine["start"] and bus["machine_loop_ns"]["after"] == machine["end"]
    assert missing["machine_loop_ns"] is None  # it did not run
    assert (f"reference loop (ns) before each benchmark: bus {machine['start']:.0f}, end {machine['end']:.0f}"
            in out)
    by_name = {f["name"]: f for f in doc["figures"]}
    four = by_name["bus.publish_ns.4"]
    assert four["unit"] == "ns/publish" and four["better"] == "lower" and four["baseline"] > 0 and four["value"] > 0
    assert four["target"] == {"on": "ratio", "op": "<=", "limit": 0.2, "source": "docs/performance.md"}

    # The same figures claimed a thousand times better in an older run (far beyond this machine's
    # noise between two runs): this run's are regressions.
    older = dict(doc, figures=[dict(f, value=f["value"] / 1000) for f in doc["figures"]])
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(older))
    assert bench_all.main(["--quick", "--only", "bus", "--compare", str(old_path), "--log-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED by more than 15%: bus.publish_ns.1, bus.publish_ns.4, bus.publish_ns.16" in out


def test_compare_says_when_the_two_runs_machines_differ() -> None:
    same = bench_all.machine_difference({"start": 100.0, "end": 110.0}, {"start": 112.0, "end": 104.0})
    assert same == ""
    slower = bench_all.machine_difference({"start": 60.0, "end": 62.0}, {"start": 100.0, "end": 104.0})
    assert "reference loop at 102 ns, the older run's at 61 (1.67x)" in slower and "compare the ratios" in slower
    assert "speed is unknown" in bench_all.machine_difference(None, {"start": 1.0, "end": 1.0})
    assert "speed is unknown" in bench_all.machine_difference({"start": 1.0}, {"start": 1.0, "end": 1.0})


def test_compare_says_which_benchmarks_ran_on_a_machine_of_another_speed() -> None:
    def ran(name: str, before: float, after: float) -> bench_all.BenchResult:
        spec = bench_all.BenchSpec(name, f"tools/{name}.py")
        return bench_all.BenchResult(spec, "ok", seconds=1.0, machine_loop_ns={"before": before, "after": after})

    old = [{"name": "bus", "machine_loop_ns": {"before": 130.0, "after": 140.0}},
           {"name": "disk", "machine_loop_ns": {"before": 130.0, "after": 130.0}},
           {"name": "plots", "machine_loop_ns": None},  # a run before the readings per benchmark
           {"name": "sink", "machine_loop_ns": {"before": 100.0, "after": 100.0}}]
    new = [ran("bus", 140.0, 146.0), ran("disk", 130.0, 290.0), ran("plots", 300.0, 300.0), ran("e2e", 99.0, 99.0),
           bench_all.BenchResult(bench_all.BenchSpec("sink", "tools/sink.py"), "missing")]
    notes = bench_all.bench_machine_differences(old, new)
    assert notes == ["note: disk's machine ran the reference loop at 210 ns, the older run's at 130 (1.62x): "
                     "absolute figures differ by machine, compare the ratios"]
    assert bench_all.machine_by_bench_text(new) == (
        "reference loop (ns) before each benchmark: bus 140, disk 130, plots 300, e2e 99, end 99")
    assert bench_all.machine_by_bench_text([new[-1]]) == ""
