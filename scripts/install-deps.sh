#!/bin/sh
# Installs what intl needs to build and test on Debian 12 (as root), skipping packages already present.
# The CUDA toolkit is not a Debian package: where /usr/local/cuda exists, the CUDA backend is built too.
set -eu
packages="cmake ninja-build g++ git libopenblas-openmp-dev libcli11-dev nlohmann-json3-dev doctest-dev libstb-dev libdnnl-dev ccache"
missing=""
for p in $packages; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi
