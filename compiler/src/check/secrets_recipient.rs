//! `secrets::recipient`
//!
//! What it catches: a secret under `hosts.H.secrets` that its host cannot
//! decrypt: its age file is encrypted to none of the host's
//! `ssh_host_keys` (or the site names none), or it is no age file.
//!
//! Why it matters: the host decrypts its secrets with its ssh host key when
//! it checks a bundle; a secret encrypted to another host, to the operator
//! only, or to an old host key is refused there, on the host, after the
//! review. Here it is refused at the line that names it.
//!
//! Example: `age = import "secrets/edge/mesh.key.age" as 'Text` under
//! `hosts.lb.secrets`, encrypted to edge's host key.

use crate::check::age::{self, Recipient};
use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "secrets::recipient";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let keys: Vec<(Recipient, &str)> = host
            .ssh_host_keys
            .iter()
            .filter_map(|k| age::ssh_recipient(k).map(|r| (r, k.as_str())))
            .collect();
        for (path, secret) in &host.secrets {
            let at = path!["hosts", host_name, "secrets", path, "age"];
            let (message, help, label) = match age::recipients(&secret.age) {
                Err(why) if !secret.age.contains("BEGIN AGE ENCRYPTED FILE") => (
                    format!("secret {path} of {host_name} is not encrypted: {why}"),
                    "encrypt it with `age --armor -R HOST_KEY.pub -R YOUR_KEY.pub -o FILE.age FILE`, keeping the plaintext out of the repository; a plaintext that was committed is in git's history: replace the secret".to_string(),
                    "not an age file (its text is not shown)",
                ),
                Err(why) => (
                    format!("secret {path} of {host_name} is no age file: {why}"),
                    "encrypt it again with `age --armor -R HOST_KEY.pub -R YOUR_KEY.pub`, and import the file as text".to_string(),
                    "not an age file",
                ),
                Ok(_) if keys.is_empty() && host.ssh_host_keys.is_empty() => (
                    format!("secret {path} of {host_name} cannot be decrypted on {host_name}: the site names none of its ssh host keys"),
                    format!("add `ssh_host_keys = [\"...\"]` to {host_name} with the line of its /etc/ssh/ssh_host_ed25519_key.pub (age encrypts to ed25519 and rsa keys)"),
                    "encrypted for a host whose keys the site does not name",
                ),
                Ok(_) if keys.is_empty() => (
                    format!("secret {path} of {host_name} cannot be decrypted on {host_name}: age encrypts to no key type of its `ssh_host_keys`"),
                    format!("age encrypts to ssh-ed25519 and ssh-rsa keys only: add {host_name}'s /etc/ssh/ssh_host_ed25519_key.pub to `ssh_host_keys` and encrypt to it"),
                    "no host key age can encrypt to",
                ),
                Ok(found) if found.iter().any(|r| keys.iter().any(|(k, _)| k == r)) => continue,
                Ok(found) => {
                    let found: Vec<String> = found.iter().map(Recipient::to_string).collect();
                    let mine: Vec<String> = keys
                        .iter()
                        .map(|(r, line)| match line.split(' ').nth(2) {
                            Some(comment) => format!("{r} ({comment})"),
                            None => r.to_string(),
                        })
                        .collect();
                    (
                        format!("secret {path} of {host_name} is encrypted to none of {host_name}'s ssh host keys"),
                        format!(
                            "it is encrypted to {}; {host_name}'s `ssh_host_keys` are {}: encrypt it again with `age --armor -R` and one of them",
                            found.join(", "),
                            mine.join(", ")
                        ),
                        "the host cannot decrypt this",
                    )
                }
            };
            out.push(
                Diagnostic::error(CODE, message)
                    .help(help)
                    .at_name(site, &at, label),
            );
        }
    }
}
