use anyhow::Result;

use super::Globals;
use crate::cli::StatusArgs;
use crate::printer::Printer;
use crate::sync::state::{states, ComponentState};

pub fn run(globals: &Globals, args: StatusArgs, printer: &Printer) -> Result<()> {
    let ws = globals.workspace(printer)?;
    let rows = states(&ws, &args.components, printer)?;
    printer.out(table(&rows));
    printer.json(&serde_json::json!({
        "workspace": ws.root,
        "manifest": ws.manifest.file,
        "components": rows,
    }));
    Ok(())
}

fn short(commit: &Option<String>) -> String {
    commit
        .as_deref()
        .map_or("-".into(), |c| c[..c.len().min(12)].to_string())
}

fn table(rows: &[ComponentState]) -> String {
    let mut lines = vec![[
        "COMPONENT".to_string(),
        "SOURCE".into(),
        "REVISION".into(),
        "LOCKED".into(),
        "CHECKOUT".into(),
        "CACHE".into(),
        "STATE".into(),
    ]];
    for row in rows {
        // One name for the pin (its describe, else the short hash) and a
        // pinned commit cut short: the table fits 80 columns.
        let locked = match &row.locked_describe {
            Some(d) if !row.locked_commit.as_deref().is_some_and(|c| c.starts_with(d.as_str())) => d.clone(),
            _ => short(&row.locked_commit),
        };
        let revision = if crate::validate::is_full_sha(&row.revision) {
            row.revision[..12].to_string()
        } else {
            row.revision.clone()
        };
        lines.push([
            row.name.clone(),
            row.source.to_string(),
            revision,
            locked,
            short(&row.checkout_commit),
            row.store.clone().unwrap_or_else(|| "-".into()),
            row.describe(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|l| {
            let mut out = String::new();
            for (i, cell) in l.iter().enumerate() {
                if i == 6 {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
