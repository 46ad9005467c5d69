//! Fuzz entry points. Each takes arbitrary bytes, feeds them to one reader of
//! untrusted input and panics only when a promise breaks: a parser panics,
//! accepts a value the validation rules refuse, or writes text that reads
//! back differently. `fuzz/` runs them coverage-guided (`cargo fuzz`, the
//! long run); the test suite runs them on a mutated seed corpus (the short,
//! deterministic run).

use std::path::Path;

use crate::config_mk;
use crate::gate::AllowList;
use crate::lock::Lock;
use crate::manifest::{self, Manifest};
use crate::recipe::{self, Recipe};
use crate::tarball::{self, attrs};
use crate::validate;

pub type Target = fn(&[u8]);

/// Every target by name; the names are the folders of `tests/corpus/fuzz/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("lock", lock),
    ("local", local),
    ("set", set),
    ("config_mk", config_mk),
    ("recipe", recipe),
    ("allow", allow),
    ("attrs", attrs),
    ("tarball", tarball),
    ("ci_result", ci_result),
    ("symlinks", symlinks),
];

pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Two inputs from one: before and after the first NUL byte.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// What the rules promise of every component a reader accepted.
fn assert_valid(manifest: &Manifest) {
    for c in &manifest.components {
        assert!(validate::check_name(&c.name).is_ok(), "accepted name {:?}", c.name);
        assert!(validate::check_url(&c.url).is_ok(), "accepted URL {:?}", c.url);
        for mirror in &c.mirrors {
            assert!(validate::check_url(mirror).is_ok(), "accepted mirror {mirror:?}");
        }
        assert!(
            validate::check_revision(&c.revision).is_ok(),
            "accepted revision {:?}",
            c.revision
        );
        let path = c.path.to_string_lossy();
        assert!(validate::check_rel_path(&path, true).is_ok(), "accepted path {path:?}");
        if let Some(intree) = &c.intree {
            let intree = intree.to_string_lossy();
            assert!(
                validate::check_rel_path(&intree, false).is_ok(),
                "accepted intree {intree:?}"
            );
        }
    }
}

/// A message for the user names the file it is about.
fn assert_names(message: &str, file: &str) {
    assert!(message.contains(file), "error without the file name: {message}");
}

pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Manifest::parse(text, "sultana.toml", None) {
        Ok(manifest) => {
            assert_valid(&manifest);
            // Xen's make must read back what `config-mk export` writes.
            if let Ok(exported) = config_mk::export(&manifest, None) {
                let imported = config_mk::import(&exported, "export")
                    .unwrap_or_else(|e| panic!("export does not read back: {e:#}\n{exported}"));
                for pin in &imported.pins {
                    let c = manifest
                        .component(&pin.component)
                        .unwrap_or_else(|| panic!("import invented {}", pin.component));
                    assert_eq!((&pin.url, &pin.revision), (&c.url, &c.revision), "{exported}");
                }
            }
        }
        Err(e) => assert_names(&e.to_string(), "sultana.toml"),
    }
}

pub fn lock(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Lock::parse(text, "sultana.lock") {
        Ok(lock) => {
            for entry in lock.entries.values() {
                assert!(
                    validate::is_full_sha(&entry.commit),
                    "accepted commit {:?}",
                    entry.commit
                );
                assert!(validate::check_url(&entry.url).is_ok(), "accepted URL {:?}", entry.url);
            }
            // Rendering keeps what was read.
            let again = Lock::parse(&lock.render(), "rendered")
                .unwrap_or_else(|e| panic!("a rendered lock does not read back: {e}\n{}", lock.render()));
            assert_eq!(again.entries, lock.entries);
        }
        Err(e) => assert_names(&e.to_string(), "sultana.lock"),
    }
}

const BASE_MANIFEST: &str = "[components.up]\nurl = \"https://h/up\"\nrevision = \"master\"\n\n\
     [components.down]\nurl = \"https://h/down\"\nrevision = \"v1\"\ndepends = [\"up\"]\n";

fn base_manifest() -> Manifest {
    Manifest::parse(BASE_MANIFEST, "base", None).unwrap_or_else(|e| panic!("{e}"))
}

pub fn local(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut manifest = base_manifest();
    match manifest::apply_local_text(&mut manifest, Path::new("/ws"), text, "sultana.local.toml") {
        Ok(()) => {
            assert_valid(&manifest);
            for c in &manifest.components {
                if let Some(local) = &c.local {
                    assert!(local.is_absolute(), "relative local path {local:?}");
                }
            }
        }
        Err(e) => assert_names(&e.to_string(), "sultana.local.toml"),
    }
}

pub fn set(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut manifest = base_manifest();
    match manifest::apply_set(&mut manifest, Path::new("/ws"), text) {
        Ok(()) => assert_valid(&manifest),
        Err(e) => assert_names(&e.to_string(), "--set"),
    }
}

