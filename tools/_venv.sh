# Shared by tools/test and tools/demo: create .venv with python3 and install the package with
# its test extra when setup.cfg has changed since the last install. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.installed-setup-cfg"
if [ ! -f "$STAMP" ] || ! cmp -s "$ROOT/setup.cfg" "$STAMP"; then
  "$PY" -m pip install --disable-pip-version-check -q --upgrade pip >&2
  "$PY" -m pip install --disable-pip-version-check -q -e "$ROOT[test]" >&2
  cp "$ROOT/setup.cfg" "$STAMP"
fi
# The package's bytecode, as a regular (non-editable) install has it. Under PYTHONDONTWRITEBYTECODE=1
# (set in many containers) an editable install never writes it, so every process would compile
# every module it imports at each start: the ingest child, a bridge, a collector, each test's
# subprocess (about 80 ms more from a bridge's start to its first entry in Redis). Quick when current.
"$PY" -m compileall -q -j 0 "$ROOT/gym_gui" >/dev/null
