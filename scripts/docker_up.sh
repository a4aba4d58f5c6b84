#!/usr/bin/env bash
# Make the Docker daemon reachable for the sandboxes (called by install.sh; safe to run again).
#   - already reachable: nothing to do;
#   - else, as root with apt: install docker.io and debootstrap, start
#     `dockerd --bridge=none --iptables=false` (no bridge network: containers get loopback only, so
#     nothing ever reaches a private-range address), and wait until it answers;
#   - else: say that the sandbox tests need Docker, and exit 0 (the rest of agentgym works without it).
set -uo pipefail
if docker info >/dev/null 2>&1; then
  echo "docker: daemon reachable"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "docker: not reachable and cannot be installed here (needs root and apt); sandbox tests need it" >&2
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  echo "docker: installing docker.io and debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq docker.io debootstrap >/dev/null || {
    echo "docker: apt-get install docker.io debootstrap failed" >&2; exit 1; }
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker: starting dockerd --bridge=none --iptables=false"
  nohup dockerd --bridge=none --iptables=false >/var/log/agentgym-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "docker: daemon up"; exit 0; fi
  sleep 0.5
done
echo "docker: dockerd did not come up; see /var/log/agentgym-dockerd.log" >&2
exit 1
