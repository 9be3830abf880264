//! /etc/zaino/zindexer.toml and the zaino.service container unit that mounts
//! it, run as the image's zaino user (UID/GID 10003 by default, as the image's).

use super::systemd::{container_spec, push_unit};
use super::{Action, File, HostInput, HostOutput, RenderError, Secret, Validator, template};
use crate::model::{Container, DockerNetwork, Restart, UnitState, Volume};

const CONFIG_DIR: &str = "/etc/zaino";

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(z) = &ctx.host.zaino else {
        return Ok(());
    };
    let content = template(
        "zindexer.toml",
        &serde_json::json!({
            "header": ctx.header(),
            "grpc_listen": crate::net::socket(&z.grpc.address, z.grpc.port),
            "tls": z.grpc.tls.as_ref().map(|t| serde_json::json!({"cert": t.certificate, "key": t.key})),
            "json_rpc": z.json_rpc.as_ref().map(|j| serde_json::json!({
                "listen": crate::net::socket(&j.address, j.port), "cookie_dir": j.cookie_dir,
            })),
            "validator_listen": crate::net::socket(&z.validator.address, z.validator.port),
            "validator_cookie": z.validator.cookie_path,
            "network": z.network.as_str(),
            "db_path": z.storage.db_path,
            "db_size": z.storage.db_size_gb,
            "map_capacity": z.map_capacity,
            "map_shard_amount": z.map_shard_amount,
        }),
    )?;
    out.files.push(File {
        path: "etc/zaino/zindexer.toml".into(),
        mode: 0o644,
        content,
        actions: vec![Action::Restart("zaino.service".into())],
        validator: Some(Validator::Toml),
        network: false,
    });

    let mut volumes = vec![
        ro(CONFIG_DIR),
        Volume {
            host: z.storage.db_path.clone(),
            container: z.storage.db_path.clone(),
            read_only: false,
        },
    ];
    if let Some(tls) = &z.grpc.tls {
        volumes.push(ro(&tls.certificate));
        volumes.push(ro(&tls.key));
        out.secrets.insert(Secret {
            age: None,
            path: tls.key.clone(),
            read_by: "etc/zaino/zindexer.toml".into(),
            used_by: "zaino gRPC TLS key".into(),
            // The container runs as the image's user, which must read it.
            uid: z.container.uid,
            gid: z.container.gid,
        });
    }
    if let Some(cookie) = &z.validator.cookie_path {
        volumes.push(ro(cookie));
    }
    if let Some(dir) = z.json_rpc.as_ref().and_then(|j| j.cookie_dir.as_ref()) {
        volumes.push(Volume {
            host: dir.clone(),
            container: dir.clone(),
            read_only: false,
        });
    }
    let container = Container {
        image: z.container.image.clone(),
        uid: z.container.uid,
        gid: z.container.gid,
        volumes,
        // Zaino binds the listen addresses of the site itself.
        ports: Vec::new(),
        network: DockerNetwork::Host,
        args: vec!["--config".into(), format!("{CONFIG_DIR}/zindexer.toml")],
    };
    let spec = container_spec(
        "zaino",
        "Zaino Zcash indexer (container)",
        &container,
        &["network-online.target".to_string()],
        Restart::Always,
    );
    push_unit(ctx, out, spec, UnitState::Enabled)
}

fn ro(path: &str) -> Volume {
    Volume {
        host: path.to_string(),
        container: path.to_string(),
        read_only: true,
    }
}
