//! Robustness: no input makes sitec panic, and every finding is located.
//!
//! - `mutated_sites_never_panic_the_cli`: real sites, randomly mutated
//!   (bytes deleted, tokens inserted, lines duplicated or swapped, numbers
//!   and strings replaced), through the whole CLI in text and JSON form.
//! - `generated_sites_are_checked_located_and_deterministic`: random sites
//!   built from small pools of names, addresses and ports (so duplicates,
//!   overlaps and conflicts are frequent) through model → check → render:
//!   each compiles deterministically or fails with located diagnostics.
//!
//! Both compare sitec's own check against the schemas with Nickel's
//! contracts (`--nickel-contracts`): the same bundles, the same findings
//! (a field the schema lacks: sitec's `schema::unknown-field` where
//! Nickel's contracts say "extra field").
//!
//! Bounded and reproducible: SITEC_FUZZ_SEED (default fixed) and
//! SITEC_FUZZ_ITERATIONS choose the run; the seed is printed on failure.

mod support;

use rayon::prelude::*;
use sitec::{Contracts, Options, Project, SiteFailure};
use support::{project_root, schema_project, sitec, write_site};

/// Whether sitec's report (`--format json`) is a field its record does not
/// have (`schema::unknown-field`, which sitec reports itself at the field)
/// while Nickel's contracts refuse the site too: the same field as an extra
/// one, or another of the site's errors, which they happened to meet first.
fn same_unknown_field(sitec: &[u8], nickel: &[u8]) -> bool {
    let parse = |b: &[u8]| serde_json::from_slice::<Vec<serde_json::Value>>(b).unwrap_or_default();
    let (s, n) = (parse(sitec), parse(nickel));
    let [report] = s.as_slice() else {
        return false;
    };
    report["code"] == "schema::unknown-field"
        && !n.is_empty()
        && n.iter().all(|d| {
            d["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("nickel::"))
        })
}

/// SplitMix64: small, seedable, good enough to pick mutations.
/// A `Cell` inside, so that generators can draw from it while building
/// nested arguments.
struct Rng(std::cell::Cell<u64>);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(std::cell::Cell::new(seed))
    }
    fn next(&self) -> u64 {
        self.0.set(self.0.get().wrapping_add(0x9E37_79B9_7F4A_7C15));
        let mut z = self.0.get();
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn seed() -> u64 {
    std::env::var("SITEC_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5173_C0DE)
}

fn iterations(default: usize) -> usize {
    std::env::var("SITEC_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- mutation

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    "=",
    ".",
    "\"",
    "'",
    "|",
    "@",
    "%{",
    "}%",
    "\n",
    "null",
    "true",
    "-1",
    "1.5",
    "1e300",
    "99999999999999999999",
    "0",
    "[]",
    "{}",
    "'tcp",
    "'nope",
    "fun x => x",
    "let x = 1 in",
    "import \"site.ncl\"",
    "std.fail_with \"x\"",
    "hosts",
    "\"10.0.0.1\"",
    "\"10.0.0.0/0\"",
    "\"fd00::1\"",
    "\"::/0\"",
    "\"@admin\"",
    "\\",
    "\u{0}",
    "é",
    "#",
    ";",
    " & ",
    " @ ",
    "..",
];

const NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1.5",
    "65536",
    "4294967296",
    "1e30",
    "99999999999999999999999",
    "-0.5",
    "7",
];

const STRINGS: &[&str] = &[
    "",
    "x",
    "10.0.0.1",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "::",
    "::1",
    "fe80::1",
    "fd00:99::1",
    "fd00:99::/64",
    "2001:db8::/129",
    "1:2:3:4:5:6:7:8:9",
    "255.255.255.255",
    "@admin",
    "@none",
    "lo",
    "wg0",
    "/",
    "/etc/passwd",
    "a b",
    "a\\nb",
    "zaino.service",
    "1.99",
    "3T",
    "0T",
];

fn char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of runs of ASCII digits (number literals and parts of strings alike).
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Contents of `"..."` on one line.
fn strings(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let quotes: Vec<usize> = line.match_indices('"').map(|(i, _)| i).collect();
        for pair in quotes.chunks(2) {
            if let [a, b] = pair {
                out.push((offset + a + 1, offset + b));
            }
        }
        offset += line.len();
    }
    out
}

fn mutate(rng: &Rng, text: &str) -> String {
    let mut t = text.to_string();
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 => {
                let a = char_boundary(&t, rng.below(t.len()));
                let b = char_boundary(&t, a + 1 + rng.below(20));
                t.replace_range(a..b, "");
            }
            1 => {
                let a = char_boundary(&t, rng.below(t.len()));
                let token = rng.pick::<&str>(TOKENS);
                t.insert_str(a, token);
            }
            2 => {
                let lines: Vec<&str> = t.split_inclusive('\n').collect();
                let i = rng.below(lines.len());
                let mut out: Vec<&str> = lines.clone();
                out.insert(i, lines[i]);
                t = out.concat();
            }
            3 => {
                let mut lines: Vec<&str> = t.split_inclusive('\n').collect();
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(i, j);
                t = lines.concat();
            }
            4 => {
                let ns = numbers(&t);
                if !ns.is_empty() {
                    let (a, b) = *rng.pick(&ns);
                    let number = rng.pick::<&str>(NUMBERS);
                    t.replace_range(a..b, number);
                }
            }
            _ => {
                let ss = strings(&t);
                if !ss.is_empty() {
                    let (a, b) = *rng.pick(&ss);
                    let string = rng.pick::<&str>(STRINGS);
                    t.replace_range(a..b, string);
                }
            }
        }
    }
    t
}

