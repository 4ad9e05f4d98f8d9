"""The RUN_COMPLETED a proxy makes for a run its worker never completed, and how exits are described (Qt-free, pure)."""

from __future__ import annotations

import logging
import signal
from typing import Any

from gym_gui.ingest.shown_ids import shown_id

__all__ = ["describe_exit", "signal_name", "synthetic_completion", "wants_stderr_tail"]

_log = logging.getLogger("gym_gui.ingest.proxy")


def synthetic_completion(run_id: str, exit_code: int | None, ingest_failure: str | None, *, stopped: bool,
                         stderr_tail: str, name: str, reader_failed: bool = False) -> dict[str, Any]:
    """The RUN_COMPLETED payload for a run the worker never completed (and log why). Any thread; pure but for the log.

    ``ingest_failure`` names how the ingest child ended when it, not the worker, broke the stream;
    ``stopped``: the proxy's ``stop()`` ended the worker (outcome ``cancelled``); ``reader_failed``:
    the proxy's own reader failed (a bug, logged) and stopped the worker.
    """
    summary: dict[str, Any] = {"synthesized_by": "proxy"}
    if ingest_failure is not None:
        reason = (f"the ingest process reading the worker's output ended with {ingest_failure}; "
                  f"the worker was stopped ({describe_exit(exit_code) if exit_code is not None else 'not reaped'})")
        summary["ingest_exit"] = ingest_failure
    elif reader_failed:
        reason = ("the proxy failed reading the worker's output (see its log); the worker was stopped "
                  f"({describe_exit(exit_code) if exit_code is not None else 'not reaped'})")
    elif exit_code is None:
        reason = "the stream ended without run_completed"
    else:
        reason = f"the worker exited ({describe_exit(exit_code)}) without run_completed"
    summary["reason"] = reason
    _log.warning("%s: run %s %s", name, shown_id(run_id), reason)
    return {
        "outcome": "cancelled" if stopped and ingest_failure is None and not reader_failed else "failed",
        "exit_code": exit_code if exit_code is not None and exit_code >= 0 else None,
        "signal": signal_name(-exit_code) if exit_code is not None and exit_code < 0 else None,
        "stderr_tail": stderr_tail,
        "summary": summary,
    }


def wants_stderr_tail(payload: Any) -> bool:
    """A worker's own completion that says it failed and brings no stderr tail of its own."""
    try:
        return payload.get("outcome") == "failed" and not payload.get("stderr_tail")
    except Exception:
        return False


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_exit(exit_code: int) -> str:
    return f"signal {signal_name(-exit_code)}" if exit_code < 0 else f"exit code {exit_code}"
