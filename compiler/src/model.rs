//! Stage 2: the typed site. Deserialized with serde from the evaluated tree;
//! the tree itself stays beside it so checks can find the span of any value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) use sitec_format::{Ifupdown, Release, Role, UnitState};

use crate::load::{Loaded, PrivateKey};
use crate::tree::{Node, Sources};

/// A site: its name (the folder under `sites/`), its typed content, and the
/// evaluated tree with source spans.
#[derive(Debug)]
pub(crate) struct Site {
    pub(crate) name: String,
    pub(crate) spec: SiteSpec,
    pub(crate) root: Node,
    pub(crate) sources: Sources,
    /// WireGuard private keys from `--keys DIR` as (file name, key): no
    /// string of the site may equal one of them.
    pub(crate) private_keys: Vec<PrivateKey>,
}

impl crate::tree::Spanned for Site {
    fn root(&self) -> &Node {
        &self.root
    }

    fn sources(&self) -> &Sources {
        &self.sources
    }
}

impl Site {
    pub(crate) fn from_loaded(
        name: &str,
        loaded: Loaded,
        private_keys: Vec<PrivateKey>,
    ) -> Result<Site, String> {
        let spec: SiteSpec =
            serde_json::from_value(loaded.root.to_json()).map_err(|e| e.to_string())?;
        Ok(Site {
            name: name.to_string(),
            spec,
            root: loaded.root,
            sources: loaded.sources,
            private_keys,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteSpec {
    pub(crate) address_sets: BTreeMap<String, Vec<String>>,
    pub(crate) wireguard: BTreeMap<String, Mesh>,
    pub(crate) hosts: BTreeMap<String, Host>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mesh {
    pub(crate) network: String,
    pub(crate) network6: Option<String>,
    pub(crate) port: u16,
    pub(crate) mtu: Option<u32>,
    pub(crate) members: BTreeMap<String, Member>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Member {
    pub(crate) address: String,
    pub(crate) address6: Option<String>,
    pub(crate) public_key: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) external: bool,
    pub(crate) private_key_file: Option<String>,
    pub(crate) routes: Vec<String>,
    pub(crate) keepalive: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Host {
    pub(crate) roles: Vec<Role>,
    pub(crate) release: Release,
    pub(crate) ifupdown: Ifupdown,
    pub(crate) management_address: String,
    pub(crate) deploy: Deploy,
    /// The host's ssh host public keys (`ssh-ed25519 AAAA... comment`).
    pub(crate) ssh_host_keys: Vec<String>,
    /// Secrets committed encrypted, by their path on the host.
    pub(crate) secrets: BTreeMap<String, SiteSecret>,
    pub(crate) interfaces: BTreeMap<String, Interface>,
    pub(crate) bridges: BTreeMap<String, Bridge>,
    pub(crate) firewall: Option<Firewall>,
    pub(crate) samba: Option<Samba>,
    pub(crate) zaino: Option<Zaino>,
    pub(crate) nginx: Option<Nginx>,
    pub(crate) ssh: Option<Ssh>,
    pub(crate) time: Option<Time>,
    pub(crate) apt: Option<Apt>,
    pub(crate) units: Units,
    pub(crate) kernel: Kernel,
    pub(crate) sysctl: BTreeMap<String, serde_json::Value>,
    pub(crate) zfs: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Deploy {
    pub(crate) address: Option<String>,
    pub(crate) user: String,
    pub(crate) port: u16,
    pub(crate) boot_confirm_timeout: u32,
    pub(crate) pull: Option<Pull>,
}

/// A secret committed with the site (`hosts.H.secrets.PATH`): its content
/// encrypted with age, armored, to the host's ssh host key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteSecret {
    pub(crate) age: String,
}

/// Pull mode (`deploy.pull`): where the host fetches its signed releases,
/// how often, how long a pulled bundle has to pass the health checks, and
/// whose signatures it accepts (name → ssh public key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pull {
    pub(crate) url: String,
    pub(crate) interval: u32,
    pub(crate) confirm_timeout: u32,
    pub(crate) signers: BTreeMap<String, String>,
}

/// The lowest SMB dialect Samba accepts (`server min protocol`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmbProtocol {
    #[serde(rename = "SMB3")]
    Smb3,
    #[serde(rename = "SMB3_11")]
    Smb3_11,
}

impl SmbProtocol {
    /// As smb.conf spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SmbProtocol::Smb3 => "SMB3",
            SmbProtocol::Smb3_11 => "SMB3_11",
        }
    }
}

/// When Samba maps a login to the guest account (`map to guest`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapToGuest {
    Never,
    #[serde(rename = "Bad_User")]
    BadUser,
}

impl MapToGuest {
    /// As smb.conf spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MapToGuest::Never => "Never",
            MapToGuest::BadUser => "Bad User",
        }
    }
}

