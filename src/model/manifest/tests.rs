use super::*;

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, "sultana.toml", None)
}

fn err(text: &str) -> String {
    parse(text).expect_err("should be refused").to_string()
}

#[test]
fn embedded_default_is_valid_and_ordered() {
    let m = Manifest::embedded_default();
    let names: Vec<_> = m.components.iter().map(|c| c.name.as_str()).collect();
    let xen = names.iter().position(|n| *n == "xen").unwrap();
    for dep in ["qemu-xen", "seabios", "mini-os"] {
        assert!(names.iter().position(|n| *n == dep).unwrap() < xen, "{dep} before xen");
    }
    // blktap is built against the Xen libraries dom0 runs.
    assert!(
        names.iter().position(|n| *n == "blktap").unwrap() > xen,
        "xen before blktap"
    );
    assert_eq!(m.component("blktap").unwrap().depends, ["xen"]);
    assert_eq!(m.root().unwrap().name, "xen");
    assert_eq!(
        m.component("qemu-xen").unwrap().submodules,
        crate::manifest::Submodules::All
    );
    assert!(!m.component("ovmf").unwrap().enabled);
    assert_eq!(
        m.component("blktap").unwrap().intree.as_deref(),
        Some(Path::new("tools/blktap"))
    );
}

#[test]
fn errors_point_at_line_and_column() {
    let text = "[components.xen]\nurl = \"https://x/xen.git\"\nrevision = \"master\"\nbogus = 1\n";
    let e = err(text);
    assert!(e.starts_with("sultana.toml:4:1:"), "{e}");
    assert!(e.contains("bogus"), "{e}");

    let e = err("[components.xen]\nurl = \"ext::sh -c touch% /tmp/x\"\nrevision = \"master\"\n");
    assert!(e.starts_with("sultana.toml:2:7:") && e.contains("ext::"), "{e}");

    let e = err("[components.Xen]\nurl = \"https://x\"\nrevision = \"master\"\n");
    assert!(
        e.starts_with("sultana.toml:1:13:") && e.contains("invalid component name"),
        "{e}"
    );
}

#[test]
fn refuses_bad_values() {
    let base = |extra: &str| format!("[components.a]\nurl = \"https://h/a.git\"\nrevision = \"main\"\n{extra}");
    assert!(err(&base("path = \"/etc\"\n")).contains("absolute"));
    assert!(err(&base("path = \"../up\"\n")).contains(".."));
    assert!(err(&base("revision2 = 1\n")).contains("revision2"));
    assert!(err("[components.a]\nurl = \"https://h/a.git\"\n").contains("has no `revision`"));
    assert!(err("[components.a]\nrevision = \"-x\"\n").contains("has no `url`"));
    assert!(err("[components.a]\nurl = \"https://h/a.git\"\nrevision = \"--upload-pack=x\"\n").contains("option"));
    assert!(err(&base("depends = [\"zz\"]\n")).contains("not a component"));
    let two = "[components.a]\nurl = \"https://h/a\"\nrevision = \"m\"\npath = \"x\"\n[components.b]\nurl = \"https://h/b\"\nrevision = \"m\"\npath = \"x\"\n";
    assert!(err(two).contains("both use path"));
    let nested = "[components.a]\nurl = \"https://h/a\"\nrevision = \"m\"\npath = \"x\"\n\
                  [components.b]\nurl = \"https://h/b\"\nrevision = \"m\"\npath = \"x/y\"\n";
    assert!(err(nested).contains("is inside path"), "{}", err(nested));
}

#[test]
fn cycles_are_reported_with_their_chain() {
    let text = "[components.a]\nurl = \"https://h/a\"\nrevision = \"m\"\ndepends = [\"b\"]\n\
                [components.b]\nurl = \"https://h/b\"\nrevision = \"m\"\ndepends = [\"c\"]\n\
                [components.c]\nurl = \"https://h/c\"\nrevision = \"m\"\ndepends = [\"a\"]\n";
    let e = err(text);
    assert!(e.contains("dependency cycle: a -> b -> c -> a"), "{e}");
}

#[test]
fn shipped_manifests_are_valid_and_their_recipes_exist() {
    for &Shipped { name, text, .. } in SHIPPED {
        let m = Manifest::parse(text, name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        for c in &m.components {
            crate::recipe::Recipe::load(Path::new("/nonexistent"), &c.recipe)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", c.name));
        }
        // What Xen's make knows survives an export and an import.
        let exported = crate::config_mk::export(&m, None).unwrap();
        let imported = crate::config_mk::import(&exported, name).unwrap();
        for pin in imported.pins {
            let c = m.component(&pin.component).unwrap();
            assert_eq!(
                (pin.url.as_str(), pin.revision.as_str()),
                (c.url.as_str(), c.revision.as_str())
            );
        }
    }
    let rev = |m: &Manifest, c: &str| m.component(c).unwrap().revision.clone();
    let m421 = Manifest::parse(shipped("xen-4.21").unwrap(), "xen-4.21", None).unwrap();
    assert_eq!(rev(&m421, "qemu-xen"), "qemu-xen-4.21.0");
    assert_eq!(rev(&m421, "seabios"), "rel-1.16.3");
    assert_eq!(rev(&m421, "mini-os"), "xen-RELEASE-4.21.0");
    assert!(m421.component("qemu-xen-traditional").is_none());
    let m420 = Manifest::parse(shipped("xen-4.20").unwrap(), "xen-4.20", None).unwrap();
    assert_eq!(rev(&m420, "qemu-xen-traditional"), "xen-4.20.0");
    assert_eq!(rev(&m420, "xen"), "RELEASE-4.20.0");
}

#[test]
fn a_mistyped_component_name_suggests_the_nearest() {
    let manifest = Manifest::embedded_default();
    let err = manifest.select(&["blktpa".to_string()], true).unwrap_err().to_string();
    assert!(err.contains("did you mean `blktap`?"), "{err}");
    let err = manifest
        .select(&["qemu-xne".to_string()], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `qemu-xen`?"), "{err}");
    let err = manifest.select(&["zzzz".to_string()], true).unwrap_err().to_string();
    assert!(!err.contains("did you mean"), "nothing near: {err}");
}
