//! Stage 5: a host's rendered files and its manifest become a bundle; the
//! canonical listing of the bundle gives its hash. A bundle is configuration
//! only: the host agent that applies it travels apart (`push`), and the
//! manifest names the agent protocol it needs (`manifest::AGENT_PROTOCOL`).
//!
//! Canonical listing (docs/host-protocol.md): for every regular file except `BUNDLE`,
//! sorted by path bytewise, `<mode> <sha256 hex> <path>\n`, where the mode is
//! what git keeps (`0755` executable, `0644` otherwise), so a fresh clone of
//! out/ verifies. The bundle hash is the sha256 of the listing.

use std::collections::BTreeMap;

use crate::hash::sha256_hex;
use crate::model::Host;
use crate::render::HostOutput;
pub(crate) use sitec_format::{kept_mode, listing};

pub(crate) mod manifest;

use manifest::{Deploy, Manifest, ManifestFile, Mode};

/// A file of a bundle: mode and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub mode: u32,
    pub content: Vec<u8>,
}

/// A host and the hash of its bundle (its `BUNDLE` file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostHash {
    pub host: String,
    pub hash: String,
}

/// The bundles of a site as files, read back from `out/` (what `plan`
/// compares with): host -> path -> file.
pub type BaseSite = BTreeMap<String, BTreeMap<String, BundleFile>>;

/// One host's bundle, ready to write to `out/<site>/<host>/`.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub host: String,
    /// Every file including `BUNDLE`, by path relative to the bundle.
    pub files: BTreeMap<String, BundleFile>,
    pub hash: String,
}

/// Assembles a host's bundle.
pub(crate) fn build(site: &str, host_name: &str, host: &Host, out: HostOutput) -> Bundle {
    let manifest = Manifest {
        deploy: Deploy {
            address: host.deploy_address().to_string(),
            port: host.deploy.port,
            user: host.deploy.user.clone(),
            boot_confirm_timeout: host.deploy.boot_confirm_timeout,
            pull: host.deploy.pull.as_ref().map(|p| manifest::Pull {
                confirm_timeout: p.confirm_timeout,
                interval: p.interval,
                // The allowed-signers line of ssh-keygen has no comment.
                signers: p
                    .signers
                    .iter()
                    .map(|(name, key)| {
                        let key: Vec<&str> = key.split(' ').take(2).collect();
                        (name.clone(), key.join(" "))
                    })
                    .collect(),
                url: p.url.trim_end_matches('/').to_string(),
            }),
        },
        files: out
            .files
            .iter()
            .map(|f| {
                let entry = ManifestFile {
                    actions: f.actions.clone(),
                    validator: f.validator,
                    mode: Mode(f.mode),
                    network: f.network,
                    sha256: sha256_hex(f.content.as_bytes()),
                };
                (f.path.clone(), entry)
            })
            .collect(),
        agent_protocol: manifest::AGENT_PROTOCOL,
        format: manifest::FORMAT,
        host: host_name.to_string(),
        needs: out.needs.into_iter().collect(),
        roles: host.roles.clone(),
        secrets: out.secrets.into_iter().collect(),
        site: site.to_string(),
        system: manifest::System {
            ifupdown: host.ifupdown,
            release: host.release,
        },
        units: out.units,
    };
    let file = |mode: u32, content: Vec<u8>| BundleFile {
        mode: kept_mode(mode),
        content,
    };
    let mut files: BTreeMap<String, BundleFile> = out
        .files
        .into_iter()
        .map(|f| (f.path, file(f.mode, f.content.into_bytes())))
        .chain(
            out.encrypted
                .into_iter()
                .map(|(path, text)| (path, file(0o644, text.into_bytes()))),
        )
        .collect();
    files.insert(
        "manifest.json".into(),
        file(0o644, manifest.to_json().into_bytes()),
    );
    files.insert("index".into(), file(0o644, manifest.index().into_bytes()));
    sealed(host_name, files)
}

/// The bundle of `files`: their listing's hash, written as `BUNDLE` too.
fn sealed(host: &str, mut files: BTreeMap<String, BundleFile>) -> Bundle {
    let hash = sha256_hex(
        listing(
            files
                .iter()
                .map(|(p, f)| (p.as_str(), f.mode, f.content.as_slice())),
        )
        .as_bytes(),
    );
    files.insert(
        "BUNDLE".into(),
        BundleFile {
            mode: kept_mode(0o644),
            content: format!("{hash}\n").into_bytes(),
        },
    );
    Bundle {
        host: host.to_string(),
        files,
        hash,
    }
}

/// The external members' configurations as one more directory of the
/// site's output (`render::EXTERNAL`): written, compared, cached and
/// planned like a host's bundle, with a `BUNDLE` hash of its listing but
/// no manifest or index, since nothing deploys it.
pub(crate) fn external(files: BTreeMap<String, String>) -> Bundle {
    let files = files
        .into_iter()
        .map(|(p, c)| {
            let f = BundleFile {
                mode: kept_mode(0o644),
                content: c.into_bytes(),
            };
            (p, f)
        })
        .collect();
    sealed(crate::render::EXTERNAL, files)
}