/// Where vfs_fruit keeps resource forks (`fruit:resource`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FruitResource {
    Xattr,
    File,
    Stream,
}

impl FruitResource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FruitResource::Xattr => "xattr",
            FruitResource::File => "file",
            FruitResource::Stream => "stream",
        }
    }
}

/// vfs_fruit's locking (`fruit:locking`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FruitLocking {
    None,
    Netatalk,
}

impl FruitLocking {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FruitLocking::None => "none",
            FruitLocking::Netatalk => "netatalk",
        }
    }
}

/// The Zcash network a Zaino indexer serves.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZcashNetwork {
    Mainnet,
    Testnet,
    Regtest,
}

impl ZcashNetwork {
    /// As zindexer.toml spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ZcashNetwork::Mainnet => "Mainnet",
            ZcashNetwork::Testnet => "Testnet",
            ZcashNetwork::Regtest => "Regtest",
        }
    }
}

/// Which Zaino build runs: the official one, or one that serves gRPC
/// without TLS (read by `zaino::grpc-tls`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ZainoBuild {
    Official,
    UnencryptedTraffic,
}

/// A container's Docker network mode.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DockerNetwork {
    Bridge,
    Host,
}

impl DockerNetwork {
    /// As `docker run --network` takes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DockerNetwork::Bridge => "bridge",
            DockerNetwork::Host => "host",
        }
    }
}

/// A service's restart policy.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Restart {
    Always,
    OnFailure,
    No,
}

impl Restart {
    /// As systemd's `Restart=` spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::No => "no",
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    Manual,
    Static,
    Dhcp,
}

/// How an interface gets its IPv6 address (`method6`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method6 {
    Static,
    /// SLAAC from router advertisements.
    Auto,
    /// DHCPv6.
    Dhcp,
}

