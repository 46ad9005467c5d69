use anyhow::{Context, Result};

use crate::cli::DemoArgs;
use crate::demo;
use crate::printer::Printer;

pub fn run(args: DemoArgs, printer: &Printer) -> Result<()> {
    let dir = match args.folder {
        Some(dir) => std::env::current_dir()?.join(dir),
        None => tempfile::Builder::new()
            .prefix("sultana-demo-")
            .tempdir()
            .context("cannot create a temporary folder")?
            .keep(),
    };
    let demo = demo::setup(&dir)?;
    if args.setup_only {
        printer.status("Created", format!("upstreams in {}", demo.upstreams.display()));
        printer.status(
            "Created",
            format!(
                "workspace {} (run `sultana init --from {}` there)",
                demo.workspace.display(),
                demo.dir.join("demo.toml").display()
            ),
        );
        // The workspace is ready to use: write its manifest directly.
        std::fs::copy(demo.dir.join("demo.toml"), demo.workspace.join("sultana.toml"))?;
        printer.json(&serde_json::json!({ "dir": demo.dir, "upstreams": demo.upstreams, "workspace": demo.workspace }));
        return Ok(());
    }
    demo::run(&demo, printer)?;
    printer.json(&serde_json::json!({ "dir": demo.dir, "upstreams": demo.upstreams, "workspace": demo.workspace }));
    Ok(())
}
