"""A small worker for the bridge tests: canonical JSONL lines, fast, steerable from the command line.

    python redis_fake_worker.py --run-id R --agent-id A --steps N [--wait-for FILE --more-steps M]...
                                [--bad-lines B] [--exit-code K | --hang]

Writes run_started, N steps (one episode record per 10 steps), B lines that are not JSON, then for each ``--wait-for FILE``
(in order) waits until FILE exists and writes the matching ``--more-steps`` M more, then
run_completed (or exits with K without it, or blocks for ever).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import datetime, timezone


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--agent-id", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--wait-for", action="append", default=[])
    parser.add_argument("--more-steps", type=int, action="append", default=[])
    parser.add_argument("--exit-code", type=int, default=None)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--bad-lines", type=int, default=0)
    args = parser.parse_args()
    seq = 0
    episode, step = 0, 0
    out = sys.stdout

    def emit(kind: str, **fields: object) -> None:
        nonlocal seq
        seq += 1
        record = {"v": 1, "kind": kind, "run_id": args.run_id, "agent_id": args.agent_id, "seq": seq,
                  "ts": datetime.now(timezone.utc).isoformat(), **fields}
        out.write(json.dumps(record, separators=(",", ":")) + "\n")

    def steps(n: int) -> None:
        nonlocal episode, step
        for _ in range(n):
            emit("step", episode_index=episode, step_index=step, action=step % 4, observation=step,
                 reward=0.0, terminated=False, truncated=False, info={}, render_payload=None)
            step += 1
            if step == 10:
                emit("episode", episode_index=episode, total_reward=0.0, length=10, terminated=True,
                     truncated=False, outcome="success", metadata={})
                episode, step = episode + 1, 0

    emit("run_started", env_id="Fake-v0", config={"steps": args.steps})
    steps(args.steps)
    out.write("{not json\n" * args.bad_lines)
    out.flush()
    if args.hang:
        threading.Event().wait()
    if len(args.more_steps) != len(args.wait_for):
        parser.error("give one --more-steps per --wait-for")
    pause = threading.Event()
    for path, more in zip(args.wait_for, args.more_steps):
        while not os.path.exists(path):
            pause.wait(0.01)
        steps(more)
        out.flush()
    if args.exit_code is not None:
        print("the fake worker fails on purpose", file=sys.stderr)
        return args.exit_code
    emit("run_completed", outcome="completed", summary={"episodes": episode})
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
