"""``python -m gym_gui.export``: export a stored run headless (docs/export.md).

    python -m gym_gui.export RUN_ID --db runs/demo.sqlite --format csv --out exports/
    python -m gym_gui.export RUN_ID --db runs/demo.sqlite --format jsonl
    python -m gym_gui.export RUN_ID --db runs/demo.sqlite gif --episode 3 [--agent-id agent-1] [--out exports/]

Exit codes: 0 written, 2 bad arguments or nothing to export (unknown run, episode without frames,
unreadable file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from gym_gui.export.tables import FORMATS, ExportError, export_tables, open_readonly

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line. Any thread."""
    parser = argparse.ArgumentParser(
        prog="python -m gym_gui.export",
        description="Export a stored run: its episodes and steps as CSV or JSONL, or one episode's frames as a GIF.",
        epilog="examples:\n  python -m gym_gui.export RUN_ID --db runs/demo.sqlite --format csv --out exports/\n"
               "  python -m gym_gui.export RUN_ID --db runs/demo.sqlite gif --episode 3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("what", nargs="?", choices=("tables", "gif"), default="tables",
                        help="tables (default): episodes and steps files; gif: one episode's frames")
    parser.add_argument("--db", type=Path, required=True, help="the telemetry SQLite file (opened read-only)")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="format of the tables (default csv)")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder (default: the current one)")
    parser.add_argument("--episode", type=int, default=None, help="gif: the episode index")
    parser.add_argument("--agent-id", default=None, help="gif: the agent (default: the episode's first)")
    parser.add_argument("--frame-ms", type=int, default=100, help="gif: milliseconds per frame (default 100)")
    parser.add_argument("--cell-px", type=int, default=48, help="gif: pixels per grid cell (default 48)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; prints what was written. Main thread; blocks until the files are written."""
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)  # RUN_ID --db FILE gif --episode N
    if args.what == "gif" and args.episode is None:
        parser.error("gif needs --episode N")
    try:
        conn = open_readonly(args.db)
    except ExportError as exc:
        print(f"gym_gui.export: {exc}", file=sys.stderr)
        return 2
    try:
        if args.what == "gif":
            from gym_gui.export.gif import export_episode_gif

            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in args.run_id)
            out = args.out / f"{safe}-episode{args.episode}.gif"
            result = export_episode_gif(conn, args.run_id, args.episode, out, agent_id=args.agent_id,
                                        frame_ms=args.frame_ms, cell_px=args.cell_px)
            print(f"{result['path']}: {result['frames']} frames of episode {args.episode} "
                  f"(agent {result['agent_id'] or '(none)'}, {result['bad_frames']} not drawable)")
        else:
            result = export_tables(conn, args.run_id, args.out, args.format)
            print(f"{result['episodes']}: {result['episode_rows']} episodes")
            print(f"{result['steps']}: {result['step_rows']} steps")
    except ExportError as exc:
        print(f"gym_gui.export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gym_gui.export: cannot write: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
