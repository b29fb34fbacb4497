#!/usr/bin/env bash
# Installs the Debian 12 packages brise needs to build, test and fuzz, if any is missing.
# Idempotent: does nothing (not even apt-get update) when everything is present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev libxsimd-dev xtl-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev
  libsentencepiece-dev                       # tests only: differential tokenizer oracle
  clang libclang-rt-14-dev libomp-14-dev     # sanitizer and fuzz builds
)
missing=()
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
