//! Per-user overrides: `sultana.local.toml` (untracked) and `--set COMP.KEY=VALUE`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::ordered::Ordered;
use super::{Manifest, ManifestError, Source};
use crate::validate;

pub const LOCAL_FILE_NAME: &str = "sultana.local.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocal {
    #[serde(default)]
    components: Ordered<Spanned<RawOverride>>,
    /// Added to (and for the same prefix, replacing) the manifest's.
    #[serde(default)]
    url_rewrites: Ordered<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    url: Option<Spanned<String>>,
    /// Replaces the manifest's mirrors (tried in order before `url`).
    mirrors: Option<Vec<Spanned<String>>>,
    revision: Option<Spanned<String>>,
    /// Your own checkout (absolute, or relative to the workspace).
    path: Option<Spanned<String>>,
    enabled: Option<bool>,
}

/// Apply `sultana.local.toml` from `workspace` when it exists.
pub fn apply_local_file(manifest: &mut Manifest, workspace: &Path) -> anyhow::Result<bool> {
    let file = workspace.join(LOCAL_FILE_NAME);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
    };
    apply_local_text(manifest, workspace, &text, &file.display().to_string())?;
    Ok(true)
}

/// Apply the text of a `sultana.local.toml` named `name` (for messages).
pub fn apply_local_text(
    manifest: &mut Manifest,
    workspace: &Path,
    text: &str,
    name: &str,
) -> Result<(), ManifestError> {
    let source = Source {
        name: name.to_string(),
        text,
    };
    let raw: RawLocal = toml::from_str(text).map_err(|e| source.toml_error(e))?;
    for (from, to) in raw.url_rewrites.0 {
        manifest
            .url_rewrites
            .insert(from.get_ref(), to.get_ref())
            .map_err(|m| source.error(to.span(), m))?;
    }
    for (name, entry) in raw.components.0 {
        let span = entry.span();
        let entry = entry.into_inner();
        let component = manifest.component_mut(name.get_ref()).ok_or_else(|| {
            source.error(
                name.span(),
                format!("no component `{}` in the manifest", name.get_ref()),
            )
        })?;
        if let Some(path) = entry.path {
            if entry.url.is_some() || entry.revision.is_some() {
                return Err(source.error(
                    span,
                    "`path` means \"use my checkout\"; it cannot be combined with `url` or `revision`",
                ));
            }
            component.local = Some(local_path(workspace, path.get_ref()).map_err(|m| source.error(path.span(), m))?);
        }
        if let Some(url) = entry.url {
            validate::check_url(url.get_ref()).map_err(|m| source.error(url.span(), m))?;
            component.fetch_from = Some(url.into_inner());
        }
        if let Some(mirrors) = entry.mirrors {
            let mut list = Vec::new();
            for mirror in mirrors {
                validate::check_url(mirror.get_ref()).map_err(|m| source.error(mirror.span(), m))?;
                list.push(mirror.into_inner());
            }
            component.local_mirrors = Some(list);
        }
        if let Some(revision) = entry.revision {
            validate::check_revision(revision.get_ref()).map_err(|m| source.error(revision.span(), m))?;
            component.revision = revision.into_inner();
        }
        if let Some(enabled) = entry.enabled {
            component.enabled = enabled;
        }
    }
    Ok(())
}

fn local_path(workspace: &Path, path: &str) -> Result<PathBuf, String> {
    if path.is_empty() || path.chars().any(|c| c.is_control()) {
        return Err(format!("invalid path `{}`", path.escape_debug()));
    }
    let path = Path::new(path);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace.join(path)
    })
}

/// Apply one `--set COMP.KEY=VALUE`.
pub fn apply_set(manifest: &mut Manifest, workspace: &Path, setting: &str) -> Result<(), ManifestError> {
    let fail = |m: String| ManifestError::Other(format!("--set {setting}: {m}"));
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| fail("expected COMP.KEY=VALUE".into()))?;
    let (name, field) = key
        .split_once('.')
        .ok_or_else(|| fail("expected COMP.KEY=VALUE".into()))?;
    let component = manifest
        .component_mut(name)
        .ok_or_else(|| fail(format!("no component `{name}`")))?;
    match field {
        "url" => {
            validate::check_url(value).map_err(fail)?;
            component.fetch_from = Some(value.to_string());
        }
        "revision" => {
            validate::check_revision(value).map_err(fail)?;
            component.revision = value.to_string();
        }
        "path" => component.local = Some(local_path(workspace, value).map_err(fail)?),
        "enabled" => {
            component.enabled = value
                .parse()
                .map_err(|_| fail(format!("`{value}` is not true or false")))?
        }
        _ => {
            return Err(fail(format!(
                "unknown key `{field}` (use url, revision, path or enabled)"
            )))
        }
    }
    Ok(())
}
