//! The manifest as written, with spans, and its validation into [`Manifest`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::ordered::Ordered;
use super::{check_path, topo_order, Component, Manifest, ManifestError, Source, Submodules, Tarball, UrlRewrites};
use crate::git::FetchMode;
use crate::validate;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    workspace: Option<RawWorkspace>,
    tarball: Option<Spanned<RawTarball>>,
    #[serde(default)]
    components: Ordered<Spanned<RawComponent>>,
    #[serde(default)]
    url_rewrites: Ordered<Spanned<String>>,
}

/// `submodules = true | false | ["path", …]`.
enum RawSubmodules {
    All(bool),
    Only(Vec<String>),
}

// By hand rather than `#[serde(untagged)]`: a wrong value is said as
// "invalid type: …, expected true, false or a list of submodule paths".
impl<'de> Deserialize<'de> for RawSubmodules {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawSubmodules;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or a list of submodule paths")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawSubmodules, E> {
                Ok(RawSubmodules::All(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawSubmodules, A::Error> {
                let mut paths = Vec::new();
                while let Some(path) = seq.next_element::<String>()? {
                    paths.push(path);
                }
                Ok(RawSubmodules::Only(paths))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    name: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    filter: Option<Spanned<String>>,
    depth: Option<Spanned<i64>>,
    keep_flights: Option<Spanned<i64>>,
    /// The build cache's remote tier, `oci://HOST/REPOSITORY`.
    build_cache_remote: Option<Spanned<String>>,
    /// Fingerprints whose signed entries restore from it.
    #[serde(default)]
    build_cache_trust: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarball {
    root: Spanned<String>,
    name: Option<Spanned<String>>,
    formats: Option<Vec<Spanned<String>>>,
    /// Who makes the release, named as the creator of its SBOMs.
    creator: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    url: Option<Spanned<String>>,
    #[serde(default)]
    mirrors: Vec<Spanned<String>>,
    revision: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    intree: Option<Spanned<String>>,
    recipe: Option<Spanned<String>>,
    #[serde(default)]
    depends: Vec<Spanned<String>>,
    enabled: Option<bool>,
    submodules: Option<Spanned<RawSubmodules>>,
    /// Who supplies it (the SBOMs' supplier).
    supplier: Option<Spanned<String>>,
    filter: Option<Spanned<String>>,
    depth: Option<Spanned<i64>>,
}

fn at<T>(source: &Source, value: &Spanned<T>, message: String) -> ManifestError {
    source.error(value.span(), message)
}

/// `[workspace]` validated: what the manifest takes from it.
struct WorkspaceTable {
    name: Option<String>,
    prefix: String,
    fetch: Option<FetchMode>,
    keep_flights: usize,
    build_cache_remote: Option<String>,
    build_cache_trust: Vec<String>,
}

impl RawWorkspace {
    fn validate(self, source: &Source) -> Result<WorkspaceTable, ManifestError> {
        let fetch = fetch_mode(source, self.filter, self.depth)?;
        let build_cache_remote = match self.build_cache_remote {
            Some(url) => {
                crate::oci_url::OciUrl::parse(url.get_ref()).map_err(|e| at(source, &url, format!("{e:#}")))?;
                Some(url.into_inner())
            }
            None => None,
        };
        let keep_flights = match self.keep_flights {
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(keep) if keep >= 1 => keep,
                _ => {
                    return Err(at(
                        source,
                        &n,
                        format!(
                            "keep_flights = {} keeps nothing: give the number of flights to keep (at least 1)",
                            n.get_ref()
                        ),
                    ))
                }
            },
            None => super::DEFAULT_KEEP_FLIGHTS,
        };
        let prefix = match self.prefix {
            Some(p) => {
                let ok = p.get_ref().starts_with('/')
                    && !p.get_ref().split('/').any(|part| part == "..")
                    && !p.get_ref().chars().any(|c| c.is_control() || c.is_whitespace());
                if !ok {
                    return Err(at(
                        source,
                        &p,
                        format!(
                            "prefix `{}` must be an absolute path without `..` or spaces",
                            p.get_ref()
                        ),
                    ));
                }
                p.get_ref().trim_end_matches('/').to_string()
            }
            None => DEFAULT_PREFIX.to_string(),
        };
        // Only a declared name: one taken from the folder would make the
        // same manifest give other tarball bytes in another folder.
        let name = match self.name {
            Some(name) => {
                validate::check_workspace_name(name.get_ref()).map_err(|m| at(source, &name, m))?;
                Some(name.into_inner())
            }
            None => None,
        };
        Ok(WorkspaceTable {
            name,
            prefix,
            fetch,
            keep_flights,
            build_cache_remote,
            build_cache_trust: self.build_cache_trust.into_iter().map(Spanned::into_inner).collect(),
        })
    }
}

const DEFAULT_PREFIX: &str = "/usr/local";

impl RawManifest {
    pub fn validate(self, source: &Source, file: Option<PathBuf>) -> Result<Manifest, ManifestError> {
        let table = match self.workspace {
            Some(w) => w.validate(source)?,
            None => WorkspaceTable {
                name: None,
                prefix: DEFAULT_PREFIX.to_string(),
                fetch: None,
                keep_flights: super::DEFAULT_KEEP_FLIGHTS,
                build_cache_remote: None,
                build_cache_trust: Vec::new(),
            },
        };

        let tarball_root = self.tarball.as_ref().map(|t| t.get_ref().root.get_ref().clone());
        let mut components = Vec::new();
        let mut spans = BTreeMap::new();
        for (name, raw) in self.components.0 {
            validate::check_name(name.get_ref()).map_err(|m| at(source, &name, m))?;
            let span = raw.span();
            let is_root = tarball_root.as_deref() == Some(name.get_ref().as_str());
            let component = raw
                .into_inner()
                .validate(source, name.get_ref(), span.clone(), is_root)?;
            let (mut component, own_fetch) = component;
            spans.insert(component.name.clone(), span);
            // Per component wins over [workspace]; the command line wins over both.
            component.fetch = own_fetch.or(table.fetch);
            components.push(component);
        }
        check_places(source, &components, &spans)?;
        let tarball = match self.tarball {
            None => None,
            Some(t) => Some(validate_tarball(source, t.into_inner(), &components)?),
        };
        let components = in_dependency_order(source, components, &spans)?;

        let mut url_rewrites = UrlRewrites::default();
        for (from, to) in self.url_rewrites.0 {
            url_rewrites
                .insert(from.get_ref(), to.get_ref())
                .map_err(|m| at(source, &to, m))?;
        }

        Ok(Manifest {
            file,
            display_name: source.name.clone(),
            workspace_name: table.name,
            prefix: table.prefix,
            keep_flights: table.keep_flights,
            tarball,
            url_rewrites,
            build_cache_remote: table.build_cache_remote,
            build_cache_trust: table.build_cache_trust,
            components,
        })
    }
}

type Spans = BTreeMap<String, std::ops::Range<usize>>;

/// Two components in one place, or one inside another, would fight.
fn check_places(source: &Source, components: &[Component], spans: &Spans) -> Result<(), ManifestError> {
    for (i, a) in components.iter().enumerate() {
        for b in &components[i + 1..] {
            let (outer, inner) = if b.path.starts_with(&a.path) { (a, b) } else { (b, a) };
            if inner.path.starts_with(&outer.path) && outer.path != Path::new(".") {
                let message = if a.path == b.path {
                    format!(
                        "components `{}` and `{}` both use path `{}`",
                        a.name,
                        b.name,
                        a.path.display()
                    )
                } else {
                    format!(
                        "path `{}` of `{}` is inside path `{}` of `{}`",
                        inner.path.display(),
                        inner.name,
                        outer.path.display(),
                        outer.name
                    )
                };
                return Err(source.error(spans[&b.name].clone(), message));
            }
        }
    }
    Ok(())
}

/// The components with each after what it depends on; an unknown
/// dependency or a cycle is an error at its component.
fn in_dependency_order(
    source: &Source,
    components: Vec<Component>,
    spans: &Spans,
) -> Result<Vec<Component>, ManifestError> {
    let entries: Vec<(String, Vec<String>)> = components.iter().map(|c| (c.name.clone(), c.depends.clone())).collect();
    for component in &components {
        for dep in &component.depends {
            if !spans.contains_key(dep) {
                return Err(source.error(
                    spans[&component.name].clone(),
                    format!("`{}` depends on `{dep}`, which is not a component", component.name),
                ));
            }
            if dep == &component.name {
                return Err(source.error(
                    spans[&component.name].clone(),
                    format!("`{}` depends on itself", component.name),
                ));
            }
        }
    }
    let order = topo_order(&entries).map_err(|cycle| {
        source.error(
            spans[&cycle[0]].clone(),
            format!("dependency cycle: {}", cycle.join(" -> ")),
        )
    })?;
    let mut by_name: BTreeMap<String, Component> = components.into_iter().map(|c| (c.name.clone(), c)).collect();
    Ok(order.iter().filter_map(|n| by_name.remove(n)).collect())
}

fn validate_tarball(source: &Source, raw: RawTarball, components: &[Component]) -> Result<Tarball, ManifestError> {
    if !components.iter().any(|c| &c.name == raw.root.get_ref()) {
        return Err(at(
            source,
            &raw.root,
            format!("tarball root `{}` is not a component", raw.root.get_ref()),
        ));
    }
    let name = match raw.name {
        Some(name) => {
            let ok = !name.get_ref().is_empty()
                && name
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+{}".contains(c));
            if !ok {
                return Err(at(
                    source,
                    &name,
                    format!(
                        "tarball name `{}` may only use letters, digits, `-_.+` and `{{desc}}`",
                        name.get_ref()
                    ),
                ));
            }
            name.into_inner()
        }
        None => format!("{}-{{desc}}", raw.root.get_ref()),
    };
    let mut formats = Vec::new();
    for format in raw
        .formats
        .unwrap_or_else(|| vec![Spanned::new(0..0, "gz".to_string())])
    {
        if !["gz", "xz", "zst", "lz"].contains(&format.get_ref().as_str()) {
            return Err(at(
                source,
                &format,
                format!("tarball format `{}` is not one of gz, xz, zst, lz", format.get_ref()),
            ));
        }
        formats.push(format.into_inner());
    }
    let creator = match raw.creator {
        Some(c) => Some(check_party(c.get_ref()).map_err(|m| at(source, &c, format!("creator: {m}")))?),
        None => None,
    };
    Ok(Tarball {
        root: raw.root.into_inner(),
        creator,
        name,
        formats,
    })
}

impl RawComponent {
    fn validate(
        self,
        source: &Source,
        name: &str,
        span: std::ops::Range<usize>,
        is_root: bool,
    ) -> Result<(Component, Option<FetchMode>), ManifestError> {
        let fetch = fetch_mode(source, self.filter, self.depth)?;
        let url = self
            .url
            .ok_or_else(|| source.error(span.clone(), format!("component `{name}` has no `url`")))?;
        validate::check_url(url.get_ref()).map_err(|m| at(source, &url, m))?;
        let revision = self
            .revision
            .ok_or_else(|| source.error(span.clone(), format!("component `{name}` has no `revision`")))?;
        validate::check_revision(revision.get_ref()).map_err(|m| at(source, &revision, m))?;
        let mut mirrors = Vec::new();
        for mirror in self.mirrors {
            validate::check_url(mirror.get_ref()).map_err(|m| at(source, &mirror, m))?;
            mirrors.push(mirror.into_inner());
        }
        let path = match self.path {
            Some(p) => check_path(p.get_ref(), is_root).map_err(|m| at(source, &p, m))?,
            None => PathBuf::from(name),
        };
        let intree = match self.intree {
            Some(p) => Some(check_path(p.get_ref(), false).map_err(|m| at(source, &p, m))?),
            None => None,
        };
        let recipe = match self.recipe {
            Some(r) => {
                validate::check_name(r.get_ref())
                    .map_err(|_| at(source, &r, format!("invalid recipe name `{}`", r.get_ref())))?;
                r.into_inner()
            }
            None => name.to_string(),
        };
        let mut depends = Vec::new();
        for dep in self.depends {
            validate::check_name(dep.get_ref()).map_err(|m| at(source, &dep, m))?;
            depends.push(dep.into_inner());
        }
        let submodules = match self.submodules {
            None => Submodules::None,
            Some(raw) => {
                let span = raw.span();
                match raw.into_inner() {
                    RawSubmodules::All(true) => Submodules::All,
                    RawSubmodules::All(false) => Submodules::None,
                    RawSubmodules::Only(paths) if paths.is_empty() => Submodules::None,
                    RawSubmodules::Only(paths) => {
                        let mut list = Vec::new();
                        for path in paths {
                            let checked = validate::check_rel_path(&path, false)
                                .map_err(|m| source.error(span.clone(), format!("submodule path `{path}`: {m}")))?;
                            if !list.contains(&checked) {
                                list.push(checked);
                            }
                        }
                        Submodules::Only(list)
                    }
                }
            }
        };
        let supplier = match self.supplier {
            Some(s) => Some(check_party(s.get_ref()).map_err(|m| at(source, &s, format!("supplier: {m}")))?),
            None => None,
        };
        let component = Component {
            name: name.to_string(),
            supplier,
            url: url.into_inner(),
            mirrors,
            fetch_from: None,
            local_mirrors: None,
            revision: revision.into_inner(),
            path,
            intree,
            recipe,
            depends,
            enabled: self.enabled.unwrap_or(true),
            submodules,
            local: None,
            fetch: None,
        };
        Ok((component, fetch))
    }
}

/// `filter = "tree:0"` or `depth = N` (one of them) as a fetch mode.
fn fetch_mode(
    source: &Source,
    filter: Option<Spanned<String>>,
    depth: Option<Spanned<i64>>,
) -> Result<Option<FetchMode>, ManifestError> {
    let span = match (&filter, &depth) {
        (_, Some(d)) => d.span(),
        (Some(f), None) => f.span(),
        (None, None) => return Ok(None),
    };
    FetchMode::from_parts(
        filter.as_ref().map(|f| f.get_ref().as_str()),
        depth.map(|d| d.into_inner()),
    )
    .map_err(|m| source.error(span, m))
}

/// A supplier or creator: `NAME` or `NAME <email-or-url>`, one line,
/// bounded (it goes into every SBOM).
pub(crate) fn check_party(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    if text.len() > 200 {
        return Err("longer than 200 characters".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_control() || matches!(c, '"' | '\\')) {
        return Err(format!("`{}` contains the character {c:?}", text.escape_debug()));
    }
    if let Some((_, contact)) = text.split_once('<') {
        let ok = contact.ends_with('>') && contact.len() > 1 && !contact[..contact.len() - 1].contains(['<', '>', ' ']);
        if !ok {
            return Err(format!("`{text}`: write `NAME` or `NAME <email or url>`"));
        }
    }
    Ok(text.to_string())
}