fn corpus() -> Vec<String> {
    let root = project_root();
    let mut files = vec![
        root.join("sites/homelab/site.ncl"),
        root.join("sites/opensource/site.ncl"),
        root.join("tests/adversarial/site.ncl"),
    ];
    let mut cases: Vec<_> = std::fs::read_dir(root.join("tests/diagnostics"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    files.extend(cases);
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn mutated_sites_never_panic_the_cli() {
    let seed = seed();
    let corpus = corpus();
    let n = iterations(400);
    let outcomes: Vec<(i32, Option<String>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let text = mutate(&rng, rng.pick(&corpus).as_str());
            let dir = schema_project("fuzz");
            write_site(dir.path(), "fuzz", &text);
            let json = i % 2 == 0;
            let mut cmd = sitec();
            cmd.current_dir(dir.path())
                .args(["check", "fuzz"])
                .env("NO_COLOR", "1");
            if json {
                cmd.args(["--format", "json"]);
            }
            let o = cmd.output().unwrap();
            let code = o.status.code().unwrap_or(-1);
            let stderr = String::from_utf8_lossy(&o.stderr);
            let stdout = String::from_utf8_lossy(&o.stdout);
            let by_nickel = json.then(|| {
                cmd.arg("--nickel-contracts");
                let n = cmd.output().unwrap();
                (n.status.code().unwrap_or(-1), n.stdout)
            });
            let problem = if stderr.contains("panicked") || !(0..=2).contains(&code) {
                Some(format!("exit {code}, stderr:\n{stderr}"))
            } else if code == 1 && !json && !stderr.contains("error") {
                Some(format!("exit 1 without an error message:\n{stderr}"))
            } else if let Some((n_code, n_stdout)) = by_nickel
                && (n_code != code || (n_stdout != o.stdout && !same_unknown_field(&o.stdout, &n_stdout)))
            {
                Some(format!(
                    "with --nickel-contracts: exit {n_code} (not {code}), printed\n{}\ninstead of\n{stdout}",
                    String::from_utf8_lossy(&n_stdout)
                ))
            } else if json {
                match serde_json::from_str::<Vec<serde_json::Value>>(&stdout) {
                    Err(e) => Some(format!("--format json printed no JSON ({e}):\n{stdout}")),
                    Ok(ds) if code == 1 && ds.is_empty() => {
                        Some(format!("exit 1 with no diagnostic:\n{stderr}"))
                    }
                    Ok(ds) => ds
                        .iter()
                        .find(|d| d["code"].as_str().is_none_or(str::is_empty))
                        .map(|d| format!("a diagnostic without a code: {d}")),
                }
            } else {
                None
            };
            let problem = problem
                .map(|p| format!("iteration {i} (seed {seed}): {p}\n--- site:\n{text}\n---"));
            (code, problem)
        })
        .collect();
    let failures: Vec<&String> = outcomes.iter().filter_map(|(_, p)| p.as_ref()).collect();
    assert!(
        failures.is_empty(),
        "{} of {n} mutated sites went wrong:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The mutations must reach both outcomes, or the run checked nothing.
    for want in [0, 1] {
        assert!(
            outcomes.iter().any(|(code, _)| *code == want),
            "no mutated site ended with exit {want}"
        );
    }
}

// ---------------------------------------------------------------- generation

const KEYS: &[&str] = &[
    "Udi6k5LUI8hopW5AukhrzzQY4P8YSnUrWputUpucD04=",
    "QCVhh6zociusw98IBbwfoCDOhjirwmZ1pc7xxlCTfTI=",
    "98ROituXoVRfIgBAaTM54yitx5YX4WCWqGe5c6X4oVw=",
    "n8jz+ccVDEIAtTDFnSUUGOQVABDz70Vt0Tv742+zcGY=",
];

/// An IPv4 address, for fields of that family.
fn addr4(rng: &Rng) -> String {
    let net = *rng.pick(&["10.0.0", "10.0.1", "10.99.0", "203.0.113", "127.0.0"]);
    format!("{net}.{}", 1 + rng.below(6))
}

/// An IPv6 address: the same few networks, so that addresses meet.
fn addr6(rng: &Rng) -> String {
    let net = *rng.pick(&["fd00:0:0:0:", "fd00::1:", "fd00:99::", "2001:db8::", "::"]);
    format!("{net}{}", 1 + rng.below(6))
}

/// An address of either family, for fields that take both.
fn addr(rng: &Rng) -> String {
    if rng.chance(30) {
        addr6(rng)
    } else {
        addr4(rng)
    }
}

fn cidr4(rng: &Rng) -> String {
    format!("{}/{}", addr4(rng), rng.pick(&[8, 16, 24, 25, 32]))
}

fn cidr6(rng: &Rng) -> String {
    format!("{}/{}", addr6(rng), rng.pick(&[16, 48, 64, 127, 128]))
}

fn cidr(rng: &Rng) -> String {
    if rng.chance(30) {
        cidr6(rng)
    } else {
        cidr4(rng)
    }
}

fn port(rng: &Rng) -> u16 {
    *rng.pick(&[22, 80, 443, 2222, 8137, 8237, 51820, 51821])
}

fn opt(rng: &Rng, field: &str, value: String) -> String {
    if rng.chance(50) {
        format!("{field} = {value}, ")
    } else {
        String::new()
    }
}

fn rule(rng: &Rng) -> String {
    let mut r = String::from("{ ");
    r += &opt(
        rng,
        "iface",
        format!("{:?}", rng.pick(&["lo", "wg0", "eth0", "vmbr0"])),
    );
    let source = if rng.chance(30) {
        rng.pick(&["@admin", "@lan", "@none"]).to_string()
    } else {
        cidr(rng)
    };
    r += &opt(rng, "source", format!("{source:?}"));
    if rng.chance(20) {
        r += &format!("destination = {:?}, ", cidr(rng));
    }
    if rng.chance(10) {
        r += &format!("oiface = {:?}, ", rng.pick(&["eth0", "vmbr0", "eth7"]));
    }
    let proto = *rng.pick(&["'any", "'tcp", "'udp", "'icmp", "'icmpv6"]);
    r += &format!("proto = {proto}, ");
    if proto == "'tcp" || proto == "'udp" || (proto == "'any" && rng.chance(30)) {
        r += &opt(rng, "ports", format!("[{}]", port(rng)));
    }
    r += &format!(
        "action = {} }}",
        rng.pick(&["'accept", "'accept", "'drop", "'reject"])
    );
    r
}

fn host(rng: &Rng, name: &str) -> String {
    let mut h = format!("{name} = {{ management_address = {:?}, ", addr(rng));
    h += &opt(rng, "deploy", format!("{{ port = {} }}", port(rng)));
    h += &format!(
        "interfaces = {{ eth0 = {{ method = 'static, address = {:?}, {}{}{}{} }}, eth1 = {{}} }}, ",
        cidr4(rng),
        opt(rng, "gateway", format!("{:?}", addr4(rng))),
        opt(
            rng,
            "method6",
            rng.pick(&["'static", "'auto", "'dhcp"]).to_string()
        ),
        opt(rng, "address6", format!("{:?}", cidr6(rng))),
        opt(
            rng,
            "gateway6",
            format!("{:?}", rng.pick(&["fe80::1", "fd00::1:1", "2001:db8::9"]))
        ),
    );
    if rng.chance(50) {
        h += &format!(
            "bridges = {{ vmbr0 = {{ address = {:?}, ports = [{:?}], {}{} }} }}, ",
            cidr4(rng),
            rng.pick(&["eth1", "eth9"]),
            opt(rng, "address6", format!("{:?}", cidr6(rng))),
            opt(
                rng,
                "masquerade_via",
                format!("{:?}", rng.pick(&["eth0", "wg0", "eth7"]))
            )
        );
    }
    if rng.chance(70) {
        let rules: Vec<String> = (0..rng.below(6)).map(|_| rule(rng)).collect();
        let forward: Vec<String> = (0..rng.below(3)).map(|_| rule(rng)).collect();
        let dnat: Vec<String> = (0..rng.below(3))
            .map(|_| {
                format!(
                    "{{ proto = {}, port = {}, to = {:?}, {} }}",
                    rng.pick(&["'tcp", "'udp"]),
                    port(rng),
                    addr(rng),
                    opt(
                        rng,
                        "source",
                        format!(
                            "{:?}",
                            rng.pick(&["@admin", "@lan", "10.0.0.0/8", "fd00::/8"])
                        )
                    )
                )
            })
            .collect();
        let masquerade: Vec<String> = (0..rng.below(2))
            .map(|_| {
                format!(
                    "{{ oiface = {:?}, {} }}",
                    rng.pick(&["eth0", "eth7"]),
                    opt(rng, "source", format!("{:?}", cidr(rng)))
                )
            })
            .collect();
        h += &format!(
            "firewall = {{ input = {{ policy = {}, rules = [{}] }}, forward.rules = [{}], dnat = [{}], masquerade = [{}] }}, ",
            rng.pick(&["'drop", "'accept"]),
            rules.join(", "),
            forward.join(", "),
            dnat.join(", "),
            masquerade.join(", ")
        );
        h += &opt(
            rng,
            "sysctl",
            rng.pick(&[
                "{ \"net.ipv4.ip_forward\" = 1 }",
                "{ \"net.ipv6.conf.all.forwarding\" = 1 }",
                "{ \"net.ipv4.ip_forward\" = 1, \"net.ipv6.conf.all.forwarding\" = 1 }",
            ])
            .to_string(),
        );
    }
    if rng.chance(40) {
        let names = ["a.example.org", "b.example.org", "A.example.org"];
        let vhosts: Vec<String> = (0..rng.below(3))
            .map(|i| {
                format!(
                    "v{i} = {{ server_names = [{:?}], {}{}backends = [{{ address = {:?}, port = 80 }}] }}",
                    rng.pick(&names),
                    opt(rng, "tls", "{ certificate = \"/c.pem\", key = \"/k.pem\" }".into()),
                    opt(rng, "http3", "true".into()),
                    addr(rng)
                )
            })
            .collect();
        let streams: Vec<String> = (0..rng.below(3))
            .map(|_| {
                format!(
                    "{{ proto = {}, port = {}, backend = {{ address = {:?}, port = 9 }} }}",
                    rng.pick(&["'tcp", "'udp"]),
                    port(rng),
                    addr(rng)
                )
            })
            .collect();
        h += &format!(
            "nginx = {{ version = {:?}, vhosts = {{ {} }}, streams = [{}] }}, ",
            rng.pick(&["1.22", "1.25"]),
            vhosts.join(", "),
            streams.join(", ")
        );
    }
    if rng.chance(30) {
        h += &format!(
            "zaino = {{ build = {}, grpc = {{ address = {:?}, port = {}, {} }}, validator = {{ address = {:?}, {} }}, {} container.image = \"zingodevops/zaino:0.1.2\" }}, ",
            rng.pick(&["'official", "'unencrypted_traffic"]),
            addr(rng),
            port(rng),
            opt(
                rng,
                "tls",
                "{ certificate = \"/c.pem\", key = \"/k.pem\" }".into()
            ),
            addr(rng),
            opt(rng, "cookie_path", "\"/cookie\"".into()),
            opt(
                rng,
                "map_shard_amount",
                rng.pick(&["1", "3", "8", "12"]).to_string()
            )
        );
    }
    if rng.chance(30) {
        h += &format!(
            "samba = {{ time_machine = {{ tm = {{ path = {:?}, dataset = \"tank/tm\", users = [\"alice\"], quota = \"3T\" }} }}, shares = {{ {} = {{ path = {:?}, users = [\"bob\"] }} }} }}, ",
            rng.pick(&["/tank/tm", "/tank/share"]),
            rng.pick(&["TM", "share"]),
            rng.pick(&["/tank/tm", "/tank/share"])
        );
        h += &opt(rng, "zfs", "{ \"tank/tm\" = { refquota = \"1T\" } }".into());
    }
    if rng.chance(40) {
        let kind = *rng.pick(&[
            "exec.command = \"/bin/true\",",
            "container = { image = \"x/y:1\", uid = 1, gid = 1 },",
            "",
        ]);
        h += &format!(
            "units = {{ services = {{ {} = {{ description = \"d\", {kind} after = [{:?}] }} }}, states = {{ {:?} = {} }} }}, ",
            rng.pick(&["zaino", "svc"]),
            rng.pick(&["zaino.service", "net.target"]),
            rng.pick(&["zaino.service", "svc.service", "net.target"]),
            rng.pick(&["'masked", "'enabled", "'disabled"])
        );
    }
    h + "}"
}

/// A host that passes every check, with a random choice of services: the
/// generated sites that compile, so that the renderers run too.
/// `dual`: the host is dual-stack (its subnets have an IPv6 half
/// `fd00:<i>::/64` and `fd00:10<i>::/64`, and it forwards both families).
fn tidy_host(rng: &Rng, i: usize, name: &str, dual: bool) -> String {
    let v6 = |s: String| if dual { s } else { String::new() };
    let mut h = format!(
        "{name} = {{ management_address = \"10.0.{i}.1\", interfaces = {{ eth0 = {{ method = 'static, address = \"10.0.{i}.1/24\", gateway = \"10.0.{i}.254\", {} }} }}, ",
        v6(format!(
            "address6 = \"fd00:{i}::1/64\", gateway6 = \"fe80::1\""
        ))
    );
    let mut forwards = false;
    if rng.chance(50) {
        h += &format!(
            "bridges = {{ vmbr1 = {{ address = \"10.1.{i}.1/24\", {} masquerade_via = \"eth0\" }} }}, ",
            v6(format!("address6 = \"fd00:10{i}::1/64\","))
        );
        forwards = true;
    }
    if rng.chance(60) {
        h += &format!(
            "firewall = {{ input.rules = [{{ iface = \"lo\" }}, {{ source = \"@admin\" }}, {{ proto = 'tcp, ports = [{}] }}], dnat = [{{ proto = 'tcp, port = 8080, to = \"10.0.{i}.20\" }}, {}], masquerade = [{}] }}, ",
            rng.pick(&[80, 443, 8006]),
            v6(format!(
                "{{ proto = 'tcp, port = 8080, to = \"fd00:{i}::20\", source = \"@admin\" }}"
            )),
            if rng.chance(50) {
                "{ oiface = \"eth0\", source = \"10.1.0.0/16\" }"
            } else {
                ""
            }
        );
        forwards = true;
    }
    if forwards {
        h += if dual {
            "sysctl = { \"net.ipv4.ip_forward\" = 1, \"net.ipv6.conf.all.forwarding\" = 1 }, "
        } else {
            "sysctl = { \"net.ipv4.ip_forward\" = 1 }, "
        };
    }
    if rng.chance(40) {
        h += &format!(
            "nginx = {{ vhosts.web = {{ server_names = [\"{name}.example.org\"], {}backends = [{{ address = \"10.0.{i}.30\", port = 8081 }}, {}] }}, streams = [{{ proto = 'udp, port = 5353, backend = {{ address = \"10.0.{i}.31\", port = 53 }} }}] }}, ",
            if rng.chance(50) {
                "tls = { certificate = \"/etc/ssl/c.pem\", key = \"/etc/ssl/k.pem\" }, "
            } else {
                ""
            },
            v6(format!("{{ address = \"fd00:{i}::30\", port = 8081 }}"))
        );
    }
    if rng.chance(30) {
        h += &format!(
            "zaino = {{ grpc.address = \"10.0.{i}.1\", validator = {{ address = \"10.0.{i}.40\", cookie_path = \"/var/lib/zebrad/.cookie\" }}, map_shard_amount = {}, container.image = \"zingodevops/zaino:0.1.2\" }}, ",
            rng.pick(&[1, 8, 16])
        );
    }
    if rng.chance(30) {
        h += "samba.time_machine.tm = { path = \"/tank/tm\", dataset = \"tank/tm\", users = [\"alice\"], quota = \"2T\" }, ";
    }
    if rng.chance(30) {
        h += "units.services.svc = { description = \"a service\", exec = { command = \"/usr/bin/true\", args = [\"-x\"] } }, ";
    }
    h + "}"
}

fn generated_site(rng: &Rng) -> String {
    let names: Vec<&str> = ["a", "b", "c", "d"][..1 + rng.below(4)].to_vec();
    if rng.chance(50) {
        let dual = rng.chance(50);
        let hosts: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| tidy_host(rng, i, n, dual))
            .collect();
        let members: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|_| rng.chance(70))
            .map(|(i, n)| {
                format!(
                    "{n} = {{ address = \"10.99.0.{}\", {} public_key = {:?}, endpoint = \"10.0.{i}.1\" }}",
                    i + 1,
                    if dual { format!("address6 = \"fd00:99::{}\",", i + 1) } else { String::new() },
                    KEYS[i]
                )
            })
            .collect();
        let wireguard = if members.is_empty() {
            String::new()
        } else {
            format!(
                "wireguard.wg0 = {{ network = \"10.99.0.0/24\", {} members = {{ {} }} }},",
                if dual {
                    "network6 = \"fd00:99::/64\","
                } else {
                    ""
                },
                members.join(", ")
            )
        };
        return format!(
            "{{\n  address_sets.admin = [\"10.10.68.0/24\", \"fd00:10:68::/64\"],\n  {wireguard}\n  hosts = {{\n    {}\n  }},\n}}\n",
            hosts.join(",\n    ")
        );
    }
    let hosts: Vec<String> = names.iter().map(|n| host(rng, n)).collect();
    let mut members: Vec<String> = names
        .iter()
        .filter(|_| rng.chance(70))
        .map(|n| {
            format!(
                "{n} = {{ address = {:?}, public_key = {:?}, {}{}{} }}",
                addr4(rng),
                rng.pick(KEYS),
                opt(rng, "address6", format!("{:?}", addr6(rng))),
                opt(rng, "endpoint", format!("{:?}", addr(rng))),
                opt(rng, "routes", format!("[{:?}]", cidr(rng)))
            )
        })
        .collect();
    if rng.chance(30) {
        members.push(format!(
            "laptop = {{ external = true, address = {:?}, public_key = {:?} }}",
            addr4(rng),
            rng.pick(KEYS)
        ));
    }
    let wireguard = if members.is_empty() {
        String::new()
    } else {
        format!(
            "wireguard.wg0 = {{ network = {:?}, {}members = {{ {} }} }},",
            cidr4(rng),
            opt(rng, "network6", format!("{:?}", cidr6(rng))),
            members.join(", ")
        )
    };
    format!(
        "{{\n  address_sets = {{ admin = [{:?}, {:?}], lan = [{:?}] }},\n  {wireguard}\n  hosts = {{\n    {}\n  }},\n}}\n",
        cidr4(rng),
        cidr6(rng),
        cidr(rng),
        hosts.join(",\n    ")
    )
}

#[test]
fn generated_sites_are_checked_located_and_deterministic() {
    let seed = seed();
    let n = iterations(300);
    let results: Vec<Result<bool, String>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let text = generated_site(&rng);
            let dir = schema_project("gen");
            write_site(dir.path(), "gen", &text);
            let project = Project {
                root: dir.path().to_path_buf(),
            };
            // Once checked against the schemas by sitec, once by Nickel's
            // contracts: the same bundles, or the same findings.
            let run = |contracts| {
                let options = Options {
                    contracts,
                    ..Options::default()
                };
                std::panic::catch_unwind(|| project.compile("gen", &options))
                    .map_err(|_| format!("iteration {i} (seed {seed}): panic\n{text}"))
            };
            match (run(Contracts::Sitec)?, run(Contracts::Nickel)?) {
                (Ok(a), Ok(b)) => {
                    let hashes = |c: &sitec::Compiled| {
                        c.bundles.iter().map(|b| b.hash.clone()).collect::<Vec<_>>()
                    };
                    if hashes(&a) != hashes(&b) {
                        return Err(format!("iteration {i} (seed {seed}): two compiles differ\n{text}"));
                    }
                    Ok(true)
                }
                (Err(SiteFailure::Invalid(reports)), Err(SiteFailure::Invalid(by_nickel)))
                    if format!("{reports:?}") != format!("{by_nickel:?}") =>
                {
                    Err(format!(
                        "iteration {i} (seed {seed}): other findings with Nickel's contracts\n{reports:#?}\n{by_nickel:#?}\n{text}"
                    ))
                }
                (Err(SiteFailure::Invalid(reports)), Err(SiteFailure::Invalid(_))) => {
                    match reports.iter().find(|r| r.line.is_none() || r.file.is_none()) {
                        Some(r) => Err(format!(
                            "iteration {i} (seed {seed}): a diagnostic without a location: {r:#?}\n{text}"
                        )),
                        None => Ok(false),
                    }
                }
                (a, _) => Err(format!(
                    "iteration {i} (seed {seed}): unexpected or unstable outcome {a:?}\n{text}"
                )),
            }
        })
        .collect();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let compiled = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert!(
        failures.is_empty(),
        "{} of {n} generated sites went wrong:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "{n} generated sites (seed {seed}): {compiled} compiled, the rest refused with located diagnostics"
    );
    // The generator must reach the renderers, not only the checks.
    assert!(
        compiled * 20 >= n,
        "only {compiled} of {n} generated sites compiled"
    );
}

