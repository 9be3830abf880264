//! What a host runs and what it is for, as the site says and the bundle
//! records: the host agent refuses a bundle written for another release or
//! ifupdown, and sets each unit to its state.

use serde::{Deserialize, Serialize};

/// What a host is for (`roles`): recorded in its bundle's manifest.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Hypervisor,
    Fileserver,
    ZcashNode,
    LoadBalancer,
    Workload,
}

/// The Debian release a host runs (`release`): what its daemons parse.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    /// Debian 12 "bookworm" (Proxmox VE 8).
    #[default]
    Debian12,
    /// Debian 13 "trixie" (Proxmox VE 9).
    Debian13,
}

impl Release {
    pub fn as_str(self) -> &'static str {
        match self {
            Release::Debian12 => "debian12",
            Release::Debian13 => "debian13",
        }
    }

    /// How people name it.
    pub fn name(self) -> &'static str {
        match self {
            Release::Debian12 => "Debian 12 (bookworm)",
            Release::Debian13 => "Debian 13 (trixie)",
        }
    }

    /// The nginx version the release ships, as `MAJOR.MINOR`.
    pub fn nginx(self) -> &'static str {
        match self {
            Release::Debian12 => "1.22",
            Release::Debian13 => "1.26",
        }
    }
}

/// Which ifupdown applies a host's `/etc/network/interfaces` (`ifupdown`).
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum Ifupdown {
    /// Debian's default, package ifupdown: `ifup`/`ifdown`.
    #[default]
    Classic,
    /// ifupdown2, as Proxmox VE runs it: `ifreload -a`.
    Ifupdown2,
}

impl Ifupdown {
    pub fn as_str(self) -> &'static str {
        match self {
            Ifupdown::Classic => "classic",
            Ifupdown::Ifupdown2 => "ifupdown2",
        }
    }
}

#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnitState {
    Enabled,
    Disabled,
    Masked,
}

impl UnitState {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitState::Enabled => "enabled",
            UnitState::Disabled => "disabled",
            UnitState::Masked => "masked",
        }
    }
}
