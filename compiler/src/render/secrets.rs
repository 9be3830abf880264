//! The secrets the site commits encrypted (`hosts.H.secrets`): each
//! required secret (a WireGuard key, a TLS key) with an age file gets the
//! ciphertext as the bundle file `secrets/<its host path>.age`, which the
//! manifest names in the secret's `age`. The host decrypts it with its ssh
//! host key when it checks the bundle; it is never installed as it is.

use super::{HostInput, HostOutput, RenderError};
use crate::check::facts;

/// Where a secret's ciphertext is in the bundle: under `secrets/`, which
/// holds nothing else (no renderer writes a host file there: host files
/// are under `etc/`).
pub(super) fn bundle_path(host_path: &str) -> String {
    format!("secrets{host_path}.age")
}

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    // The checks judge `hosts.H.secrets` by the secrets the host reads as
    // `facts::secrets_read` lists them: it must list what the renderers
    // require, on every site compiled.
    let read: Vec<String> = facts::secrets_read(ctx.meshes, ctx.host_name, ctx.host)
        .into_iter()
        .map(|r| r.path)
        .collect();
    let mut required: Vec<String> = out.secrets.iter().map(|s| s.path.clone()).collect();
    required.sort();
    required.dedup();
    if read != required {
        return Err(RenderError::Unchecked(format!(
            "{}: the checks know the secrets {read:?}, the renderers require {required:?}",
            ctx.host_name
        )));
    }
    for (path, secret) in &ctx.host.secrets {
        let required: Vec<super::Secret> = out
            .secrets
            .iter()
            .filter(|s| &s.path == path)
            .cloned()
            .collect();
        if required.is_empty() {
            return Err(RenderError::Unchecked(format!(
                "secret {path} is read by nothing on {}",
                ctx.host_name
            )));
        }
        let file = bundle_path(path);
        for s in required {
            out.secrets.remove(&s);
            out.secrets.insert(super::Secret {
                age: Some(file.clone()),
                ..s
            });
        }
        out.encrypted.insert(file, secret.age.clone());
    }
    Ok(())
}
