//! The fleet's etcd: `secgroupctl publish` writes a rules directory into
//! it, `secgroupctl export --etcd-endpoints` reads a group back out.
//!
//! Publish validates exactly as `validate` does (the same loader, the
//! same located errors) and writes nothing unless the whole directory is
//! valid; the write is one transaction of the differences, so the hosts
//! see the new set in one revision or not at all (`secgroup_etcd::publish`).
//! Export reads every key at one revision and validates the values as
//! the daemons do, each named `etcd:<key>` in diagnostics.

use anyhow::Context;
use secgroup_etcd::{ConnectOptions, EtcdArgs, Snapshot};
use secgroup_model::{
    DecodeCache, Diagnostic, Diagnostics, Document, HostView, Limits, Loaded, Shape,
};

use crate::cli::{ExportArgs, PublishArgs};
use crate::export::{find_group, render_group};
use crate::outcome::{Output, Result, json};
use crate::report::refused;
use crate::validate::all_warnings;

/// Runs `work` to completion on a runtime of its own: the etcd client is
/// async, the CLI is not.
fn block_on<T>(work: impl std::future::Future<Output = T>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime for the etcd client")?;
    Ok(runtime.block_on(work))
}

fn options(args: &EtcdArgs) -> Result<ConnectOptions> {
    Ok(args.options()?)
}

pub fn publish(args: &PublishArgs, as_json: bool) -> Result<Output> {
    // Flags first: a usage error never depends on the directory.
    let options = options(&args.etcd)?;
    let limits = Limits::default();
    let sources = secgroup_rulesdir::read_sources_limited(&args.paths, limits.max_file_bytes)
        .context("cannot read the rule files")?;
    let loaded = match sources.load(&limits, &[]) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            return Ok(refused(
                &diagnostics,
                "in the rule files; nothing was published",
                as_json,
            ));
        }
    };
    let policy = secgroup_policy::compile(&loaded.rules);
    let warnings = all_warnings(&loaded, &policy);
    let objects = secgroup_etcd::objects(&options.layout, &loaded.rules);
    let published = block_on(secgroup_etcd::publish(&options, &objects))??;
    let endpoints = options.endpoints_text();
    let prefix = options.layout.prefix();
    if as_json {
        return json(&serde_json::json!({
            "endpoints": options.endpoints,
            "prefix": prefix,
            "revision": published.revision,
            "put": published.put,
            "deleted": published.deleted,
            "unchanged": published.unchanged,
            "warnings": warnings.iter().map(crate::report::diagnostic_json).collect::<Vec<_>>(),
        }));
    }
    let what = if published.put + published.deleted == 0 {
        "nothing to change".to_owned()
    } else {
        format!("{} put, {} deleted", published.put, published.deleted)
    };
    let text = format!(
        "published {} objects to etcd at {endpoints} under {prefix}: revision {} ({what}, {} unchanged)\n",
        objects.len(),
        published.revision,
        published.unchanged
    );
    Ok(Output::success(text).with_stderr(warnings_lines(&warnings)))
}

/// Warnings never stop a publish; they are shown as `validate` shows them.
fn warnings_lines(warnings: &[Diagnostic]) -> String {
    warnings
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}: {}: warning: {}\n",
                d.file, d.line, d.column, d.path, d.message
            )
        })
        .collect()
}

pub fn export(args: &ExportArgs, as_json: bool) -> Result<Output> {
    let options = options(&args.etcd)?;
    let snapshot = block_on(secgroup_etcd::snapshot(&options))??;
    let place = format!(
        "etcd at {} under {} (revision {})",
        options.endpoints_text(),
        options.layout.prefix(),
        snapshot.revision
    );
    let loaded = match load(&options, &snapshot) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            return Ok(refused(
                &diagnostics,
                &format!("in {place}; nothing was exported"),
                as_json,
            ));
        }
    };
    let group = find_group(&loaded.rules, &args.id, &place)?;
    Ok(render_group(group, args.format))
}

/// The snapshot's values validated as the daemons validate them (every
/// instance bound on its own host), each named `etcd:<key>`; a key that
/// names no object is an error of its own.
fn load(options: &ConnectOptions, snapshot: &Snapshot) -> std::result::Result<Loaded, Diagnostics> {
    let keys = secgroup_etcd::documents(&options.layout, snapshot.values.keys());
    let mut stray = Vec::new();
    let mut documents = Vec::with_capacity(keys.len());
    for key in &keys {
        let bytes = snapshot.values.get(&key.key).map_or(&[][..], Vec::as_slice);
        match &key.object {
            Ok((kind, id)) => documents.push(Document {
                name: &key.name,
                bytes,
                shape: Shape::Object { kind: *kind, id },
            }),
            Err(e) => stray.push(Diagnostic {
                file: key.name.clone(),
                line: 1,
                column: 1,
                path: "$".into(),
                message: e.to_string(),
            }),
        }
    }
    let loaded = secgroup_model::load_documents(
        &documents,
        &Limits::default(),
        &[],
        &mut DecodeCache::default(),
        HostView::Fleet,
    );
    match loaded {
        Ok(loaded) if stray.is_empty() => Ok(loaded),
        Ok(_) => Err(Diagnostics(stray)),
        Err(Diagnostics(mut errors)) => {
            errors.extend(stray);
            errors.sort();
            Err(Diagnostics(errors))
        }
    }
}
