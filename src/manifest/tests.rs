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
    for dep in ["qemu-xen", "seabios", "mini-os", "blktap"] {
        assert!(names.iter().position(|n| *n == dep).unwrap() < xen, "{dep} before xen");
    }
    assert_eq!(m.root().unwrap().name, "xen");
    assert!(m.component("qemu-xen").unwrap().submodules);
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
