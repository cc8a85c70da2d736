#!/usr/bin/env bash
# Builds (or finds in the cache) the test-VM image: the Debian kernel as an uncompressed PVH
# vmlinux plus initramfs layers made from this machine's Debian packages and our build:
#   kernel  the kernel's modules we need (dm, virtio, 9p), with their dependencies
#   base    busybox, dmsetup, corosync (+ tools, knet plugins, libgcc_s), /init, helpers
#   clogd   clogd, clogctl and dm-log-cluster.ko (rebuilt whenever our build changes)
#   fio     fio and its libraries (only in initrd-fio; needs ~512 MB of guest memory)
# Each layer is a cpio archive cached under its input hash (the content of every file put
# in it, this script and the guest files); the kernel concatenates the archives at boot.
#
#   build-image.sh --build-dir DIR [--ko FILE] [--cache DIR]
# prints the image directory (vmlinux, initrd, initrd-fio, manifest) on stdout.
# DIR is a CMake build directory holding logd/clogd and logd/clogctl; the module defaults to
# DIR/kmod/src/dm-log-cluster.ko. Cache: CLOG_VM_CACHE or <repo>/.cache/vm.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir="" ko="" cache="${CLOG_VM_CACHE:-$repo/.cache/vm}"
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --ko) ko=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    *) echo "build-image: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() { echo "build-image: $*" >&2; exit 1; }
[[ -n $build_dir ]] || die "--build-dir is required"
build_dir=$(cd "$build_dir" && pwd)
ko=${ko:-$build_dir/kmod/src/dm-log-cluster.ko}
for f in "$build_dir/logd/clogd" "$build_dir/logd/clogctl"; do
  [[ -x $f ]] || die "$f is missing (build the clogd and clogctl targets)"
done
[[ -f $ko ]] || die "$ko is missing (build the kmod target; it needs linux-headers-amd64)"
for tool in qemu-system-x86_64 cpio depmod dpkg-deb xz busybox corosync dmsetup fio; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed (scripts/install-deps.sh installs it)"
done

release=$("$here/kernel-release.sh") || exit 1
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# One builder at a time per cache (CTest may start several VM tests at once).
exec 9>"$cache/.lock"
flock 9

# sha256 of the script's own inputs: this file and the guest files it copies.
script_hash=$(cat "$0" "$here/guest-init.sh" "$here/guest-lib.sh" | sha256sum | cut -c1-64)

# The shared libraries a binary loads (ldd), resolved to real files.
libs_of() {
  ldd "$@" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | sort -u
}

