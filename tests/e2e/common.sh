# common.sh: what the two labs share (sourced by lab.sh and boot.sh, which
# set $dir, the lab's directory, and $name, the prefix of its namespaces).
# shellcheck shell=sh disable=SC2154

# The operator's ssh key and an ssh config that uses it as root, trusting
# any host key (the hosts are made anew for every lab).
operator_key() {
	ssh-keygen -q -t ed25519 -N '' -C sitec-operator -f "$dir/operator_key"
	cat >"$dir/ssh_config" <<-EOF
		Host *
		  User root
		  IdentityFile $dir/operator_key
		  IdentitiesOnly yes
		  StrictHostKeyChecking no
		  UserKnownHostsFile /dev/null
		  LogLevel ERROR
	EOF
}

# This machine's kernel may have no bridge module: the operator namespace
# routes between the hosts' veths instead, answering their ARP for each other
# (proxy ARP), so to the hosts 10.0.200.0/24 looks like one LAN.
operator() {
	ip netns add "$name-op"
	ip -n "$name-op" link set lo up
	ip netns exec "$name-op" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.proxy_arp=1
}

# Wire host namespace $1 (the lab's $2-th host) at address $3: eth0 is a veth
# to the operator; lan1 is a second NIC, a veth whose peer stays inside.
# For IPv6 the operator is fd00:200::1 on every veth and reaches a host at
# fd00:200::<last octet of $3> (where the site puts it); each host resolves
# the operator's address by neighbour discovery on its own eth0.
wire_host() {
	ip -n "$name-op" link add "veth$2" type veth peer name eth0 netns "$1"
	ip netns exec "$name-op" sysctl -qw "net.ipv4.conf.veth$2.proxy_arp=1"
	ip -n "$name-op" addr add 10.0.200.1/32 dev "veth$2"
	ip -n "$name-op" addr add fd00:200::1/128 dev "veth$2" nodad
	ip -n "$name-op" link set "veth$2" up
	ip -n "$name-op" route replace "$3/32" dev "veth$2"
	ip -n "$name-op" -6 route replace "fd00:200::${3##*.}/128" dev "veth$2"
	ip -n "$1" link add lan1 type veth peer name lan1-peer
	ip -n "$1" link set lan1-peer up
}

# Kill whatever still runs in the lab's network namespaces and delete them.
remove_namespaces() {
	for ns in $(ip netns list | cut -d' ' -f1 | grep "^$name-"); do
		ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true
		ip netns del "$ns"
	done
}

# /etc/network/interfaces as an installer leaves it: eth0 at address $1,
# marked $2: `allow-hotplug`, as Debian's installer writes it (`ifup -a`
# skips it; udev brings it up), or `auto`.
installer_interfaces() {
	cat <<-EOF
		# written by the installer
		auto lo
		iface lo inet loopback

		${2:-auto} eth0
		iface eth0 inet static
		 	address $1/24
	EOF
}
