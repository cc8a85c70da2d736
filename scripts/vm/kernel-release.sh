#!/usr/bin/env bash
# Prints the kernel release that kmod/ is built for and that the test VMs boot: the one the
# installed linux-headers-amd64 metapackage depends on (e.g. 6.1.0-56-amd64), so the module
# and the guest kernel always match. CLOG_KERNEL_RELEASE overrides it. Exits 1 with a message
# naming what is missing when the headers are not installed.
set -euo pipefail
if [[ -n "${CLOG_KERNEL_RELEASE:-}" ]]; then
  rel=$CLOG_KERNEL_RELEASE
else
  if ! deps=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null) || [[ -z $deps ]]; then
    echo "kernel-release: the Debian package linux-headers-amd64 is not installed" \
      "(scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
  rel=$(grep -o 'linux-headers-[^ ,]*-amd64' <<<"$deps" | head -n1)
  rel=${rel#linux-headers-}
fi
if [[ ! -f /lib/modules/$rel/build/Makefile ]]; then
  echo "kernel-release: no kernel headers at /lib/modules/$rel/build" \
    "(install linux-headers-$rel)" >&2
  exit 1
fi
echo "$rel"
