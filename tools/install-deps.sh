#!/usr/bin/env bash
# Installs the Debian 12 packages brise needs to build, test and fuzz, if any is missing.
# Idempotent: does nothing (not even apt-get update) when everything is present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev libxsimd-dev xtl-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev
  libsentencepiece-dev                       # tests only: differential tokenizer oracle
  unicode-data                               # tests only: Tekken's Unicode tables regenerated and checked
  clang libclang-rt-14-dev libomp-14-dev     # sanitizer and fuzz builds
  libcpp-httplib-dev                         # brise serve's HTTP server
  chromium chromium-driver                   # tests only: the chat page in a headless browser
  gnuplot-nox                                # optional at run time: brise bench --sweep --plot draws with it
)
missing=()
# Node.js (tests only: OpenAI's JavaScript SDK against brise serve): Debian's nodejs and npm, unless
# a node with npm is already there (e.g. NodeSource's, whose nodejs package holds npm).
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Node tests' packages, exactly as package-lock.json pins them (npm's registry), once.
node_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ ! -d "$node_tests/node_modules" ] || [ "$node_tests/package-lock.json" -nt "$node_tests/node_modules" ]; then
  echo "installing the Node test packages (npm ci in tests/node)" >&2
  (cd "$node_tests" && npm ci --no-audit --no-fund --loglevel=error) && touch "$node_tests/node_modules"
fi
