"""Folding run lifecycle events into one ``runs`` row (Qt-free, pure functions).

Rules (documented in docs/schema.md):
- the first event of a run creates the row with status ``running``;
- RUN_STARTED sets env_id and config (when given) and the earliest start time; it never reopens a
  finished run;
- RUN_HEARTBEAT keeps only the latest heartbeat time and payload;
- RUN_COMPLETED sets status from ``outcome`` (``completed``/``failed``/``cancelled``; a missing or
  unknown outcome counts as ``completed``, the raw text is kept in ``outcome``). When several agents
  of one run complete, the most severe status wins: failed > cancelled > completed.

Stale runs (``stream_owners.mark_interrupted``): a ``running``/``pending`` run whose stream owners
are all gone (a killed GUI or CLI) is ``interrupted``, completed at the time of its last stored
event. A later RUN_COMPLETED still finishes it, and a process that claims one of its streams again
reopens it (``stream_owners.reopen_interrupted``).
"""

from __future__ import annotations

from typing import Any, Mapping

from gym_gui.telemetry.events import TelemetryEvent, Topic
from gym_gui.telemetry.sqlite_rows import dump_json, load_json, loaded_agent
from gym_gui.telemetry.sqlite_records import RunRecord
from gym_gui.telemetry.tables import RUNS

__all__ = ["FOLDED_TOPICS", "INTERRUPTED", "RUN_COLUMNS", "apply_run_event", "decode_run", "new_run"]

#: Status (and outcome) of a run whose writer ended without completing it.
INTERRUPTED = "interrupted"

#: The columns of a ``runs`` row, in order (``tables.RUNS``).
RUN_COLUMNS: tuple[str, ...] = RUNS.insert_names()
#: The lifecycle topics ``apply_run_event`` folds (a declared lifecycle topic must be one of them).
FOLDED_TOPICS = frozenset((Topic.RUN_STARTED, Topic.RUN_HEARTBEAT, Topic.RUN_COMPLETED))
_SEVERITY = {"running": 0, INTERRUPTED: 0, "completed": 1, "cancelled": 2, "failed": 3}


def new_run(run_id: str, ts_iso: str) -> dict[str, Any]:
    """A fresh ``runs`` row (as a column dict) first seen at ``ts_iso``."""
    row = dict.fromkeys(RUN_COLUMNS)
    row.update(run_id=run_id, status="running", created_at=ts_iso, updated_at=ts_iso)
    return row


def _later(a: str | None, b: str) -> str:
    return b if a is None or b > a else a


def apply_run_event(row: dict[str, Any], evt: TelemetryEvent) -> None:
    """Fold one RUN_STARTED / RUN_HEARTBEAT / RUN_COMPLETED event into ``row``. Raises on unencodable values."""
    p = evt.payload
    ts = evt.ts_iso
    if evt.topic is Topic.RUN_STARTED:
        env_id = p.get("env_id")
        if type(env_id) is str:
            row["env_id"] = env_id
        if "config" in p:
            row["config_json"] = dump_json(p["config"])
        if row["started_at"] is None or ts < row["started_at"]:
            row["started_at"] = ts
    elif evt.topic is Topic.RUN_HEARTBEAT:
        if row["last_heartbeat_at"] is None or ts >= row["last_heartbeat_at"]:
            row["last_heartbeat_json"] = dump_json(p)
            row["last_heartbeat_at"] = ts
    elif evt.topic is Topic.RUN_COMPLETED:
        outcome = p.get("outcome")
        status = outcome if outcome in ("completed", "failed", "cancelled") else "completed"
        if _SEVERITY[status] >= _SEVERITY.get(row["status"], 0):
            # A later completion (``Mark as failed`` after the worker's own) states what it knows
            # and keeps the rest of an earlier one's: its exit code, signal, stderr and summary keys.
            earlier = row if _SEVERITY.get(row["status"], 0) > 0 else dict.fromkeys(row)
            exit_code = p.get("exit_code")
            signal = p.get("signal")
            stderr_tail = p.get("stderr_tail")
            row.update(
                status=status,
                outcome=outcome if type(outcome) is str else None,
                exit_code=exit_code if type(exit_code) is int else earlier["exit_code"],
                signal=signal if type(signal) is str else earlier["signal"],
                stderr_tail=stderr_tail if type(stderr_tail) is str else earlier["stderr_tail"],
                summary_json=_merged_summary(earlier["summary_json"], p),
            )
        row["completed_at"] = _later(row["completed_at"], ts)
    else:
        raise ValueError(f"not a run lifecycle event: {evt.topic.name}")
    row["updated_at"] = _later(row["updated_at"], ts)


def _merged_summary(earlier_json: str | None, payload: Mapping[str, Any]) -> str | None:
    """The ``summary_json`` after a completion: its summary's keys over an earlier completion's."""
    if "summary" not in payload:
        return earlier_json
    summary = payload["summary"]
    if earlier_json is not None and isinstance(summary, dict):
        try:
            earlier = load_json(earlier_json)
        except ValueError:
            earlier = None
        if isinstance(earlier, dict):
            summary = {**earlier, **summary}
    return dump_json(summary)


def _json_or_none(text: str | None) -> Any:
    return None if text is None else load_json(text)


def decode_run(row: tuple[Any, ...], agent_ids: tuple[str, ...]) -> RunRecord:
    """RunRecord from a row selected in ``RUN_COLUMNS`` order plus the run's stored agent ids."""
    r = dict(zip(RUN_COLUMNS, row))
    return RunRecord(
        run_id=r["run_id"],
        status=r["status"],
        outcome=r["outcome"],
        env_id=r["env_id"],
        config=_json_or_none(r["config_json"]),
        created_at=r["created_at"],
        started_at=r["started_at"],
        completed_at=r["completed_at"],
        last_heartbeat_at=r["last_heartbeat_at"],
        last_heartbeat=_json_or_none(r["last_heartbeat_json"]),
        exit_code=r["exit_code"],
        signal=r["signal"],
        stderr_tail=r["stderr_tail"],
        summary=_json_or_none(r["summary_json"]),
        updated_at=r["updated_at"],
        agent_ids=tuple(loaded_agent(a) for a in agent_ids),
    )

