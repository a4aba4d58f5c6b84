#!/usr/bin/env bash
# Make headless Chromium available for the report-rendering test (called by install.sh; safe to run again).
#   - a chromium binary on PATH: nothing to do;
#   - else, as root with apt: install Debian's `chromium` package (Debian 12 ships it; no other source);
#   - else: say that tests/test_report_render.py needs it, and exit 0 (the rest of agentgym works without it).
set -uo pipefail
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "chromium: $("$name" --version 2>/dev/null | head -1)"
    exit 0
  fi
done
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not found and cannot be installed here (needs root and apt); the report-render test needs it" >&2
  exit 0
fi
echo "chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq chromium >/dev/null || {
  echo "chromium: apt-get install chromium failed" >&2; exit 1; }
echo "chromium: $(chromium --version 2>/dev/null | head -1)"
