#!/bin/sh
# boot.sh: test hosts that boot a real systemd (systemd-nspawn -b), for the
# end-to-end tests on booted hosts (tests/boot.rs).
#
#   boot.sh up DIR NAME HOST=ADDRESS...   build the hosts' roots and boot them;
#                                         $SITEC_HOST_FLAVOUR says which system
#                                         they run: debian12 (the default) or
#                                         debian13 (ifupdown2, as Proxmox VE 9)
#   boot.sh host DIR HOST CMD...          run CMD inside a running host
#   boot.sh op DIR CMD...                 run CMD in the operator's namespace
#   boot.sh reboot DIR HOST               reboot a host; returns once ssh answers
#   boot.sh crash DIR HOST                kill every process of a host at once (its
#                                         PID 1 by SIGKILL), boot it again; returns
#                                         once ssh answers
#   boot.sh wait DIR HOST                 wait until a host's ssh answers
#   boot.sh down DIR                      power every host off, remove the lab
#
# The operator is the network namespace NAME-op at 10.0.200.1, routing to
# each host over a veth (eth0 in the host) with proxy ARP: this machine's
# kernel may have no bridge module for a shared LAN. Each host also has a
# second NIC, lan1, a veth whose other end stays in its namespace.
#
# A host's root is DIR/HOST/root. debian12: copies of this machine's /etc
# and /var (without apt and dpkg data), this machine's /usr bound read-only,
# so every package a host needs is installed on this machine first (sh
# scripts/test does). debian13: an overlay over the Debian 13 root that
# tests/e2e/debian13.sh builds with ifupdown2 and the daemons installed. /etc and /var persist across reboots; the network namespace is made
# anew at each boot, so addresses, rulesets and tunnels vanish as on a real
# reboot. A host boots with sshd, journald, logind and dbus, networking.service
# configuring eth0 from the installer's /etc/network/interfaces, and the
# daemons the tests deploy (smbd, nginx, nftables, chrony) installed but not
# enabled. The operator serves NTP (chronyd) to the hosts.
# Needs root and systemd-container.
set -eu

# shellcheck source=tests/e2e/common.sh
. "$(dirname "$0")/common.sh"

die() {
	echo "boot.sh: $*" >&2
	exit 1
}

