"""Issue 10, items 10 and 11: reports instead of crashes.

Hostile ids are printed escaped and never crash the summary; a database deleted mid-run is noticed
within a progress interval and counted; a database that cannot be opened is one line and exit 2;
the ingest child's death is not blamed on the worker; a worker that reports ``failed`` itself gets
its stderr tail stored.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from gym_gui.ingest.proxy import TelemetryProxy
from gym_gui.telemetry.events import Topic
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.telemetry.sqlite_store import TelemetrySQLiteStore

RUN = [sys.executable, "-m", "gym_gui.run"]


def _ids_worker(script: Callable[[str], list[str]], run_id_json: str) -> list[str]:
    return script(f"""
        import sys
        rid = {run_id_json!r}
        sys.stdout.write('{{"v": 1, "kind": "run_started", "run_id": ' + rid + ', "agent_id": "a"}}\\n')
        sys.stdout.write('{{"type": "step", "run_id": ' + rid + ', "agent_id": "a", "episode": 0, "step": 0, "reward": 1.0}}\\n')
        sys.stdout.write('{{"v": 1, "kind": "run_completed", "run_id": ' + rid + ', "agent_id": "a", "outcome": "completed"}}\\n')
    """)


def test_a_lone_surrogate_run_id_does_not_crash_the_summary(tmp_path: Path, script: Callable[[str], list[str]],
                                                             cli: Callable[..., Any]) -> None:
    worker = _ids_worker(script, '"lone-\\udc80-id"')
    result = cli("--db", str(tmp_path / "s.sqlite"), "--", *worker)
    assert "Traceback" not in result.stderr, result.stderr
    assert "summary:" in result.stdout
    assert "wrong_type 3" in result.stdout  # the three records with that id, counted
    assert result.returncode != 0, result.stdout  # its lines are lost: never a clean exit
    # a run id given on the command line that is not UTF-8 (argv bytes): a clear usage error
    bad = cli("--db", str(tmp_path / "s.sqlite"), "--run-id", "lone-\udcff-cli", "--", *worker)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert "lone-\\udcff-cli is not valid UTF-8" in bad.stderr


def test_control_characters_in_ids_are_escaped_in_the_output(tmp_path: Path, script: Callable[[str], list[str]],
                                                             cli: Callable[..., Any]) -> None:
    worker = _ids_worker(script, '"evil\\u001b[2J\\u0007id"')
    result = cli("--db", str(tmp_path / "c.sqlite"), "--", *worker)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "evil\\x1b[2J\\x07id" in result.stdout


def test_a_database_deleted_mid_run_is_reported_promptly_and_counted(
        tmp_path: Path, script: Callable[[str], list[str]], child_environ: Callable[[], dict[str, str]]) -> None:
    worker = script("""
        import json, time
        for i in range(100000):
            print(json.dumps({"type": "step", "run_id": "gone", "episode": 0, "step": i, "reward": 0.0}), flush=True)
            time.sleep(0.002)  # paced in real time: the worker is still writing when the file goes (under test)
    """)
    db = tmp_path / "gone.sqlite"
    proc = subprocess.Popen(RUN + ["--db", str(db), "--run-id", "gone", "--progress-interval-s", "0.1", "--", *worker],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_environ())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("episodes") and " persisted        0 " not in line:
                break
        for path in tmp_path.glob("gone.sqlite*"):
            path.unlink()
        deleted_at = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took_s = time.monotonic() - deleted_at
    finally:
        proc.kill()
    assert took_s < 15  # the worker alone would write for several minutes
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err, err
    assert "was deleted" in out and "events are lost" in out, out
    assert not db.exists()  # the summary did not create an empty database in its place


@pytest.mark.parametrize("where", ["proc", "parent-is-a-file", "read-only-file", "not-a-telemetry-db"])
def test_a_database_that_cannot_be_opened_is_one_clear_line(where: str, tmp_path: Path, cli: Callable[..., Any]) -> None:
    if where == "proc":
        db = Path("/proc/gym-gui-test.sqlite")
        if not Path("/proc").is_dir():
            pytest.skip("no /proc")
    elif where == "not-a-telemetry-db":
        db = tmp_path / "foreign.sqlite"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (x)")
    elif where == "parent-is-a-file":
        (tmp_path / "afile").write_text("x")
        db = tmp_path / "afile" / "x.sqlite"
    else:
        db = tmp_path / "ro.sqlite"
        TelemetrySQLiteStore(db).close()
        db.chmod(0o444)
        tmp_path.chmod(0o555)
        if os.access(db, os.W_OK):  # root writes read-only files: make it immutable instead
            tmp_path.chmod(0o755)
            if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
                pytest.skip("this user can write read-only files and cannot make one immutable")
    try:
        result = cli("--db", str(db), "--", sys.executable, "-c", "pass")
    finally:
        tmp_path.chmod(0o755)
        if where == "read-only-file":
            subprocess.run(["chattr", "-i", str(db)], capture_output=True)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "cannot open the database" in result.stdout


def test_the_ingest_childs_death_is_not_blamed_on_the_worker(script: Callable[[str], list[str]]) -> None:
    bus = RunBus()
    done = bus.subscribe(Topic.RUN_COMPLETED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="ing")
    proxy.spawn(script("""
        import json, time
        print(json.dumps({"type": "step", "run_id": "ing", "episode": 0, "step": 0, "reward": 0.0}), flush=True)
        time.sleep(60)  # a worker alive (real time) while its ingest child dies: it must not be blamed
    """))
    assert proxy._ingest_proc is not None
    os.kill(proxy._ingest_proc.pid, signal.SIGKILL)
    assert proxy.wait(15)
    (completion,) = done.drain()
    reason = completion.payload["summary"]["reason"]
    assert completion.payload["outcome"] == "failed"
    assert "ingest process" in reason and "SIGKILL" in reason, reason
    assert not reason.startswith("the worker exited"), reason
    assert proxy.stop(5)


def test_a_worker_that_reports_failed_itself_gets_its_stderr_tail(script: Callable[[str], list[str]]) -> None:
    bus = RunBus()
    done = bus.subscribe(Topic.RUN_COMPLETED, "t", maxlen=None)
    proxy = TelemetryProxy(bus, run_id="self-failed")
    proxy.spawn(script("""
        import json, sys, traceback
        try:
            raise RuntimeError("CUDA out of memory")
        except RuntimeError:
            print(json.dumps({"event": "run_failed", "run_id": "self-failed", "payload": {"error": "oom"}}), flush=True)
            traceback.print_exc()
            sys.exit(1)
    """))
    assert proxy.wait(15)
    (completion,) = done.drain()
    assert completion.payload["outcome"] == "failed"
    assert "CUDA out of memory" in (completion.payload["stderr_tail"] or "")
    assert proxy.stop(5)
