#!/bin/sh
# Checks a WireGuard configuration that no bundle carries (an external
# member's, out/<site>/_external/): `wg-quick strip`, then `wg setconf` on a
# throwaway interface in a throwaway network namespace (the kernel's
# WireGuard, else wireguard-go with a private /run/wireguard). Endpoints
# are addresses or resolve to a documentation address inside it, so it
# sends nothing anywhere. Needs root.
set -eu

conf=$1
work=$(mktemp -d)
ns=sitec-wg-$$
cleanup() {
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
wg-quick strip "$conf" >"$work/wg.conf"
cp /etc/hosts "$work/hosts"
sed -n 's/^Endpoint = \(.*\):[0-9]*$/\1/p' "$work/wg.conf" | grep -v '^[0-9.]*$' | grep -v '^\[' |
	sed 's/^/192.0.2.1 /' >>"$work/hosts" || true
ip netns add "$ns"
# shellcheck disable=SC2016 # the inner script expands its own arguments
ip netns exec "$ns" unshare -m sh -c '
	set -eu
	mkdir -p /run/wireguard
	mount -t tmpfs none /run/wireguard
	mount --bind "$2/hosts" /etc/hosts
	ip link add wgcheck type wireguard 2>/dev/null ||
		WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go wgcheck >/dev/null 2>&1
	wg setconf wgcheck "$1"
	ip link del wgcheck' sh "$work/wg.conf" "$work"
