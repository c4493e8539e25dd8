#!/usr/bin/env bash
# Refresh constraints.txt: install the newest releases that pyproject.toml's ranges allow into a fresh
# venv (no cache, no constraints), run the whole test suite, and only if it passes write pip freeze.
# Usage: bash scripts/refresh-constraints.sh   (about 15 minutes on 2 cores; review the diff, then commit)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
export PIP_NO_CACHE_DIR=1
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
CMAKE_ARGS="-DGGML_NATIVE=OFF" "$venv/bin/pip" install -q -e ".[test]"
header="$(grep '^#' constraints.txt)"
frozen="$("$venv/bin/pip" freeze --exclude-editable | sed 's/+cpu$//' | sort -f)"
# The version test compares against constraints.txt: check the new set against itself first.
printf '%s\n%s\n' "$header" "$frozen" > constraints.txt.new
cp constraints.txt constraints.txt.old
mv constraints.txt.new constraints.txt
if "$venv/bin/python" -m pytest -q; then
    rm constraints.txt.old
    git diff --stat constraints.txt
else
    mv constraints.txt.old constraints.txt
    echo "tests failed with the newest releases; constraints.txt left unchanged" >&2
    exit 1
fi
