//! Stage 3: checks that a contract cannot express alone, across fields and
//! hosts. Each check lives in its own file named after its stable code
//! (`wg::duplicate-key` → `wg_duplicate_key.rs`), documented in the form
//! "What it catches / Why it matters / Example"; `sitec explain` and
//! DIAGNOSTICS.md are generated from those comments. All checks run, and
//! every finding is reported together, sorted by file and line.

use crate::diagnostic::{self, Diagnostic};
use crate::model::Site;

mod age;
pub(crate) mod facts;

/// A check: reads the site, appends what it finds.
type Check = fn(&Site, &mut Vec<Diagnostic>);

/// One registered check: its code, its function and its source file (whose
/// leading `//!` comment is its explanation).
struct Registered {
    code: &'static str,
    check: Check,
    source: &'static str,
    /// Read by the test that ties file names to codes.
    #[cfg_attr(not(test), allow(dead_code))]
    module: &'static str,
}

// The modules are declared here, not inside `checks!`, so that rustfmt and
// every other tool sees their files.
mod addr_duplicate;
mod addr_gateway_outside_subnet;
mod addr_method_address;
mod addr_overlapping_subnets;
mod addr_unknown_interface;
mod apt_duplicate_file;
mod firewall_dnat_unroutable;
mod firewall_duplicate_dnat;
mod firewall_duplicate_port;
mod firewall_forwarding_off;
mod firewall_lockout;
mod firewall_loopback_first;
mod firewall_never_matches;
mod firewall_shadowed_rule;
mod firewall_tunnel_source;
mod firewall_unknown_set;
mod kernel_cmdline_root;
mod nginx_backend_unroutable;
mod nginx_duplicate_server_name;
mod nginx_http3_version;
mod nginx_http3_without_tls;
mod nginx_udp_only;
mod ports_conflict;
mod samba_duplicate_share;
mod samba_refquota;
mod secrets_private_key;
mod secrets_recipient;
mod secrets_unread;
mod site_no_hosts;
mod ssh_lockout;
mod systemd_duplicate_unit;
mod systemd_masked_and_started;
mod systemd_service_kind;
mod wg_address_outside_mesh;
mod wg_allowed_ips_overlap;
mod wg_duplicate_address;
mod wg_duplicate_key;
mod wg_unknown_host;
mod zaino_grpc_tls;
mod zaino_public_validator;
mod zaino_shard_amount;
mod zaino_validator_cookie;

/// Registers the checks: code, function and source of each module.
macro_rules! checks {
    ($($module:ident),* $(,)?) => {
        /// Every check, in a fixed order.
        const CHECKS: &[Registered] = &[$(Registered {
            code: $module::CODE,
            check: $module::check,
            source: include_str!(concat!(stringify!($module), ".rs")),
            module: stringify!($module),
        }),*];
    };
}

checks!(
    addr_duplicate,
    apt_duplicate_file,
    addr_gateway_outside_subnet,
    addr_method_address,
    addr_overlapping_subnets,
    addr_unknown_interface,
    firewall_duplicate_dnat,
    firewall_duplicate_port,
    firewall_forwarding_off,
    firewall_dnat_unroutable,
    firewall_lockout,
    firewall_loopback_first,
    firewall_never_matches,
    firewall_shadowed_rule,
    firewall_tunnel_source,
    firewall_unknown_set,
    kernel_cmdline_root,
    nginx_backend_unroutable,
    nginx_duplicate_server_name,
    nginx_http3_version,
    nginx_http3_without_tls,
    nginx_udp_only,
    ports_conflict,
    samba_duplicate_share,
    samba_refquota,
    secrets_private_key,
    secrets_recipient,
    secrets_unread,
    site_no_hosts,
    ssh_lockout,
    systemd_duplicate_unit,
    systemd_masked_and_started,
    systemd_service_kind,
    wg_address_outside_mesh,
    wg_allowed_ips_overlap,
    wg_duplicate_address,
    wg_duplicate_key,
    wg_unknown_host,
    zaino_grpc_tls,
    zaino_public_validator,
    zaino_shard_amount,
    zaino_validator_cookie,
);

/// Runs every check and returns the findings sorted by source position.
pub(crate) fn run(site: &Site) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for registered in CHECKS {
        (registered.check)(site, &mut found);
    }
    diagnostic::sort(&mut found, &site.sources);
    found
}

