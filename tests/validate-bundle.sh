#!/bin/sh
# Runs every artifact of one bundle through its daemon's own parser, as
# DESIGN.md lists them, and prints "validated <file> <tool>" for each.
# Needs root (network and mount namespaces). Exits non-zero on the first
# file a validator rejects, or when a validator is missing.
set -eu

bundle=$(CDPATH='' cd -- "$1" && pwd)
work=$(mktemp -d)
ns="sitec-validate-$$"
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT

need() {
	command -v "$1" >/dev/null 2>&1 || { echo "missing validator: $1" >&2; exit 3; }
}

ok() {
	echo "validated $1 $2"
}

# A real load in a fresh network namespace: nft -c misses kernel-side errors.
# Loaded twice, since activation must be idempotent.
v_nft() {
	need nft
	ip netns add "$ns"
	ip netns exec "$ns" nft -f "$bundle/$1"
	ip netns exec "$ns" nft -f "$bundle/$1"
	ip netns del "$ns"
	ok "$1" nft
}

# wg setconf on a wireguard-go interface in its own namespace, with a private
# /run/wireguard so the control socket is not shared with the host.
v_wg() {
	need wg; need wg-quick; need wireguard-go
	wg-quick strip "$bundle/$1" >"$work/wg.conf"
	# Endpoints given as DNS names resolve to a documentation address inside
	# the namespace: the test needs no DNS and sends nothing anywhere.
	cp /etc/hosts "$work/hosts"
	sed -n 's/^Endpoint = \(.*\):[0-9]*$/\1/p' "$work/wg.conf" |
		grep -v '^[0-9.]*$' | sed 's/^/192.0.2.1 /' >>"$work/hosts" || true
	ip netns add "$ns"
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	ip netns exec "$ns" unshare -m sh -c '
		set -eu
		mkdir -p /run/wireguard
		mount -t tmpfs none /run/wireguard
		mount --bind "$2/hosts" /etc/hosts
		WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go wgv >/dev/null 2>&1
		wg setconf wgv "$1"
		(umask 077 && wg genkey > "$2/key")
		wg set wgv private-key "$2/key"
		wg show wgv >/dev/null
		ip link del wgv' sh "$work/wg.conf" "$work"
	ip netns del "$ns"
	ok "$1" wg
}

# ifup --no-act exits 0 on a file it cannot read, so check that first.
v_ifupdown() {
	need ifup
	[ -r "$bundle/$1" ]
	ifup --no-act -a -i "$bundle/$1" >/dev/null 2>"$work/ifup.err" || { cat "$work/ifup.err" >&2; return 1; }
	ok "$1" ifupdown
}

# testparm exits 0 on unknown parameters: fail on its stderr line too.
v_testparm() {
	need testparm
	testparm -s "$bundle/$1" >/dev/null 2>"$work/testparm.err"
	if grep -Ei 'unknown parameter|ignoring|error' "$work/testparm.err" >&2; then return 1; fi
	ok "$1" testparm
}

# systemd-analyze verify exits 0 on bad values: any output is a failure.
# ExecStart binaries must exist: a root with the host's units and stubs.
v_systemd() {
	need systemd-analyze
	root="$work/root"
	mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/usr/bin"
	[ -d "$root/usr/lib/systemd/system" ] || cp -a /lib/systemd/system "$root/usr/lib/systemd/"
	printf '[Unit]\nDescription=stub\n[Service]\nExecStart=/bin/true\n' >"$root/etc/systemd/system/docker.service"
	sed -n 's/^Exec[A-Za-z]*=-\{0,1\}\(\/[^ ]*\).*/\1/p' "$bundle/$1" | while read -r cmd; do
		mkdir -p "$root$(dirname "$cmd")"
		printf '#!/bin/sh\n' >"$root$cmd"
		chmod +x "$root$cmd"
	done
	cp "$bundle/$1" "$root/etc/systemd/system/"
	out=$(systemd-analyze verify --root="$root" "$(basename "$1")" 2>&1)
	[ -z "$out" ] || { echo "$out" >&2; return 1; }
	ok "$1" systemd-analyze
}

# nginx -t binds its listen addresses, resolves names and loads modules
# relative to Debian's prefix: run it in throwaway mount and network
# namespaces, with self-signed stand-ins for the certificates it names.
v_nginx() {
	need nginx; need openssl
	[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || { echo "missing validator: libnginx-mod-stream" >&2; exit 3; }
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=sitec-test \
		-keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	unshare -m -n sh -c '
		set -eu
		for f in $(sed -n "s/^[[:space:]]*ssl_certificate\(_key\)\{0,1\} \(.*\);/\2/p" "$1" | sort -u); do
			d=$(dirname "$f")
			mkdir -p "$d" 2>/dev/null || true
			mount -t tmpfs none "$d" 2>/dev/null || true
		done
		for f in $(sed -n "s/^[[:space:]]*ssl_certificate \(.*\);/\1/p" "$1"); do cp "$2/tls.crt" "$f"; done
		for f in $(sed -n "s/^[[:space:]]*ssl_certificate_key \(.*\);/\1/p" "$1"); do cp "$2/tls.key" "$f"; done
		ip link set lo up
		sysctl -qw net.ipv4.ip_nonlocal_bind=1
		nginx -q -t -p /usr/share/nginx/ -c "$1"' sh "$bundle/$1" "$work"
	ok "$1" nginx
}

v_toml() {
	need python3
	python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$bundle/$1"
	ok "$1" toml
}

# "path": {"check": "tool"} pairs of the manifest, one "tool path" a line.
checks() {
	python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
for path, f in sorted(m["files"].items()):
    if f["check"]:
        print(f["check"], path)' "$bundle/manifest.json"
}

checks | while read -r tool path; do
	case $tool in
		nft) v_nft "$path" ;;
		wg) v_wg "$path" ;;
		ifupdown) v_ifupdown "$path" ;;
		testparm) v_testparm "$path" ;;
		systemd-analyze) v_systemd "$path" ;;
		nginx) v_nginx "$path" ;;
		toml) v_toml "$path" ;;
		*) echo "unknown check $tool for $path" >&2; exit 1 ;;
	esac
done
