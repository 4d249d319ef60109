#!/usr/bin/env bash
# Installs everything HALI needs on a fresh Debian 12 machine, as root.
# Idempotent: packages already present are skipped quickly.
# Usage: bash Deploy/install-deps.sh [--python]   (--python also installs the interop test's PyPI packages)
set -euo pipefail

APT_PACKAGES=(
  pkg-config
  libopenslide-dev      # slide access (OpenSlide 3.4)
  libprotobuf-c-dev     # protocol runtime
  protobuf-c-compiler   # protoc-c: regenerates the committed C code (CI checks it is current)
  protobuf-compiler     # protoc: generates the Python interop client's module
  libopenblas-dev       # CBLAS for the CNN and the heads
  libzstd-dev           # compressed slide index columns
  libsqlite3-dev        # the label store
  libpng-dev            # PNG in and out (datasets, pictures, iTerm2 images)
  libturbojpeg0-dev     # JPEG pixels on the wire (libjpeg-turbo, which OpenSlide already uses)
  openssl               # the TLS tests make a self-signed certificate (and admins make theirs with it)
)

if [[ "${1:-}" == "--python" ]]; then
  # The terminal-graphics tests: a real xterm (sixel) under a virtual X server, a screen capture, and libsixel's
  # decoder to check HALI's sixel against.
  APT_PACKAGES+=(xvfb xterm imagemagick libsixel-bin fonts-dejavu-core)
  # `hali batch` on a live one-node Slurm cluster (Deploy/slurm/local-cluster.sh).
  APT_PACKAGES+=(slurm-wlm munge)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Python client (protocol interop) needs Google's protobuf runtime; the demo drives the terminal client with
# pexpect when there is no terminal; the tests run under pytest and check exported outlines with shapely.
need=()
python3 -c 'import google.protobuf' 2>/dev/null || need+=('protobuf>=4.21,<7')
python3 -c 'import pexpect' 2>/dev/null || need+=('pexpect')
if [[ "${1:-}" == "--python" ]]; then
  python3 -c 'import pytest' 2>/dev/null || need+=('pytest')
  python3 -c 'import shapely' 2>/dev/null || need+=('shapely')
  # Pixels: decoding the terminal pictures and reading OpenSlide's own pixels to compare them with.
  python3 -c 'import numpy' 2>/dev/null || need+=('numpy')
  python3 -c 'import PIL' 2>/dev/null || need+=('pillow')
  python3 -c 'import openslide' 2>/dev/null || need+=('openslide-python')
  # The Kubernetes Job that `hali batch` writes, checked against the Kubernetes schemas.
  python3 -c 'import kubernetes_validate' 2>/dev/null || need+=('kubernetes-validate')
  python3 -c 'import yaml' 2>/dev/null || need+=('pyyaml')
fi
if ((${#need[@]})); then
  echo "install-deps: pip install ${need[*]}"
  python3 -m pip install -q --disable-pip-version-check "${need[@]}"
fi
echo "install-deps: ok"