// ------------------------------------------------------------ address syntax

/// Written forms of one IPv6 address: compressed as Rust prints it, all
/// eight groups, zero-padded, upper case.
fn ipv6_forms(a: std::net::Ipv6Addr) -> Vec<String> {
    let groups = a.segments();
    vec![
        a.to_string(),
        groups
            .iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":"),
        groups
            .iter()
            .map(|g| format!("{g:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
        a.to_string().to_uppercase(),
    ]
}

/// Slips of the pen on a written address: a second `::`, a ninth group, a
/// fifth hex digit, a letter that is not hex, a lost colon, a prefix.
fn slips(rng: &Rng, s: &str) -> Vec<String> {
    let at = char_boundary(s, rng.below(s.len() + 1));
    vec![
        format!("{}::{}", &s[..at], &s[at..]),
        format!("{s}:1"),
        format!("1{s}"),
        format!("{}g{}", &s[..at], &s[at..]),
        s.replacen(':', "", 1),
        format!("{s}/64"),
        format!("{s}:"),
    ]
}

/// The IPv6 contract accepts exactly what the standard library's parser
/// accepts (less the embedded-IPv4 form the schema leaves out): valid
/// addresses in every written form, and their slips, each checked by a
/// compile of a one-host site whose management address it is.
#[test]
fn the_ipv6_contract_agrees_with_the_standard_parser() {
    let seed = seed();
    let rng = Rng::new(seed);
    let mut candidates: Vec<String> = [
        "::",
        "::1",
        "1::",
        "fe80::1",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..iterations(12) {
        // Runs of zero groups, so that `::` lands anywhere.
        let mut groups = [0u16; 8];
        for g in &mut groups {
            if rng.chance(60) {
                *g = (rng.next() & 0xffff) as u16;
            }
        }
        for form in ipv6_forms(std::net::Ipv6Addr::from(groups)) {
            candidates.extend(slips(&rng, &form));
            candidates.push(form);
        }
    }
    candidates.sort();
    candidates.dedup();
    let wrong: Vec<String> = candidates
        .par_iter()
        .filter_map(|c| {
            let standard = c.parse::<std::net::Ipv6Addr>().is_ok() && !c.contains('.');
            let dir = schema_project("ipv6");
            write_site(
                dir.path(),
                "v6",
                &format!("{{ hosts.h.management_address = \"{c}\" }}"),
            );
            let project = Project {
                root: dir.path().to_path_buf(),
            };
            let refused = match project.compile("v6", &Options::default()) {
                Ok(_) => false,
                Err(SiteFailure::Invalid(reports)) => {
                    reports.iter().any(|r| r.code == "nickel::contract")
                }
                Err(e) => return Some(format!("{c}: {e:?}")),
            };
            (standard == refused).then(|| {
                format!(
                    "{c}: the parser {} it, the contract {}",
                    if standard { "takes" } else { "refuses" },
                    if refused { "refuses" } else { "takes" }
                )
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "seed {seed}, {} candidates:\n{}",
        candidates.len(),
        wrong.join("\n")
    );
}
