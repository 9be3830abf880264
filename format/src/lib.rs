//! What sitec's compiler and its host agent must agree on, each defined
//! once: a bundle's canonical listing and hash ([`listing`]), its
//! manifest and the line index generated from it ([`manifest`]), the
//! actions a changed file asks for and the order they run in
//! ([`action`]), what a host runs ([`system`]), and the exit codes of the
//! agent and of `push` ([`exit`]).
//!
//! A leaf: no Nickel, nothing of either side. The compiler writes these
//! structures, the agent reads them, and a change to one is a change of
//! the bundle format (`manifest::FORMAT`) or of the agent protocol
//! (`manifest::AGENT_PROTOCOL`).

pub mod action;
pub mod exit;
pub mod listing;
pub mod manifest;
pub mod system;

pub use action::{Action, Need, Program, Secret, Validator};
pub use listing::{is_sha256_hex, kept_mode, listing, sha256_hex};
pub use manifest::{
    AGENT_PROTOCOL, Deploy, FORMAT, Index, IndexFile, IndexSecret, Manifest, ManifestFile, Mode,
    Pull, System,
};
pub use system::{Ifupdown, Release, Role, UnitState};