impl Method6 {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method6::Static => "static",
            Method6::Auto => "auto",
            Method6::Dhcp => "dhcp",
        }
    }

    /// The method an interface or bridge has: the one it names, else
    /// `'static` when it has an IPv6 address, else none (no inet6 stanza).
    pub(crate) fn effective(method6: Option<Method6>, address6: Option<&str>) -> Option<Method6> {
        method6.or(address6.map(|_| Method6::Static))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Interface {
    pub(crate) method: Method,
    pub(crate) address: Option<String>,
    pub(crate) gateway: Option<String>,
    pub(crate) method6: Option<Method6>,
    pub(crate) address6: Option<String>,
    pub(crate) gateway6: Option<String>,
    pub(crate) mtu: Option<u32>,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bridge {
    pub(crate) address: Option<String>,
    pub(crate) gateway: Option<String>,
    pub(crate) method6: Option<Method6>,
    pub(crate) address6: Option<String>,
    pub(crate) gateway6: Option<String>,
    pub(crate) ports: Vec<String>,
    pub(crate) stp: bool,
    pub(crate) forward_delay: u32,
    pub(crate) masquerade_via: Option<String>,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Proto {
    Any,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Accept,
    Drop,
    Reject,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Policy {
    Accept,
    Drop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) iface: Option<String>,
    pub(crate) oiface: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) destination: Option<String>,
    pub(crate) proto: Proto,
    pub(crate) ports: Vec<u16>,
    pub(crate) action: Action,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Chain {
    pub(crate) policy: Policy,
    pub(crate) rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub(crate) enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dnat {
    pub(crate) iface: Option<String>,
    pub(crate) proto: L4,
    pub(crate) port: u16,
    pub(crate) to: String,
    pub(crate) to_port: Option<u16>,
    pub(crate) source: Option<String>,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Masquerade {
    pub(crate) oiface: String,
    pub(crate) source: Option<String>,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Firewall {
    pub(crate) input: Chain,
    pub(crate) forward: Chain,
    pub(crate) output: Chain,
    pub(crate) dnat: Vec<Dnat>,
    pub(crate) masquerade: Vec<Masquerade>,
}

/// Kernel modules and command line (`kernel`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kernel {
    pub(crate) modules: Vec<String>,
    pub(crate) options: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    pub(crate) blacklist: Vec<String>,
    pub(crate) cmdline: Vec<String>,
    pub(crate) bootloader: Bootloader,
}

/// How a host boots, which says where its kernel command line lives.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Bootloader {
    Grub,
    SystemdBoot,
}

/// chrony's sources (`time`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Time {
    pub(crate) servers: Vec<String>,
    pub(crate) pools: Vec<String>,
}

/// apt's repositories (`apt`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Apt {
    pub(crate) sources: BTreeMap<String, AptSource>,
    pub(crate) disabled: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AptSource {
    pub(crate) types: Vec<AptType>,
    pub(crate) uris: Vec<String>,
    pub(crate) suites: Vec<String>,
    pub(crate) components: Vec<String>,
    pub(crate) signed_by: String,
    pub(crate) architectures: Option<Vec<String>>,
}

/// What an apt source holds: binary or source packages.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AptType {
    Deb,
    DebSrc,
}

impl AptType {
    /// As deb822's `Types` field spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AptType::Deb => "deb",
            AptType::DebSrc => "deb-src",
        }
    }
}

/// sshd's settings (`ssh`): sitec's drop-in and the authorized keys files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ssh {
    pub(crate) ports: Vec<u16>,
    pub(crate) listen_addresses: Vec<String>,
    pub(crate) root_login: RootLogin,
    pub(crate) password_authentication: bool,
    pub(crate) allow_users: Option<Vec<String>>,
    pub(crate) authorized_keys: BTreeMap<String, Vec<String>>,
    pub(crate) home_keys: bool,
}

/// Whether root may log in over ssh (`PermitRootLogin`).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RootLogin {
    KeysOnly,
    No,
}

