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
use secgroup_etcd::{ConnectOptions, EtcdArgs};
use secgroup_model::{Diagnostic, HostView, Limits};

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
    // As the daemons validate it, every instance bound on its own host;
    // each value named `etcd:<key>`, a key that names no object an error.
    let loaded = match snapshot.load(&options.layout, HostView::Fleet) {
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
