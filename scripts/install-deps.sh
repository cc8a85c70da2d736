#!/usr/bin/env bash
# Installs the Debian packages the build and tests need. Idempotent: installs only what is
# missing, so a second run costs a dpkg query.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 clang libclang-rt-14-dev clang-format git
  linux-libc-dev libcli11-dev nlohmann-json3-dev
  # the cluster and kernel links: corosync's CPG, votequorum and cmap; libdevmapper; journald;
  # systemd-analyze (the unit test of logd/clogd.service.in)
  corosync libcpg-dev libvotequorum-dev libcmap-dev libquorum-dev libcorosync-common-dev
  libdevmapper-dev libsystemd-dev systemd iproute2 procps psmisc
  # the VM harness (tests/vm): QEMU TCG guests, busybox initramfs, kbuild for kmod/, fio in the guest
  qemu-system-x86 busybox-static fio linux-headers-amd64 cpio xz-utils zstd kmod jq
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $(id -u) -ne 0 ]]; then echo "install-deps: need root to install ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