impl RootLogin {
    /// As sshd_config spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RootLogin::KeysOnly => "prohibit-password",
            RootLogin::No => "no",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeMachine {
    pub(crate) path: String,
    pub(crate) dataset: String,
    pub(crate) users: Vec<String>,
    pub(crate) quota: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Share {
    pub(crate) path: String,
    pub(crate) users: Vec<String>,
    pub(crate) read_only: bool,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Samba {
    pub(crate) workgroup: String,
    pub(crate) server_string: String,
    pub(crate) min_protocol: SmbProtocol,
    pub(crate) netbios: bool,
    pub(crate) map_to_guest: MapToGuest,
    pub(crate) fruit_resource: FruitResource,
    pub(crate) fruit_locking: FruitLocking,
    pub(crate) dfs: bool,
    pub(crate) unit_states: BTreeMap<String, UnitState>,
    pub(crate) time_machine: BTreeMap<String, TimeMachine>,
    pub(crate) shares: BTreeMap<String, Share>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    pub(crate) certificate: String,
    pub(crate) key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZainoGrpc {
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<Tls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZainoJsonRpc {
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) cookie_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZainoValidator {
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) cookie_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZainoStorage {
    pub(crate) db_path: String,
    pub(crate) db_size_gb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZainoContainer {
    pub(crate) image: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Zaino {
    pub(crate) network: ZcashNetwork,
    pub(crate) build: ZainoBuild,
    pub(crate) grpc: ZainoGrpc,
    pub(crate) json_rpc: Option<ZainoJsonRpc>,
    pub(crate) validator: ZainoValidator,
    pub(crate) storage: ZainoStorage,
    pub(crate) map_shard_amount: Option<u64>,
    pub(crate) map_capacity: Option<u64>,
    pub(crate) container: ZainoContainer,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backend {
    pub(crate) address: String,
    pub(crate) port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vhost {
    pub(crate) server_names: Vec<String>,
    pub(crate) listen_address: Option<String>,
    pub(crate) tls: Option<Tls>,
    pub(crate) http2: bool,
    pub(crate) http3: bool,
    pub(crate) backends: Vec<Backend>,
    pub(crate) max_body_size: Option<String>,
    pub(crate) websockets: bool,
    pub(crate) timeouts: Option<Timeouts>,
}

/// Proxy timeouts of a virtual host, as NGINX spells durations.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Timeouts {
    pub(crate) connect: Option<String>,
    pub(crate) read: Option<String>,
    pub(crate) send: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stream {
    pub(crate) proto: L4,
    pub(crate) listen_address: Option<String>,
    pub(crate) port: u16,
    pub(crate) backend: Backend,
    pub(crate) timeout: Option<String>,
    pub(crate) responses: Option<u32>,
    pub(crate) proxy_protocol: bool,
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Nginx {
    /// `MAJOR.MINOR`, when the host's nginx is not its release's
    /// ([`Nginx::version`]).
    pub(crate) version: Option<String>,
    pub(crate) worker_connections: u32,
    pub(crate) refuse_unknown_hosts: bool,
    pub(crate) max_body_size: Option<String>,
    pub(crate) vhosts: BTreeMap<String, Vhost>,
    pub(crate) streams: Vec<Stream>,
}

impl Nginx {
    /// The nginx version on a host of this release, as `(MAJOR, MINOR)`:
    /// `version` when the site gives one, else the release's. The contract
    /// guarantees the shape of `version`.
    pub(crate) fn version(&self, release: Release) -> (u32, u32) {
        let text = self.version.as_deref().unwrap_or(release.nginx());
        text.split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .unwrap_or((0, 0))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Exec {
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) user: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Volume {
    pub(crate) host: String,
    pub(crate) container: String,
    pub(crate) read_only: bool,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Publish {
    pub(crate) host: u16,
    pub(crate) container: u16,
    pub(crate) proto: L4,
    pub(crate) address: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Container {
    pub(crate) image: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) volumes: Vec<Volume>,
    pub(crate) ports: Vec<Publish>,
    pub(crate) network: DockerNetwork,
    pub(crate) args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Service {
    pub(crate) description: String,
    pub(crate) exec: Option<Exec>,
    pub(crate) container: Option<Container>,
    pub(crate) after: Vec<String>,
    pub(crate) restart: Restart,
    pub(crate) state: UnitState,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Units {
    pub(crate) services: BTreeMap<String, Service>,
    pub(crate) states: BTreeMap<String, UnitState>,
}

impl Firewall {
    /// The filter chains with their names, in the order nftables.conf has them.
    pub(crate) fn chains(&self) -> [(&'static str, &Chain); 3] {
        [
            ("input", &self.input),
            ("forward", &self.forward),
            ("output", &self.output),
        ]
    }
}

impl Mesh {
    /// The member that is the host `host` (it receives a bundle), if any.
    pub(crate) fn host_member(&self, host: &str) -> Option<&Member> {
        self.members.get(host).filter(|m| !m.external)
    }
}

impl Member {
    /// Where the member's private key is on its host (a secret): its
    /// `private_key_file`, else `/etc/wireguard/<mesh>.key`.
    pub(crate) fn key_file(&self, mesh_name: &str) -> String {
        self.private_key_file
            .clone()
            .unwrap_or_else(|| format!("/etc/wireguard/{mesh_name}.key"))
    }
}

impl Host {
    /// The address `push` connects to.
    pub(crate) fn deploy_address(&self) -> &str {
        self.deploy
            .address
            .as_deref()
            .unwrap_or(&self.management_address)
    }
}