/// Codes reported outside the checks (Nickel's errors, and internal errors
/// that mean a gap in sitec); documented here so that every code an operator
/// can see has an explanation.
const OTHER_CODES: &[(&str, &str)] = &[
    (
        "schema::unknown-field",
        "What it catches: a field that the schema of its record does not have, most often \
         a misspelt one; reported at the field's name with the closest field the record \
         has (`did you mean ...?`), or every field it has when none is close.\n\n\
         Why it matters: the records of a site are closed: a field sitec does not know \
         would otherwise be silently ignored, and the setting meant would not be made.\n\n\
         Example: `masquarade_via = \"vmbr0\"` on a bridge, meant as `masquerade_via`.",
    ),
    (
        "io::error",
        "What it catches: a site file, the schemas or the `--keys` directory that cannot be \
         read (missing, unreadable), reported with exit code 2.\n\n\
         Why it matters: sitec compiles nothing rather than part of a site.\n\n\
         Example: `sitec check homelb` when the folder is `sites/homelab`.",
    ),
    (
        "internal::model",
        "What it catches: an evaluated site that passed the schema's contracts but does not \
         fit sitec's typed model.\n\n\
         Why it matters: it means a contract in `schemas/` is weaker than the model; nothing \
         is rendered, so nothing wrong is deployed. Please report it with the site.\n\n\
         Example: none known; the robustness tests look for one.",
    ),
    (
        "internal::render",
        "What it catches: a renderer that failed on a site every check accepted.\n\n\
         Why it matters: it means a check is missing; nothing is written. Please report it \
         with the site.\n\n\
         Example: none known; the robustness tests look for one.",
    ),
    (
        "nickel::contract",
        "What it catches: a value that breaks a contract of `schemas/`: a malformed address, a \
         port out of range, a name with characters that could break a generated file, an enum \
         tag that does not exist, a field the schema does not know.\n\n\
         Why it matters: every string that reaches a generated file passes a contract that \
         refuses what could break out of that file's syntax (newlines, quotes, `;`, `{`, `}`, \
         `#`, control characters), so a typo is caught at its line instead of on the host.\n\n\
         Example: `address = \"10.99.0.300\"` (an octet above 255).",
    ),
    (
        "nickel::missing-field",
        "What it catches: a field the schema requires but the site does not set.\n\n\
         Why it matters: sitec has no default for it (a host's `management_address`, a \
         member's `public_key`), and guessing one would deploy a wrong file.\n\n\
         Example: `hosts.nas = { roles = ['fileserver] }` without `management_address`.",
    ),
    (
        "nickel::parse",
        "What it catches: a site file that is not valid Nickel syntax.\n\n\
         Why it matters: nothing can be checked before the file parses.\n\n\
         Example: a missing `,` between two fields of a record.",
    ),
    (
        "nickel::type",
        "What it catches: a static type error in a typed block of the site.\n\n\
         Why it matters: the expression cannot evaluate to what its annotation states.\n\n\
         Example: `(1 + \"a\" : Number)`.",
    ),
    (
        "nickel::import",
        "What it catches: an `import` of a file that does not exist or cannot be read.\n\n\
         Why it matters: the site is incomplete without it.\n\n\
         Example: `import \"../../schemas/sites.ncl\"` (a typo in the file name).",
    ),
    (
        "nickel::eval",
        "What it catches: any other evaluation error: an infinite recursion (an import \
         cycle, a field defined by itself), a field access on a missing field, a function \
         applied to the wrong value.\n\n\
         Why it matters: the site has no value to compile.\n\n\
         Example: `a.nic` where the record `a` has no field `nic`; or `ssh = ssh` in a host \
         meant to take a `let ssh = ...` of the file: inside a record, a field's own name \
         refers to the field, so the `let` needs another name (`let admin_ssh = ...`).",
    ),
];

