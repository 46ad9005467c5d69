//! What a job's result is a result of. A test's result belongs to the test
//! as it was defined then: its script's bytes and its recipe entry (name,
//! description, script, timeout); a build's to its recipe without the
//! `[[test]]` tables. A result recorded for another definition is no
//! evidence about the test as it is now.

use sha2::{Digest, Sha256};

use crate::build::fingerprint::hex;
use crate::recipe::{Recipe, TestSpec};

/// The digest of `test` of `recipe`, its script read where a flight reads
/// it (`recipes_root`); a missing script is a definition of its own.
pub fn of_test(recipes_root: &std::path::Path, recipe: &Recipe, test: &TestSpec) -> String {
    let script = recipe.test_script(recipes_root, test).map(|(_, bytes)| bytes);
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(b"test");
    part(recipe.name.as_bytes());
    part(test.name.as_bytes());
    part(test.description.as_bytes());
    part(test.script_name().as_bytes());
    part(test.timeout().to_string().as_bytes());
    match &script {
        Ok(bytes) => part(bytes),
        Err(_) => part(b"\0missing"),
    }
    // Only VM tests hash more: earlier definitions of the others stand.
    if let Some(vm) = &test.vm {
        part(b"vm");
        part(serde_json::to_string(vm).unwrap_or_default().as_bytes());
        if let Some(prepare) = &vm.prepare {
            match recipe.test_file(recipes_root, test, prepare) {
                Ok((_, bytes)) => part(&bytes),
                Err(_) => part(b"\0missing"),
            }
        }
        if let Some(guest) = &vm.guest {
            part(b"guest");
            match recipe.test_file(recipes_root, test, guest) {
                Ok((_, bytes)) => part(&bytes),
                Err(_) => part(b"\0missing"),
            }
        }
    }
    hex(&hash.finalize())[..16].to_string()
}

/// The digest of `recipe`'s build: its text as parsed, tests left out (a
/// test added to the recipe does not make earlier build results stale).
pub fn of_build(recipe: &Recipe) -> String {
    let canonical = match recipe.text.parse::<toml::Table>() {
        Ok(mut table) => {
            table.remove("test");
            toml::to_string(&table).unwrap_or_else(|_| recipe.text.clone())
        }
        Err(_) => recipe.text.clone(),
    };
    let mut hash = Sha256::new();
    hash.update(b"build\0");
    hash.update(recipe.name.as_bytes());
    hash.update(b"\0");
    hash.update(canonical.as_bytes());
    hex(&hash.finalize())[..16].to_string()
}

/// The definition of `job` (`build-C` or `test-C-NAME`) of component
/// `component`, from the workspace's recipes as they are now.
pub fn of_job(ws: &crate::workspace::Workspace, component: &str, job: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let c = ws
        .manifest
        .component(component)
        .with_context(|| format!("no component `{component}`"))?;
    let recipe = ws.recipe(c)?;
    if job == super::jobs::build_job(component) {
        return Ok(of_build(&recipe));
    }
    let test = recipe
        .tests
        .iter()
        .find(|t| super::jobs::test_job(component, &t.name) == job)
        .with_context(|| format!("`{job}` is not a job of {component}'s recipe"))?;
    Ok(of_test(&ws.recipes_root, &recipe, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPE: &str = "kind = \"make\"\n\n[[test]]\nname = \"t\"\ntimeout = 60\n";

    fn recipe(text: &str) -> Recipe {
        Recipe::parse("r", text, "r.toml").unwrap()
    }

    #[test]
    fn a_definition_changes_with_script_entry_and_timeout_only() {
        let dir = tempfile::tempdir().unwrap();
        let scripts = dir.path().join("recipes/tests/r");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::write(scripts.join("t.sh"), "exit 0\n").unwrap();
        let r = recipe(RECIPE);
        let first = of_test(dir.path(), &r, &r.tests[0]);
        assert_eq!(first, of_test(dir.path(), &r, &r.tests[0]), "stable");
        std::fs::write(scripts.join("t.sh"), "exit 1\n").unwrap();
        let stricter = of_test(dir.path(), &r, &r.tests[0]);
        assert_ne!(first, stricter, "the script's content counts");
        let longer = recipe(&RECIPE.replace("60", "61"));
        assert_ne!(
            stricter,
            of_test(dir.path(), &longer, &longer.tests[0]),
            "the timeout counts"
        );
        std::fs::remove_file(scripts.join("t.sh")).unwrap();
        assert_ne!(
            stricter,
            of_test(dir.path(), &r, &r.tests[0]),
            "a missing script counts"
        );

        // A build is defined by its recipe without the tests.
        let more_tests = recipe(&format!("{RECIPE}\n[[test]]\nname = \"u\"\n"));
        assert_eq!(of_build(&r), of_build(&more_tests));
        let other_build = recipe(&RECIPE.replace("\"make\"", "\"autotools\""));
        assert_ne!(of_build(&r), of_build(&other_build));
    }
}
