#!/bin/sh
# debian13.sh: the root file system of the Debian 13 ("trixie") test hosts,
# laid out as a Proxmox VE 9 host's network stack is: ifupdown2 (Debian's
# build; Proxmox's own is not in Debian's archive), not classic
# ifupdown. Built with mmdebstrap from Debian's archive, kept under
# target/hosts/ and built again only when the package list below changes.
#
#   debian13.sh root         print the root's path, building it first if needed
#   debian13.sh run CMD...   run CMD chrooted in a throwaway copy-on-write
#                            layer over the root (own mount namespace, fresh
#                            /proc, /dev, /run and /tmp), as root; the layer
#                            and everything CMD wrote are gone when it ends.
#                            $SITEC_CHROOT_BIND names a directory of this
#                            machine to bind read-only at /mnt inside, and
#                            $SITEC_CHROOT_AGENT a file (sitec's host
#                            agent) to bind read-only at /activate.
#
# Test hosts (boot.sh) and the validators (tests/validators.rs) use it.
# Needs root, mmdebstrap and the Debian archive.
set -eu

# What a Debian 13 / Proxmox VE 9 host of the tests runs: the daemons the
# example sites configure and the tools sitec's host agent calls.
PACKAGES="systemd systemd-sysv dbus libpam-systemd openssh-server openssh-client
iproute2 ifupdown2 nftables nginx libnginx-mod-stream curl wireguard-tools
wireguard-go samba samba-vfs-modules samba-common-bin chrony rsync age kmod
iputils-ping procps python3 util-linux ca-certificates"

die() {
	echo "debian13.sh: $*" >&2
	exit 1
}

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2086 # one word per package
key=$(printf '%s\n' $PACKAGES | sort | sha256sum | cut -c1-16)
root=$top/target/hosts/debian13-$key

build() {
	[ ! -f "$root/.complete" ] || return 0
	command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (sh scripts/test installs it)"
	mkdir -p "$top/target/hosts"
	# Roots of older package lists go; a half-built one is built again.
	for old in "$top"/target/hosts/debian13-*; do
		[ "$old" = "$root" ] || [ ! -d "$old" ] || rm -rf "$old"
	done
	rm -rf "$root.tmp"
	# shellcheck disable=SC2086 # one word per package
	include=$(printf '%s\n' $PACKAGES | sort | paste -sd, -)
	mmdebstrap --quiet --variant=minbase --include="$include" trixie "$root.tmp" \
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main" ||
		die "mmdebstrap could not build the Debian 13 root"
	# apt's lists and caches are of no use to a host that installs nothing.
	rm -rf "$root.tmp/var/lib/apt/lists"/* "$root.tmp/var/cache/apt"/*
	touch "$root.tmp/.complete"
	mv "$root.tmp" "$root"
}

# A throwaway layer over the root: CMD runs chrooted in it, in a mount
# namespace of its own, so nothing it mounts or writes outlives it.
run() {
	build
	layer=$(mktemp -d /tmp/sitec-debian13.XXXXXX)
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare -m --propagation private sh -eu -c '
		root=$1 layer=$2
		shift 2
		mkdir -p "$layer/upper" "$layer/work" "$layer/merged"
		mount -t overlay overlay -o "lowerdir=$root,upperdir=$layer/upper,workdir=$layer/work" "$layer/merged"
		m=$layer/merged
		mount -t proc proc "$m/proc"
		mount --rbind /sys "$m/sys"
		mount --rbind /dev "$m/dev"
		mount -t tmpfs tmpfs "$m/run"
		# What the boot makes there (ifupdown2 locks in /run/network).
		mkdir -p "$m/run/network" "$m/run/lock"
		mount -t tmpfs tmpfs "$m/tmp"
		if [ -n "${SITEC_CHROOT_BIND:-}" ]; then
			mount --bind "$SITEC_CHROOT_BIND" "$m/mnt"
			mount -o remount,bind,ro "$m/mnt"
		fi
		if [ -n "${SITEC_CHROOT_AGENT:-}" ]; then
			: >"$m/activate"
			mount --bind "$SITEC_CHROOT_AGENT" "$m/activate"
			mount -o remount,bind,ro "$m/activate"
		fi
		exec chroot "$m" "$@"
	' sh "$root" "$layer" "$@" || rc=$?
	rm -rf "$layer"
	return "${rc:-0}"
}

case ${1:-} in
	root)
		build
		echo "$root"
		;;
	run)
		shift
		run "$@"
		;;
	*) die "usage: debian13.sh root|run CMD..." ;;
esac