/// The explanation of every code: the checks' comments and the load codes,
/// sorted by code.
pub(crate) fn explanations() -> Vec<(&'static str, String)> {
    let mut all: Vec<(&'static str, String)> = CHECKS
        .iter()
        .map(|r| (r.code, doc_comment(r.source)))
        .chain(OTHER_CODES.iter().map(|(c, t)| (*c, t.to_string())))
        .collect();
    all.sort();
    all
}

/// Mistakes the site language cannot express at all, so no check is needed;
/// listed in DIAGNOSTICS.md so a reader looking for the check finds why.
const BY_CONSTRUCTION: &[&str] = &[
    "A WireGuard key that is not base64 of 32 bytes: `public_key` has the `WgKey` contract \
     (43 base64 characters and `=`, with the last character's unused bits zero) → `nickel::contract`.",
    "A member with an endpoint but no port: the endpoint is a host name or address without a \
     port, and the port is the member's `port` or the mesh's `port` (default 51820).",
    "A host in a mesh without a private key path: `private_key_file` defaults to \
     `/etc/wireguard/<mesh>.key`, and the manifest lists it as a required secret.",
    "A firewall that drops its own WireGuard port: nftables.conf admits each mesh's port \
     before the site's input rules, from the same value that drives `ListenPort`.",
    "A TLS virtual host without a certificate or key: `tls` requires both paths \
     → `nickel::missing-field`.",
    "Two Time Machine sizes: the share's `quota` writes both `fruit:time machine max size` and \
     the dataset's `refquota`; stating the refquota again is `samba::refquota`.",
    "An invalid unit name: unit names have the `UnitName` contract → `nickel::contract`.",
    "A container without a fixed UID/GID: `uid` and `gid` are required fields of every \
     container → `nickel::missing-field`.",
    "A private key's value in a field: no field of the schema takes one; keys are paths to \
     files on the host. A pasted key anywhere is `secrets::private-key`.",
    "A string that breaks out of its file's syntax: every string that reaches a file has a \
     contract refusing newlines, quotes, `;`, `{`, `}`, `#`, `[`, `]`, `\\`, NUL and other \
     control characters, and bounding its length → `nickel::contract`.",
];

/// DIAGNOSTICS.md: every code with its explanation.
pub(crate) fn markdown() -> String {
    let mut out = String::from(
        "# sitec diagnostics\n\n\
         Generated by `sitec explain --all`; a test fails when this file is out of date.\n\
         Each code is stable. `sitec explain CODE` prints one entry.\n\n\
         ## Impossible by construction\n\n\
         These mistakes cannot be written in the site language, so no check looks for them:\n\n",
    );
    for item in BY_CONSTRUCTION {
        out.push_str(&format!("- {item}\n"));
    }
    for (code, text) in explanations() {
        out.push_str(&format!("\n## `{code}`\n\n{text}\n"));
    }
    out
}

/// The leading `//!` comment of a check's source, without the code line.
fn doc_comment(source: &str) -> String {
    let lines: Vec<&str> = source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""))
        .skip(1)
        .skip_while(|l| l.is_empty())
        .collect();
    lines.join("\n").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wg_duplicate_key` → `wg::duplicate-key`.
    fn code_of(module: &str) -> String {
        let (domain, rest) = module.split_once('_').unwrap();
        format!("{domain}::{}", rest.replace('_', "-"))
    }

    #[test]
    fn every_check_is_named_after_its_code_and_documented() {
        for r in CHECKS {
            assert_eq!(r.code, code_of(r.module), "file name of {}", r.code);
            let first = r.source.lines().next().unwrap();
            assert_eq!(first, format!("//! `{}`", r.code), "first doc line");
            let doc = doc_comment(r.source);
            for part in ["What it catches: ", "Why it matters: ", "Example: "] {
                assert!(doc.contains(part), "{} lacks `{part}`:\n{doc}", r.code);
            }
        }
    }

    /// A check file declared as a module but not registered would never run.
    #[test]
    fn every_check_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/src/check");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|f| f.strip_suffix(".rs").map(str::to_string))
            // The helpers of several checks, or of one that reads a format.
            .filter(|m| !["mod", "facts", "age"].contains(&m.as_str()))
            .collect();
        files.sort();
        let mut registered: Vec<&str> = CHECKS.iter().map(|r| r.module).collect();
        registered.sort();
        assert_eq!(files, registered);
    }

    #[test]
    fn codes_are_unique() {
        let all = explanations();
        let mut codes: Vec<_> = all.iter().map(|(c, _)| *c).collect();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
