//! The state directory's files: one place. Their table (what each holds,
//! who writes it, whether it is synced) is `docs/host-protocol.md`, "On
//! the host"; `tests/layout.rs` holds every path here to a row of it.
//!
//! A managed path `P` (say `etc/nginx/nginx.conf`) is the link `/P ->
//! /var/lib/sitec/current/P`, so one rename of `current` changes every file.

use std::path::{Path, PathBuf};

use crate::index::Gen;

/// sitec's state directory on a host: no bundle may manage a path in it,
/// whichever directory a check off the host keeps its own state in.
pub const HOST_STATE: &str = "/var/lib/sitec";

#[derive(Clone, Debug)]
pub struct Layout {
    pub state: PathBuf,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            state: PathBuf::from(HOST_STATE),
        }
    }
}

impl Layout {
    pub fn store(&self) -> PathBuf {
        self.state.join("store")
    }
    pub fn store_copy(&self, name: &str) -> PathBuf {
        self.store().join(name)
    }
    pub fn generations(&self) -> PathBuf {
        self.state.join("generations")
    }
    pub fn generation(&self, g: Gen) -> PathBuf {
        self.generations().join(g.0.to_string())
    }
    pub fn current(&self) -> PathBuf {
        self.state.join("current")
    }
    pub fn backup(&self) -> PathBuf {
        self.state.join("backup")
    }
    pub fn backup_index(&self) -> PathBuf {
        self.backup().join("index")
    }
    /// Generation 0's copy of managed path `p` (relative, `etc/...`).
    pub fn backup_file(&self, p: &Path) -> PathBuf {
        self.backup().join("files").join(p)
    }
    pub fn journal(&self) -> PathBuf {
        self.state.join("journal")
    }
    pub fn armed(&self) -> PathBuf {
        self.state.join("armed")
    }
    pub fn results(&self) -> PathBuf {
        self.state.join("results")
    }
    pub fn result(&self, g: Gen) -> PathBuf {
        self.results().join(g.0.to_string())
    }
    pub fn secrets(&self) -> PathBuf {
        self.state.join("secrets")
    }
    /// Generation `g`'s copy of its secrets.
    pub fn kept_secrets(&self, g: Gen) -> PathBuf {
        self.secrets().join(g.0.to_string())
    }
    /// The secrets push staged (or the check decrypted) for store copy `name`.
    pub fn staged_secrets(&self, name: &str) -> PathBuf {
        self.secrets().join(format!(".incoming-{name}"))
    }
    pub fn booted(&self) -> PathBuf {
        self.state.join("booted")
    }
    pub fn boot_good(&self) -> PathBuf {
        self.state.join("boot-good")
    }
    pub fn boot_files(&self) -> PathBuf {
        self.state.join("boot-files")
    }
    pub fn boot_armed(&self) -> PathBuf {
        self.state.join("boot-armed")
    }
    pub fn boot_rolled_back(&self) -> PathBuf {
        self.state.join("boot-rolled-back")
    }
    /// Root's alone.
    pub fn private(&self) -> PathBuf {
        self.state.join("private")
    }
    /// Pull mode's state.
    pub fn pull(&self) -> PathBuf {
        self.state.join("pull")
    }
    /// Where managed path `p` is on the host (`/etc/...`).
    pub fn host_path(p: &Path) -> PathBuf {
        Path::new("/").join(p)
    }
    /// What managed path `p` links to: through `current`.
    pub fn through_current(&self, p: &Path) -> PathBuf {
        self.current().join(p)
    }
}
