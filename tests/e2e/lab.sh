#!/bin/sh
# lab.sh: hosts made of namespaces, for the end-to-end tests (tests/e2e.rs).
#
#   lab.sh up DIR NAME HOST=ADDRESS...   create the lab (NAME prefixes its namespaces)
#   lab.sh host DIR HOST CMD...          run CMD on a host
#   lab.sh op DIR CMD...                 run CMD on the operator's machine
#   lab.sh down DIR                      kill every process of the lab, remove it
#
# The operator is the namespace NAME-op at 10.0.200.1. Each host is a network
# namespace NAME-HOST whose eth0 (10.0.200.x/24) is a veth to the operator,
# plus a veth pair lan1/lan1-peer as a second NIC, with its own sshd running in its own mount namespace where DIR/HOST/etc
# (a copy of this machine's /etc) is /etc, DIR/HOST/lib is /var/lib, DIR/HOST/root
# (root's home as Debian installs it) is /root, and
# /run/wireguard and /run/network are private. So push and activate run
# unchanged, with the paths of a real host, and touch nothing outside the lab.
# With LAB_RSYNC=FILE in the environment of `up`, FILE is the hosts'
# /usr/bin/rsync (another Debian version of it, for the rsync tests).
# Needs root.
set -eu

# shellcheck source=tests/e2e/common.sh
. "$(dirname "$0")/common.sh"

die() {
	echo "lab.sh: $*" >&2
	exit 1
}

# The operator's key, and the key every host's sshd presents.
ssh_keys() {
	operator_key
	ssh-keygen -q -t ed25519 -N '' -C sitec-host -f "$dir/host_key"
}

# The host as an installer would leave it: an interfaces file for eth0.
host_root() {
	h=$dir/$1
	mkdir -p "$h/lib" "$h/root"
	cp -a /etc "$h/etc"
	# root's home as Debian's base-files installs it, not this machine's
	# (whose shell start-up files sshd's bash would run for every command).
	cp /usr/share/base-files/dot.bashrc "$h/root/.bashrc"
	cp /usr/share/base-files/dot.profile "$h/root/.profile"
	# allow-hotplug, as Debian's installer writes it: a rollback to
	# generation 0 must bring eth0 back though `ifup -a` skips it.
	installer_interfaces "$2" allow-hotplug >"$h/etc/network/interfaces"
	cat >"$h/sshd_config" <<-EOF
		ListenAddress $2
		HostKey $dir/host_key
		AuthorizedKeysFile $dir/operator_key.pub
		PermitRootLogin prohibit-password
		StrictModes no
		UsePAM no
		PidFile $h/sshd.pid
		LogLevel ERROR
	EOF
}

host_up() {
	host=${1%%=*} address=${1#*=}
	ns=$name-$host
	i=$(($(wc -l <"$dir/hosts") + 1))
	ip netns add "$ns"
	wire_host "$ns" "$i" "$address"
	host_root "$host" "$address"
	mkdir -p /run/sshd /run/wireguard /run/network
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	ip netns exec "$ns" unshare -m --propagation private sh -c '
		set -eu
		mount --bind "$1/etc" /etc
		mount --bind "$1/lib" /var/lib
		mount --bind "$1/root" /root
		mount -t tmpfs none /run/wireguard
		mount -t tmpfs none /run/network
		[ -z "$2" ] || mount --bind "$2" /usr/bin/rsync
		# What udev does for an allow-hotplug interface at boot.
		ifup -a && ifup -a --allow=hotplug
		exec /usr/sbin/sshd -D -f "$1/sshd_config" -E "$1/sshd.log"' sh "$dir/$host" "${LAB_RSYNC:-}" \
		</dev/null >"$dir/$host/sshd.out" 2>&1 &
	echo "$host" >>"$dir/hosts"
	n=0
	until [ -s "$dir/$host/sshd.pid" ] && ip netns exec "$name-op" ssh -F "$dir/ssh_config" -o ConnectTimeout=1 "root@$address" true 2>/dev/null; do
		n=$((n + 1))
		[ "$n" -lt 100 ] || die "sshd of $host did not come up: $(cat "$dir/$host/sshd.out" "$dir/$host/sshd.log" 2>/dev/null)"
		sleep 0.1
	done
}

up() {
	mkdir -p "$dir"
	echo "$name" >"$dir/name"
	: >"$dir/hosts"
	ssh_keys
	operator
	for spec in "$@"; do host_up "$spec"; done
}

down() {
	name=$(cat "$dir/name" 2>/dev/null) || return 0
	remove_namespaces
}

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	die "usage: lab.sh up|host|op|down DIR ..."
fi
shift 2
case $cmd in
	up)
		name=${1:?lab name}
		shift
		up "$@"
		;;
	host)
		host=${1:?host}
		shift
		exec nsenter -t "$(cat "$dir/$host/sshd.pid")" -m -n -- "$@"
		;;
	op) exec ip netns exec "$(cat "$dir/name")-op" "$@" ;;
	down) down ;;
	*) die "unknown command $cmd" ;;
esac