# Hash of a set of host files plus extra words. Files of installed packages (under /usr,
# /bin, /sbin, /lib) count by path, size and mtime (a package upgrade changes them); our own
# build outputs by content (a rebuild that changes nothing keeps the cached layer).
hash_files() {
  local extra=$1 f; shift
  {
    echo "$extra"
    for f in "$@"; do
      case $f in
        /usr/* | /bin/* | /sbin/* | /lib/* | /lib64/*) stat -L -c '%n %s %Y' "$f" ;;
        *) echo "$f $(sha256sum <"$f" | cut -c1-64)" ;;
      esac
    done
  } | sha256sum | cut -c1-16
}

# Where a host file goes in the guest: the guest has a merged /usr (/bin, /sbin, /lib and
# /lib64 are symlinks into /usr, made by the kernel layer, which unpacks first), so every
# layer puts files under /usr and the dynamic loader finds them on either path.
guest_path() {
  case $1 in
    /bin/* | /sbin/* | /lib/* | /lib64/*) echo "/usr$1" ;;
    *) echo "$1" ;;
  esac
}

# Copies host files into a staging root (symlinks followed, so a library's soname link
# becomes a plain file).
stage_files() {
  local root=$1 f g; shift
  for f in "$@"; do
    g=$(guest_path "$f")
    mkdir -p "$root$(dirname "$g")"
    cp -L "$f" "$root$g"
  done
}

# cpio of a staging root (newc, owned by root).
pack() {
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2.tmp"
  mv "$2.tmp" "$2"
}

layers=$cache/layers
mkdir -p "$layers"
work=$(mktemp -d "$cache/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- kernel: vmlinux and the modules we need ---------------------------------------------
kernel_modules=(dm-mod dm-log dm-region-hash dm-mirror dm-log-userspace dm-flakey
  virtio_pci virtio_blk virtio_net 9pnet_virtio 9p)
kernel_pkg_version=$(dpkg-query -W -f='${Version}' "linux-headers-$release")
kernel_key=$(echo "$release $kernel_pkg_version ${kernel_modules[*]} $script_hash" |
  sha256sum | cut -c1-16)
kernel_dir=$cache/kernel-$release-$kernel_key
if [[ ! -f $kernel_dir/done ]]; then
  echo "build-image: kernel $release ($kernel_pkg_version)" >&2
  deb_dir=$cache/debs
  mkdir -p "$deb_dir"
  pkg=linux-image-$release-unsigned
  deb=$deb_dir/${pkg}_${kernel_pkg_version}_amd64.deb
  if [[ ! -f $deb ]]; then
    (cd "$work" && apt-get download -qq "$pkg=$kernel_pkg_version" 2>&1 | { grep -v unsandboxed || true; } >&2 && [[ -f ${pkg}_${kernel_pkg_version}_amd64.deb ]]) ||
      die "cannot download $pkg=$kernel_pkg_version (the Debian kernel matching linux-headers-$release)"
    mv "$work"/${pkg}_*.deb "$deb"
  fi
  rm -rf "$kernel_dir"
  mkdir -p "$kernel_dir/root"
  dpkg-deb -x "$deb" "$work/pkg"
  # vmlinuz -> vmlinux: the payload (offset and length from the x86 boot header) is xz.
  vmlinuz=$work/pkg/boot/vmlinuz-$release
  u() { od -A n -t "u$2" -j "$1" -N "$2" "$vmlinuz" | tr -d ' '; }
  setup_sects=$(u 0x1f1 1) payload_offset=$(u 0x248 4) payload_length=$(u 0x24c 4)
  start=$(((setup_sects + 1) * 512 + payload_offset))
  dd if="$vmlinuz" iflag=skip_bytes,count_bytes skip="$start" count="$payload_length" bs=1M \
    status=none | xz -dc --single-stream >"$kernel_dir/vmlinux" ||
    die "cannot decompress the payload of $vmlinuz (not xz?)"
  [[ $(head -c4 "$kernel_dir/vmlinux" | od -A n -t x1 | tr -d ' ') == 7f454c46 ]] ||
    die "the payload of $vmlinuz is not an ELF vmlinux"
  # Dependency closure of the modules we need, from the package's own module tree.
  depmod -b "$work/pkg" "$release"
  mods=$work/pkg/lib/modules/$release
  for m in "${kernel_modules[@]}"; do
    modprobe -d "$work/pkg" -S "$release" --show-depends "$m" ||
      die "kernel $release has no module $m"
  done | awk '$1 == "insmod" { print $2 }' | sort -u >"$work/mods"
  root=$kernel_dir/root
  mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib64" "$root/usr/lib/modules/$release"
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
  while read -r path; do
    rel=${path#"$work/pkg"}
    g=$(guest_path "$rel")
    mkdir -p "$root$(dirname "$g")"
    cp "$path" "$root$g"
  done <"$work/mods"
  cp "$mods"/modules.order "$mods"/modules.builtin* "$root/usr/lib/modules/$release/"
  depmod -b "$kernel_dir/root" "$release"
  pack "$kernel_dir/root" "$kernel_dir/modules.cpio"
  touch "$kernel_dir/done"
  rm -rf "$work/pkg"
fi

# ---- base: busybox, dmsetup, corosync, init ----------------------------------------------
corosync_bins=(/usr/sbin/corosync /usr/sbin/corosync-cfgtool /usr/sbin/corosync-quorumtool
  /usr/sbin/corosync-cmapctl)
base_bins=(/bin/busybox /usr/sbin/dmsetup "${corosync_bins[@]}")
knet_plugins=(/usr/lib/x86_64-linux-gnu/kronosnet/*.so)
# libgcc_s: glibc dlopens it for pthread_cancel (corosync); ldd does not list it.
libgcc=$(ls /lib/x86_64-linux-gnu/libgcc_s.so.1)
mapfile -t base_libs < <(libs_of "${base_bins[@]:1}" "${knet_plugins[@]}"; echo "$libgcc")
base_files=("${base_bins[@]}" "${knet_plugins[@]}" "${base_libs[@]}")
base_key=$(hash_files "$script_hash" "${base_files[@]}")
base_cpio=$layers/base-$base_key.cpio
if [[ ! -f $base_cpio ]]; then
  echo "build-image: base layer" >&2
  root=$work/base
  stage_files "$root" "${base_files[@]}"
  # The dynamic loader under its canonical name, and the usual directories.
  mkdir -p "$root"/{proc,sys,dev,run,tmp,host,etc/corosync,root} "$root"/usr/{bin,sbin}
  mkdir -p "$root"/var/{lib/corosync,log/cluster}
  ln -s ../run "$root/var/run"  # corosync's lock file is /var/run/corosync.pid
  [[ -e $root/usr/lib64/ld-linux-x86-64.so.2 ]] || stage_files "$root" /lib64/ld-linux-x86-64.so.2
  cp "$here/guest-init.sh" "$root/init"
  cp "$here/guest-lib.sh" "$root/etc/clogvm-lib.sh"
  chmod 755 "$root/init"
  echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
  echo "root:x:0:" >"$root/etc/group"
  printf 'hosts: files\n' >"$root/etc/nsswitch.conf"
  pack "$root" "$base_cpio"
fi

# ---- clogd: our binaries and the module --------------------------------------------------
clogd_bins=("$build_dir/logd/clogd" "$build_dir/logd/clogctl")
mapfile -t clogd_libs < <(libs_of "${clogd_bins[@]}")
clogd_key=$(hash_files "$kernel_key $base_key" "${clogd_bins[@]}" "$ko" "${clogd_libs[@]}")
clogd_cpio=$layers/clogd-$clogd_key.cpio
if [[ ! -f $clogd_cpio ]]; then
  echo "build-image: clogd layer" >&2
  root=$work/clogd
  stage_files "$root" "${clogd_libs[@]}"
  moddir=usr/lib/modules/$release
  mkdir -p "$root/usr/sbin" "$root/$moddir/extra"
  # Without debug info (a tenth of the size: less to unpack, less guest memory).
  for f in "${clogd_bins[@]}"; do strip --strip-debug -o "$root/usr/sbin/$(basename "$f")" "$f"; done
  cp "$ko" "$root/$moddir/extra/"
  # modules.dep covering the kernel layer's modules and ours (this copy wins at unpack).
  mkdir -p "$work/depmod"
  cp -a "$kernel_dir/root/." "$work/depmod/"
  mkdir -p "$work/depmod/$moddir/extra"
  cp "$ko" "$work/depmod/$moddir/extra/"
  depmod -b "$work/depmod" "$release"
  cp "$work/depmod/$moddir"/modules.* "$root/$moddir/"
  pack "$root" "$clogd_cpio"
fi

# ---- fio ---------------------------------------------------------------------------------
mapfile -t fio_libs < <(comm -23 <(libs_of /usr/bin/fio) <(printf '%s\n' "${base_libs[@]}" | sort -u))
fio_key=$(hash_files "$script_hash" /usr/bin/fio "${fio_libs[@]}")
fio_cpio=$layers/fio-$fio_key.cpio
if [[ ! -f $fio_cpio ]]; then
  echo "build-image: fio layer" >&2
  stage_files "$work/fio" /usr/bin/fio "${fio_libs[@]}"
  pack "$work/fio" "$fio_cpio"
fi

# ---- the image: vmlinux + concatenated layers --------------------------------------------
image_key=$(echo "$kernel_key $base_key $clogd_key $fio_key" | sha256sum | cut -c1-16)
image=$cache/image-$image_key
if [[ ! -f $image/manifest ]]; then
  rm -rf "$image"
  mkdir -p "$image.tmp"
  ln -f "$kernel_dir/vmlinux" "$image.tmp/vmlinux" 2>/dev/null || cp "$kernel_dir/vmlinux" "$image.tmp/"
  cat "$kernel_dir/modules.cpio" "$base_cpio" "$clogd_cpio" >"$image.tmp/initrd"
  cat "$image.tmp/initrd" "$fio_cpio" >"$image.tmp/initrd-fio"
  {
    echo "kernel $release $kernel_pkg_version"
    echo "layers kernel-$kernel_key base-$base_key clogd-$clogd_key fio-$fio_key"
    echo "build_dir $build_dir"
    echo "ko $ko"
  } >"$image.tmp/manifest"
  mv "$image.tmp" "$image"
fi
touch "$image/manifest" "$kernel_dir/done" "$base_cpio" "$clogd_cpio" "$fio_cpio"

# Drop images and layers nobody used for a day (other build dirs may still use newer ones).
for d in "$cache"/image-* "$cache"/kernel-*; do
  stamp=$d/manifest
  [[ -f $stamp ]] || stamp=$d/done
  [[ -f $stamp ]] || stamp=$d
  if [[ -e $stamp && -n $(find "$stamp" -maxdepth 0 -mtime +1) ]]; then rm -rf "$d"; fi
done
find "$layers" -name '*.cpio' -mtime +1 -delete 2>/dev/null || true
echo "$image"