pub fn config_mk(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match config_mk::import(text, "Config.mk") {
        Ok(imported) => {
            // The manifest `config-mk import` writes is TOML that holds the
            // values as read: no value can add keys or tables.
            let written = config_mk::manifest_text(&imported, "Config.mk", None);
            let doc: toml::Table =
                toml::from_str(&written).unwrap_or_else(|e| panic!("import wrote broken TOML: {e}\n{written}"));
            let components = doc.get("components").and_then(|c| c.as_table());
            for pin in &imported.pins {
                let entry = components
                    .and_then(|c| c.get(&pin.component))
                    .and_then(|c| c.as_table())
                    .unwrap_or_else(|| panic!("{} missing\n{written}", pin.component));
                assert_eq!(entry.get("url").and_then(|v| v.as_str()), Some(pin.url.as_str()));
                assert_eq!(
                    entry.get("revision").and_then(|v| v.as_str()),
                    Some(pin.revision.as_str())
                );
            }
        }
        Err(e) => assert_names(&format!("{e:#}"), "Config.mk"),
    }
}

pub fn recipe(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Recipe::parse("up", text, "recipes/up.toml") {
        Ok(recipe) => {
            // Rendering its arguments never panics, whatever the braces.
            let vars: recipe::Vars = [("prefix", "/usr"), ("jobs", "2"), ("dep.up.prefix", "/p")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let lists = [Some(&recipe.configure), recipe.make.as_ref(), recipe.install.as_ref()];
            for arg in lists.into_iter().flatten().flatten() {
                let _ = recipe::render(arg, &vars);
            }
        }
        Err(e) => assert_names(&e.to_string(), "recipes/up.toml"),
    }
}

pub fn allow(data: &[u8]) {
    let (text, subject) = split(data);
    let (Ok(text), Ok(subject)) = (std::str::from_utf8(text), std::str::from_utf8(subject)) else {
        return;
    };
    match AllowList::parse(text, "allow") {
        Ok(list) => {
            let (job, testid) = subject.split_once(' ').unwrap_or((subject, ""));
            let _ = list.matches(job, testid);
        }
        Err(e) => assert_names(&format!("{e:#}"), "allow"),
    }
}

pub fn attrs(data: &[u8]) {
    let (file, path) = split(data);
    let mut attributes = attrs::Attributes::default();
    attributes.add_file(b"", file);
    attributes.add_file(b"sub", file);
    for is_dir in [false, true] {
        let _ = attributes.get(path, is_dir, attrs::Attr::ExportIgnore);
        let _ = attributes.get(path, is_dir, attrs::Attr::ExportSubst);
    }
    let _ = attrs::substitute(file, |format| format.to_vec());
}

pub fn tarball(data: &[u8]) {
    if let Ok((manifest, _lock)) = tarball::inspect(data, "x.tar.gz") {
        assert_valid(&manifest);
    }
}

/// A CI job's result file: parsing never panics, and a result is accepted
/// for exactly the gate, set and job it names.
pub fn ci_result(data: &[u8]) {
    use crate::gate::ci::{parse_result, vet, Expected, Set};
    let Ok(result) = parse_result(data) else { return };
    let own = Expected {
        set: result.set,
        component: &result.component,
        candidate: &result.candidate,
        job: &result.outcome.job,
        job_component: &result.outcome.component,
        revisions: &result.revisions,
    };
    assert!(vet(&result, &own).is_ok(), "a result refused for its own job");
    for (set, job) in [(Set::Baseline, "build-x"), (Set::Candidate, "test-x-y")] {
        let other = Expected {
            set,
            component: "x",
            candidate: "0123456789abcdef0123456789abcdef01234567",
            job,
            job_component: "x",
            revisions: &result.revisions,
        };
        let accepted = vet(&result, &other).is_ok();
        let same = result.set == set
            && result.component == "x"
            && result.candidate == other.candidate
            && result.outcome.job == job
            && result.outcome.component == "x";
        assert_eq!(accepted, same, "a result accepted for another job");
    }
}

/// Symlink sets (`path=target` lines): resolution ends (loops are bounded)
/// and, where the links can be made on disk, a set accepted never has a
/// link the kernel resolves outside the tree.
pub fn symlinks(data: &[u8]) {
    let mut links = std::collections::BTreeMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(eq) = line.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (path, target) = (&line[..eq], &line[eq + 1..]);
        let plain = !path.is_empty()
            && path
                .split(|b| *b == b'/')
                .all(|part| !part.is_empty() && part != b"." && part != b".." && !part.contains(&0));
        if plain && !target.contains(&0) {
            links.insert(path.to_vec(), target.to_vec());
        }
    }
    // A tree cannot hold a link and an entry below it: such sets are refused.
    let accepted = crate::symlinks::check_all(&links, links.keys().map(Vec::as_slice)).is_ok();
    if accepted && !links.is_empty() && links.len() <= 12 && data.len() <= 512 {
        against_the_kernel(&links);
    }
}

/// Make the links in a temporary folder and let the kernel resolve each.
fn against_the_kernel(links: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(root) = dir.path().join("tree").canonicalize().or_else(|_| {
        std::fs::create_dir(dir.path().join("tree"))?;
        dir.path().join("tree").canonicalize()
    }) else {
        return;
    };
    for (path, target) in links {
        let at = root.join(std::ffi::OsStr::from_bytes(path));
        let made = at
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &at));
        if made.is_err() {
            return; // a path that is a link and a folder at once: not a tree
        }
    }
    for path in links.keys() {
        if let Ok(resolved) = root.join(std::ffi::OsStr::from_bytes(path)).canonicalize() {
            assert!(
                resolved.starts_with(&root),
                "accepted, but the kernel resolves `{}` to {}",
                String::from_utf8_lossy(path),
                resolved.display()
            );
        }
    }
}
