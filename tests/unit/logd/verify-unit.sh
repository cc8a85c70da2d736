#!/bin/sh
# verify-unit.sh UNIT: systemd-analyze verify, failing on any complaint about UNIT itself
# (systemd-analyze exits 0 on some, e.g. an unknown Type=, and only warns).
command -v systemd-analyze >/dev/null || {
  echo "verify-unit: needs systemd-analyze (package systemd)"
  exit 1
}
unit=$1
out=$(systemd-analyze verify "$unit" 2>&1)
rc=$?
[ -n "$out" ] && echo "$out"
[ $rc -eq 0 ] || exit 1
! echo "$out" | grep -q "$(basename "$unit")"
