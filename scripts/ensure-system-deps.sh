#!/usr/bin/env bash
# Installs the system tools Keystate's tests and benchmarks need, only when missing:
#   redis-server  (the Redis backend's tests start a real server)
#   redis-cli     (Debian package redis-tools; the Redis Cluster tests create their cluster with it)
#   h2load        (Debian package nghttp2-client; loads the gRPC ingress in benchmarks)
#   chromium      (Debian package chromium at /usr/bin/chromium; the console's browser tests
#                  drive it with playwright-core, which never downloads a browser of its own)
#   clang-14, wasm-ld-14, the wasm32 compiler-rt and wasi-libc (Debian packages clang-14,
#                  lld-14, libclang-rt-14-dev-wasm32, wasi-libc; `keystate build` compiles C
#                  modules with them: guest-sdk-c, modules/shopping-cart-c)
# Idempotent and silent when everything is present. Installing needs root (apt-get).
set -euo pipefail

declare -A package_for=([redis-server]=redis-server [redis-cli]=redis-tools [h2load]=nghttp2-client)
missing=()
for tool in redis-server redis-cli h2load; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package_for[$tool]}")
done
# The browser tests launch this exact path (test/helpers/chromium.ts), so check the path, not PATH.
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The C toolchain (host/build/build-c.ts): the compiler and linker by name, the wasm32
# builtins and wasi-libc by the files clang links.
c_toolchain_missing() {
  command -v clang-14 >/dev/null 2>&1 || echo clang-14
  command -v wasm-ld-14 >/dev/null 2>&1 || echo lld-14
  compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a" >/dev/null || echo libclang-rt-14-dev-wasm32
  [ -f /usr/lib/wasm32-wasi/libc.a ] || echo wasi-libc
}
mapfile -t c_missing < <(c_toolchain_missing)
missing+=("${c_missing[@]}")
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
mapfile -t c_missing < <(c_toolchain_missing)
[ ${#c_missing[@]} -eq 0 ] || { echo "ensure-system-deps: ${c_missing[*]} still missing after install" >&2; exit 1; }
