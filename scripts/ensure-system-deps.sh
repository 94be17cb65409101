#!/usr/bin/env bash
# Installs the system tools Keystate's tests and benchmarks need, only when missing:
#   redis-server  (the Redis backend's tests start a real server)
#   redis-cli     (Debian package redis-tools; the Redis Cluster tests create their cluster with it)
#   h2load        (Debian package nghttp2-client; loads the gRPC ingress in benchmarks)
#   chromium      (Debian package chromium at /usr/bin/chromium; the console's browser tests
#                  drive it with playwright-core, which never downloads a browser of its own)
# Idempotent and silent when everything is present. Installing needs root (apt-get).
set -euo pipefail

declare -A package_for=([redis-server]=redis-server [redis-cli]=redis-tools [h2load]=nghttp2-client)
missing=()
for tool in redis-server redis-cli h2load; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_for[$tool]}")
done
# The browser tests launch this exact path (test/helpers/chromium.ts), so check the path, not PATH.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${EUID}" -ne 0 ]; then
  echo "ensure-system-deps: missing ${missing[*]}; run as root or install them yourself:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-system-deps: missing ${missing[*]} and apt-get is not available; install them with your package manager" >&2
  exit 1
fi

echo "ensure-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in redis-server redis-cli h2load; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ensure-system-deps: $tool is still missing after install" >&2; exit 1; }
done
[ -x /usr/bin/chromium ] || { echo "ensure-system-deps: /usr/bin/chromium is still missing after install" >&2; exit 1; }