# Units of this machine that have no place on a test host, and the daemons
# the tests deploy: a host starts with them installed but not enabled, so
# what runs after a deploy is what the bundle enabled.
prune_units() {
	for w in "$1"/etc/systemd/system/*.wants/*; do
		case ${w##*/} in
			ssh.service | networking.service | systemd-pstore.service) ;;
			*) rm -f "$w" ;;
		esac
	done
	# And the aliases of the units whose links went (chronyd.service): an
	# alias alone makes systemctl call a unit enabled that no target wants.
	for l in "$1"/etc/systemd/system/*.service; do
		[ -L "$l" ] || continue
		case $(readlink "$l") in /lib/systemd/system/* | /usr/lib/systemd/system/*) rm -f "$l" ;; esac
	done
	rm -f "$1/etc/systemd/system/sshd.service"
	mkdir -p "$1/etc/systemd/system/multi-user.target.wants" "$1/etc/systemd/system/network-online.target.wants"
	ln -sfn /lib/systemd/system/ssh.service "$1/etc/systemd/system/multi-user.target.wants/ssh.service"
	ln -sfn /lib/systemd/system/ssh.service "$1/etc/systemd/system/sshd.service"
	ln -sfn /lib/systemd/system/networking.service "$1/etc/systemd/system/multi-user.target.wants/networking.service"
	ln -sfn /lib/systemd/system/networking.service "$1/etc/systemd/system/network-online.target.wants/networking.service"
	# Nothing here serves a console or waits for hardware.
	for u in getty@tty1.service console-getty.service systemd-networkd-wait-online.service; do
		ln -sfn /dev/null "$1/etc/systemd/system/$u"
	done
}

# A host's root. debian12: a small one, /etc and /var copied from this
# machine, its /usr bound at boot. debian13: a copy-on-write layer over the
# Debian 13 root (tests/e2e/debian13.sh), mounted until the lab goes down.
host_root() {
	r=$dir/$1/root
	if [ "$flavour" = debian13 ]; then
		mkdir -p "$r" "$dir/$1/upper" "$dir/$1/work"
		mount -t overlay overlay -o "lowerdir=$(cat "$dir/base"),upperdir=$dir/$1/upper,workdir=$dir/$1/work" "$r"
		mkdir -p "$r/root/.ssh"
	else
		mkdir -p "$r/usr" "$r/dev" "$r/proc" "$r/sys" "$r/run" "$r/tmp" "$r/root/.ssh" "$r/home" "$r/mnt" "$r/srv" "$r/opt"
		chmod 1777 "$r/tmp"
		for l in bin sbin lib lib64; do ln -sfn "usr/$l" "$r/$l"; done
		cp -a /etc "$r/etc"
		tar -C / --exclude=./var/lib/apt --exclude=./var/lib/dpkg --exclude=./var/cache/apt \
			--exclude=./var/lib/postgresql --exclude=./var/lib/docker --exclude=./var/lib/sitec \
			--exclude=./var/log/journal -cf - ./var | tar -C "$r" -xf -
		rm -f "$r/etc/os-release"
		cp /usr/lib/os-release "$r/etc/os-release"
	fi
	mkdir -p "$r/var/log/journal" "$r/srv"
	echo "$1" >"$r/etc/hostname"
	printf '%s\n' "$(printf '%s' "$name-$1" | sha256sum | cut -c1-32)" >"$r/etc/machine-id"
	printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$1" >"$r/etc/hosts"
	: >"$r/etc/fstab"
	prune_units "$r"
	rm -f "$r"/etc/ssh/ssh_host_*
	ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$r/etc/ssh/ssh_host_ed25519_key"
	cp "$dir/operator_key.pub" "$r/root/.ssh/authorized_keys"
	chmod 700 "$r/root/.ssh"
	# auto: nspawn has no udev to bring up an allow-hotplug eth0 at boot.
	installer_interfaces "$2" auto >"$r/etc/network/interfaces"
	rm -f "$r"/etc/nftables.conf
	lab_chrony "$r"
}

# chronyd as the lab runs it: without CAP_SYS_TIME (a container may not set
# the clock) it measures the time but leaves the clock alone (-x), and it
# asks no server outside the lab (the distribution's pool goes).
lab_chrony() {
	mkdir -p "$1/etc/systemd/system/chrony.service.d"
	# shellcheck disable=SC2016 # $DAEMON_OPTS is systemd's to expand
	printf '[Unit]\nConditionCapability=\n[Service]\nExecStart=\nExecStart=!/usr/sbin/chronyd -x $DAEMON_OPTS\n' \
		>"$1/etc/systemd/system/chrony.service.d/lab.conf"
	sed -i '/^pool /d' "$1/etc/chrony/chrony.conf"
}

# The operator's NTP server, as a LAN router has one: chronyd serving its
# own clock (it sets none) to the hosts, at 10.0.200.1 (each host's veth
# has that address on the operator's side).
ntp_server() {
	cat >"$dir/ntp.conf" <<-EOF
		local stratum 8
		allow 10.0.200.0/24
		cmdport 0
		pidfile $dir/ntp.pid
		driftfile $dir/ntp.drift
	EOF
	ip netns exec "$name-op" chronyd -x -f "$dir/ntp.conf"
}

# One boot's network: a fresh namespace with eth0 towards the operator and a
# second NIC lan1. Made anew at every boot, as a real reboot loses it all.
netns_up() {
	ns=$name-$1
	i=$(cat "$dir/$1/index")
	ip netns del "$ns" 2>/dev/null || true
	# After a crash the last boot's namespace may outlive its name for a
	# moment, and with it the veth: take it down with its operator end.
	ip -n "$name-op" link del "veth$i" 2>/dev/null || true
	ip netns add "$ns"
	wire_host "$ns" "$i" "$2"
}

# Its own cgroup, else two nspawns on this machine (whose PID 1 is not
# systemd) share one and stop each other.
own_cgroup() {
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h" ] || continue
		mkdir -p "/sys/fs/cgroup/$h/$name-$1"
		echo $$ >"/sys/fs/cgroup/$h/$name-$1/cgroup.procs"
	done
}

# Runs in the background for as long as the host lives: boots it, and boots
# it again (with a new network) whenever it reboots (nspawn exits 133).
host_loop() {
	own_cgroup "$1"
	while :; do
		netns_up "$1" "$2"
		rc=0
		# Unified cgroups: in legacy mode stopping user@0.service hangs 2 min.
		# Writable net.* sysctls of its own namespace, as on a real host.
		# debian12 hosts run this machine's /usr; debian13 ones their own.
		usr=
		[ "$flavour" = debian13 ] || usr=--bind-ro=/usr
		SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_NSPAWN_API_VFS_WRITABLE=network \
			systemd-nspawn -q -b -D "$dir/$1/root" -M "$name-$1" \
			${usr:+"$usr"} --register=no --keep-unit \
			--network-namespace-path="/run/netns/$name-$1" --capability=CAP_NET_ADMIN \
			--resolv-conf=off --timezone=off --link-journal=no --console=read-only \
			</dev/null >>"$dir/$1/console" 2>&1 &
		echo $! >"$dir/$1/nspawn.pid"
		wait $! || rc=$?
		echo "exit $rc" >>"$dir/$1/boots"
		ip netns del "$name-$1" 2>/dev/null || true
		rm -rf "/run/systemd/nspawn/propagate/$name-$1"
		[ ! -f "$dir/$1/down" ] || break
		# 133: the host rebooted; a crash the test caused boots it again too.
		[ "$rc" = 133 ] || rm "$dir/$1/crash" 2>/dev/null || break
	done
	touch "$dir/$1/ended"
}

ssh_answers() {
	ip netns exec "$name-op" ssh -F "$dir/ssh_config" -o BatchMode=yes -o ConnectTimeout=1 "$(cat "$dir/$1/address")" true 2>/dev/null
}

wait_host() {
	n=0
	until ssh_answers "$1"; do
		n=$((n + 1))
		[ "$n" -lt 300 ] || die "$1 did not answer ssh within 60 s: $(tail -n 20 "$dir/$1/console")"
		sleep 0.2
	done
}

host_up() {
	host=${1%%=*} address=${1#*=}
	mkdir -p "$dir/$host"
	echo "$address" >"$dir/$host/address"
	wc -l <"$dir/hosts" | tr -d ' ' >"$dir/$host/index"
	echo "$host" >>"$dir/hosts"
	host_root "$host" "$address"
	setsid sh "$0" loop "$dir" "$host" </dev/null >>"$dir/$host/loop.log" 2>&1 &
}

# The host's PID 1: nspawn's child.
leader() {
	pgrep -P "$(cat "$dir/$1/nspawn.pid")" | head -n 1 | grep .
}

up() {
	mkdir -p "$dir"
	echo "$name" >"$dir/name"
	echo "$flavour" >"$dir/flavour"
	case $flavour in
		debian12) ;;
		debian13) sh "$(dirname "$0")/debian13.sh" root >"$dir/base" ;;
		*) die "unknown host flavour $flavour (debian12 or debian13)" ;;
	esac
	: >"$dir/hosts"
	operator_key
	operator
	ntp_server
	for spec in "$@"; do host_up "$spec"; done
	while read -r h; do wait_host "$h"; done <"$dir/hosts"
}

# How many times a host's nspawn has exited.
boots() {
	if [ -f "$dir/$1/boots" ]; then wc -l <"$dir/$1/boots"; else echo 0; fi
}

# Wait until host $1 has gone down once more than $2 times (within $3
# tenths of a second), then until it answers ssh again.
back_up() {
	n=0
	until [ "$(boots "$1")" -gt "$2" ]; do
		n=$((n + 1))
		[ "$n" -lt "$3" ] || die "$1 did not go down within $(($3 / 10)) s"
		sleep 0.1
	done
	wait_host "$1"
}

reboot_host() {
	boots=$(boots "$1")
	nsenter -t "$(leader "$1")" -a systemctl reboot
	back_up "$1" "$boots" 600
}

# A crash: SIGKILL to the host's PID 1 takes every process of its PID
# namespace with it, in the middle of whatever it did; no unit stops.
crash_host() {
	boots=$(boots "$1")
	touch "$dir/$1/crash"
	kill -KILL "$(leader "$1")"
	back_up "$1" "$boots" 300
}

# Power off: SIGTERM makes nspawn halt its container cleanly, a second one
# kills it. Then what is left of the lab goes: its processes, network
# namespaces and cgroups (deepest first). Host names are identifiers.
down() {
	name=$(cat "$dir/name" 2>/dev/null) || return 0
	hosts=$(cat "$dir/hosts")
	for h in $hosts; do
		touch "$dir/$h/down"
		kill -TERM "$(cat "$dir/$h/nspawn.pid")" 2>/dev/null || true
	done
	for h in $hosts; do
		n=0
		until [ -f "$dir/$h/ended" ] || [ "$n" -ge 100 ]; do
			n=$((n + 1))
			[ "$n" != 50 ] || kill -TERM "$(cat "$dir/$h/nspawn.pid")" 2>/dev/null || true
			sleep 0.1
		done
	done
	for h in $hosts; do
		for c in systemd unified; do
			g=/sys/fs/cgroup/$c/$name-$h
			[ -d "$g" ] || continue
			# shellcheck disable=SC2038 # cat prints pids, not names
			find "$g" -name cgroup.procs -exec cat {} + | xargs -r kill -9 2>/dev/null || true
			sleep 0.1
			find "$g" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		done
		rm -rf "/run/systemd/nspawn/propagate/$name-$h"
		# A debian13 host's layer: unmounted once nothing runs in it.
		! mountpoint -q "$dir/$h/root" || umount "$dir/$h/root" || umount -l "$dir/$h/root"
	done
	remove_namespaces
}

cmd=${1:-}
dir=${2:-}
flavour=$(cat "$dir/flavour" 2>/dev/null || echo "${SITEC_HOST_FLAVOUR:-debian12}")
if [ -z "$cmd" ] || [ -z "$dir" ]; then
	die "usage: boot.sh up|host|op|reboot|crash|wait|down DIR ..."
fi
shift 2
case $cmd in
	up)
		name=${1:?lab name}
		shift
		up "$@"
		;;
	loop)
		name=$(cat "$dir/name")
		host_loop "$1" "$(cat "$dir/$1/address")"
		;;
	host)
		name=$(cat "$dir/name")
		host=${1:?host}
		shift
		pid=$(leader "$host") || die "$host is not running"
		exec nsenter -t "$pid" -a -- "$@"
		;;
	op) exec ip netns exec "$(cat "$dir/name")-op" "$@" ;;
	reboot)
		name=$(cat "$dir/name")
		reboot_host "${1:?host}"
		;;
	crash)
		name=$(cat "$dir/name")
		crash_host "${1:?host}"
		;;
	wait)
		name=$(cat "$dir/name")
		wait_host "${1:?host}"
		;;
	down) down ;;
	*) die "unknown command $cmd" ;;
esac
