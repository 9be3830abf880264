//! Writes a synthetic site of N hosts in one full WireGuard mesh, each with
//! a firewall, two bridges, a NAT'd VM network and two services, valid under
//! every check: `cargo run --release --example gen_site -- N > site.ncl`.
//! The benchmark (scripts/bench) compiles it for N = 10 ... 3000.

use std::fmt::Write as _;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .filter(|n| (1..=4000).contains(n))
        .unwrap_or_else(|| {
            eprintln!("usage: gen_site N   (1 <= N <= 4000)");
            std::process::exit(2);
        });
    print!("{}", site(n));
}

/// Host i's management address in 10.1.0.0/16, its tunnel address in
/// 10.96.0.0/20 and its VM network, a /24 of 172.16.0.0/12.
fn mgmt(i: usize) -> String {
    format!("10.1.{}.{}", (i + 1) / 256, (i + 1) % 256)
}

fn tunnel(i: usize) -> String {
    format!("10.96.{}.{}", (i + 1) / 256, (i + 1) % 256)
}

fn vm_net(i: usize) -> String {
    format!("172.{}.{}", 16 + i / 256, i % 256)
}

/// A deterministic, valid-looking WireGuard public key (32 bytes, base64).
fn key(i: usize) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 32];
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (k, b)| v | (u32::from(*b) << (16 - 8 * k)));
        for k in 0..=chunk.len() {
            s.push(B64[((v >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    s.push('=');
    s
}

/// The site text for N hosts.
pub fn site(n: usize) -> String {
    let mut s = String::from(
        "# A synthetic site for the benchmark (examples/gen_site.rs): every host in\n\
         # one full WireGuard mesh, with a firewall, two bridges and two services.\n\
         let sitec = import \"../../schemas/site.ncl\" in\n\
         let base_input = [\n\
         \x20 { iface = \"lo\", comment = \"loopback first\" },\n\
         \x20 { source = \"@admin\", comment = \"admin network\" },\n\
         \x20 { iface = \"wg0\", comment = \"the mesh\" },\n\
         \x20 { proto = 'icmp, comment = \"ping\" },\n\
         \x20 { proto = 'tcp, ports = [9100], source = \"10.1.0.0/16\", comment = \"metrics\" },\n\
         ]\n\
         in\n\
         let node = fun mgmt vm tunnel => {\n\
         \x20 roles = ['hypervisor],\n\
         \x20 management_address = mgmt,\n\
         \x20 interfaces.eno1 = {},\n\
         \x20 bridges = {\n\
         \x20   vmbr0 = { address = \"%{mgmt}/16\", gateway = \"10.1.255.254\", ports = [\"eno1\"], comment = \"management\" },\n\
         \x20   vmbr1 = { address = \"%{vm}.1/24\", masquerade_via = \"vmbr0\", comment = \"VM network (NAT)\" },\n\
         \x20 },\n\
         \x20 firewall = {\n\
         \x20   input.rules = base_input,\n\
         \x20   dnat = [{ iface = \"vmbr0\", proto = 'tcp, port = 2201, to = \"%{vm}.10\", to_port = 22, comment = \"VM ssh\" }],\n\
         \x20 },\n\
         \x20 units.services = {\n\
         \x20   node-exporter = {\n\
         \x20     description = \"Prometheus node exporter\",\n\
         \x20     exec = { command = \"/usr/bin/prometheus-node-exporter\", args = [\"--web.listen-address=%{tunnel}:9100\"], user = \"prometheus\" },\n\
         \x20     after = [\"network-online.target\"],\n\
         \x20   },\n\
         \x20   backup = {\n\
         \x20     description = \"Nightly backup agent\",\n\
         \x20     exec = { command = \"/usr/local/bin/backup-agent\", args = [\"--listen\", \"127.0.0.1:8200\"] },\n\
         \x20     restart = 'always,\n\
         \x20   },\n\
         \x20 },\n\
         \x20 sysctl = { \"net.ipv4.ip_forward\" = 1 },\n\
         }\n\
         in\n\
         {\n\
         \x20 address_sets.admin = [\"10.10.68.0/24\"],\n\
         \x20 wireguard.wg0 = {\n\
         \x20   network = \"10.96.0.0/20\",\n\
         \x20   port = 51820,\n\
         \x20   members = {\n",
    );
    for i in 0..n {
        let _ = writeln!(
            s,
            "      h{i:04} = {{ address = \"{}\", public_key = \"{}\", endpoint = \"{}\", routes = [\"{}.0/24\"] }},",
            tunnel(i),
            key(i),
            mgmt(i),
            vm_net(i)
        );
    }
    s.push_str("    },\n  },\n  hosts = {\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "    h{i:04} = node \"{}\" \"{}\" \"{}\",",
            mgmt(i),
            vm_net(i),
            tunnel(i)
        );
    }
    s.push_str("  },\n} | sitec.Site\n");
    s
}
