//! Small real projects in local git repositories: an autotools C library
//! with `make check`, a make-only tool, a cargo project with no dependencies,
//! a kbuild module, and a root tree whose build uses the library through
//! `{dep.NAME.*}`. `sultana demo` and the integration tests use the same ones.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{Oid, Repository, RepositoryInitOptions, Signature, Time};

/// One file of a fixture: path, content, executable.
pub type File = (&'static str, String, bool);

pub struct Project {
    pub name: &'static str,
    pub files: Vec<File>,
    pub recipe: &'static str,
    /// Test scripts for `recipes/tests/<name>/`: (file name, content).
    pub tests: Vec<(&'static str, &'static str)>,
}

fn text(path: &'static str, content: &str) -> File {
    (path, content.to_string(), false)
}

pub fn libfix() -> Project {
    Project {
        name: "libfix",
        files: vec![
            text("configure.ac", "AC_INIT([libfix], [1.0])\nAM_INIT_AUTOMAKE([foreign subdir-objects])\nAC_PROG_CC\nAC_PROG_RANLIB\nAM_PROG_AR\nAC_CONFIG_FILES([Makefile])\nAC_OUTPUT\n"),
            text("Makefile.am", "lib_LIBRARIES = libfix.a\nlibfix_a_SOURCES = fix.c\ninclude_HEADERS = fix.h\ncheck_PROGRAMS = test-fix\ntest_fix_SOURCES = test-fix.c\ntest_fix_LDADD = libfix.a\nTESTS = test-fix\n"),
            text("fix.h", "#ifndef FIX_H\n#define FIX_H\nint fix_add(int a, int b);\n#endif\n"),
            text("fix.c", "#include \"fix.h\"\nint fix_add(int a, int b) { return a + b; }\n"),
            text("test-fix.c", "#include <stdio.h>\n#include \"fix.h\"\nint main(void) {\n    if (fix_add(2, 3) != 5) { printf(\"FAIL fix_add\\n\"); return 1; }\n    printf(\"PASS fix_add\\n\");\n    return 0;\n}\n"),
            text(".gitignore", "Makefile.in\n/aclocal.m4\n/autom4te.cache/\n/compile\n/configure\n/configure~\n/depcomp\n/install-sh\n/missing\n/test-driver\n/ar-lib\n"),
        ],
        recipe: "description = \"libfix: an autotools C library with make check (fixture)\"\n\
kind = \"autotools\"\n\
bootstrap = [\"autoreconf\", \"-fi\"]\n\
configure = [\"--prefix={prefix}\", \"--libdir={libdir}\"]\n\n\
[build_deps]\ndebian = [\"gcc\", \"make\", \"autoconf\", \"automake\"]\n\n\
[exports]\ncflags = \"-I{prefix}/include\"\nlibs = \"-L{libdir} -lfix\"\n\n\
[[probe]]\ntype = \"library\"\nname = \"fix\"\n\n\
[[probe]]\ntype = \"header\"\npath = \"fix.h\"\n\n\
[[test]]\nname = \"check\"\ndescription = \"the library's own suite: make check in the build folder\"\ntimeout = 120\n\n\
[[test]]\nname = \"disk\"\ndescription = \"a disk image made and read back with qemu-img and qemu-io, sized by the library\"\ntimeout = 120\n",
        tests: vec![
            (
                "check.sh",
                "#!/bin/bash\n# The library's own test suite, in its build folder.\ncd \"$SULTANA_BUILD\" || exit 99\nmake check >\"$SULTANA_WORK/check.log\" 2>&1 && exit 0\ncat \"$SULTANA_WORK/check.log\" test-suite.log 2>/dev/null | tail -n 20\nexit 1\n",
            ),
            (
                "disk.sh",
                "#!/bin/bash\n# A qcow2 image whose size in MiB the staged library computes (fix_add(2, 3)),\n# written and read back with qemu-io.\nset -u\ncommand -v qemu-img >/dev/null || { echo \"skip: qemu-img is not installed (Debian package qemu-utils)\"; exit 77; }\ncd \"$SULTANA_WORK\" || exit 99\nprintf '#include <stdio.h>\\n#include <fix.h>\\nint main(void) { printf(\"%%d\\\\n\", fix_add(2, 3)); return 0; }\\n' > size.c\ncc -I\"$SULTANA_PREFIX/include\" -o size size.c -L\"$SULTANA_PREFIX/lib\" -lfix || exit 99\nmib=$(./size)\nqemu-img create -q -f qcow2 disk.qcow2 \"${mib}M\" || exit 1\nout=$(qemu-io -c 'write -P 0x42 0 1M' -c 'read -P 0x42 0 1M' disk.qcow2) || exit 1\necho \"$out\"\ncase $out in *'Pattern verification failed'*) exit 1 ;; esac\nbytes=$(qemu-img info disk.qcow2 | sed -n 's/^virtual size: .*(\\([0-9]*\\) bytes)$/\\1/p')\n[ \"$bytes\" = $((5 * 1024 * 1024)) ] || { echo \"FAIL: the image is $bytes bytes, not 5 MiB\"; exit 1; }\necho \"disk: ${mib} MiB image written and read back\"\n",
            ),
        ],
    }
}

pub fn tool() -> Project {
    Project {
        name: "tool",
        files: vec![
            // BUILD-INFO is written in the source and not in .gitignore (like
            // SeaBIOS's .version): the recipe's `ignore` keeps the tree clean.
            text("Makefile", "PREFIX ?= /usr/local\nall: fixtool\nfixtool: fixtool.c\n\t$(CC) $(CFLAGS) -o $@ fixtool.c\n\techo built > BUILD-INFO\ninstall: fixtool\n\tinstall -D -m 0755 fixtool $(DESTDIR)$(PREFIX)/bin/fixtool\nclean:\n\trm -f fixtool BUILD-INFO\n.PHONY: all install clean\n"),
            text("fixtool.c", "#include <stdio.h>\nint main(void) { puts(\"fixtool 1.0\"); return 0; }\n"),
            text(".gitignore", "/fixtool\n"),
        ],
        recipe: "description = \"tool: a make-only project (fixture)\"\n\
kind = \"make\"\n\
make = [\"-j{jobs}\"]\n\
install = [\"install\", \"DESTDIR={destdir}\", \"PREFIX={prefix}\"]\n\
clean = [\"make\", \"clean\"]\n\
ignore = [\"/BUILD-INFO\"]\n\n\
[build_deps]\ndebian = [\"gcc\", \"make\"]\n\n\
[[probe]]\ntype = \"program\"\nname = \"fixtool\"\n\n\
[[test]]\nname = \"version\"\ndescription = \"the installed fixtool prints its version\"\ntimeout = 60\n",
        tests: vec![(
            "version.sh",
            "#!/bin/bash\n# The staged program runs and says what it is.\nout=$(\"$SULTANA_PREFIX/bin/fixtool\") || { echo \"FAIL: fixtool exited $?\"; exit 1; }\necho \"$out\"\ncase $out in \"fixtool \"[0-9]*) exit 0 ;; esac\necho \"FAIL: unexpected output\"\nexit 1\n",
        )],
    }
}

pub fn rusty() -> Project {
    Project {
        name: "rusty",
        files: vec![
            text("Cargo.toml", "[package]\nname = \"rusty\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"),
            text("Cargo.lock", "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"rusty\"\nversion = \"0.1.0\"\n"),
            text("src/main.rs", "fn main() {\n    println!(\"rusty 0.1.0\");\n}\n"),
            text(".gitignore", "/target\n"),
        ],
        recipe: "description = \"rusty: a cargo project with no dependencies (fixture)\"\nkind = \"cargo\"\n\n[build_deps]\ndebian = [\"cargo\"]\n",
        tests: Vec::new(),
    }
}

pub fn hello_module() -> Project {
    Project {
        name: "hello-module",
        files: vec![
            text("module/Kbuild", "obj-m := hello.o\n"),
            text("module/hello.c", "#include <linux/module.h>\n#include <linux/init.h>\nstatic int __init hello_init(void) { pr_info(\"hello\\n\"); return 0; }\nstatic void __exit hello_exit(void) { }\nmodule_init(hello_init);\nmodule_exit(hello_exit);\nMODULE_LICENSE(\"GPL\");\n"),
        ],
        recipe: "description = \"hello-module: a kbuild hello-world module (fixture)\"\n\
kind = \"kbuild\"\n\n[kbuild]\ndir = \"module\"\nmodules = [\"hello.ko\"]\n\n\
[build_deps]\ndebian = [\"gcc\", \"make\", \"linux-headers-amd64\"]\n",
        tests: Vec::new(),
    }
}

/// The root tree (Xen's place in the demo): its program links libfix.
pub fn root() -> Project {
    Project {
        name: "root",
        files: vec![
            // Always relinked: the library it links comes from outside the tree
            // (and `install` installs what `all` made, with its flags).
            text("Makefile", "PREFIX ?= /usr/local\nall: rootapp\nrootapp: main.c FORCE\n\t$(CC) $(CFLAGS) $(FIX_CFLAGS) -o $@ main.c $(FIX_LIBS)\ninstall:\n\tinstall -D -m 0755 rootapp $(DESTDIR)$(PREFIX)/bin/rootapp\nclean:\n\trm -f rootapp\nFORCE:\n.PHONY: all install clean FORCE\n"),
            text("main.c", "#include <stdio.h>\n#include <fix.h>\nint main(void) { printf(\"rootapp: 2 + 3 = %d\\n\", fix_add(2, 3)); return 0; }\n"),
            text("README", "The root tree: the external trees are inlined under tools/ and extras/ in a release tarball.\n"),
            ("tools/version.sh", "#!/bin/sh\necho 1.0\n".to_string(), true),
            text(".gitignore", "/rootapp\n"),
        ],
        recipe: "description = \"root: the root tree, linking libfix through {dep.libfix.*} (fixture)\"\n\
kind = \"make\"\n\
make = [\"-j{jobs}\", \"FIX_CFLAGS={dep.libfix.cflags}\", \"FIX_LIBS={dep.libfix.libs}\"]\n\
install = [\"install\", \"DESTDIR={destdir}\", \"PREFIX={prefix}\"]\n\
clean = [\"make\", \"clean\"]\n\n\
[build_deps]\ndebian = [\"gcc\", \"make\"]\n\n\
[[probe]]\ntype = \"program\"\nname = \"rootapp\"\n\n\
[[test]]\nname = \"app\"\ndescription = \"the root program adds with the library it was built against\"\ntimeout = 60\n",
        tests: vec![(
            "app.sh",
            "#!/bin/bash\n# The root program, linked with libfix, adds correctly.\nout=$(\"$SULTANA_PREFIX/bin/rootapp\") || { echo \"FAIL: rootapp exited $?\"; exit 1; }\necho \"$out\"\n[ \"$out\" = \"rootapp: 2 + 3 = 5\" ] || { echo \"FAIL: wrong sum\"; exit 1; }\n",
        )],
    }
}

/// Fixed author and clock so fixture commits have the same ids everywhere.
pub struct Clock(std::cell::Cell<i64>);

impl Default for Clock {
    fn default() -> Self {
        Clock(std::cell::Cell::new(1_767_225_600)) // 2026-01-01
    }
}

impl Clock {
    fn signature(&self) -> Result<Signature<'static>> {
        let t = self.0.get() + 60;
        self.0.set(t);
        Ok(Signature::new(
            "sultana demo",
            "demo@sultana.invalid",
            &Time::new(t, 0),
        )?)
    }
}

/// A new repository at `dir` holding the project as its first commit on `master`.
pub fn create(dir: &Path, project: &Project, clock: &Clock) -> Result<Oid> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head("master");
    Repository::init_opts(dir, &options).with_context(|| format!("cannot create {}", dir.display()))?;
    commit(
        dir,
        &project.files,
        &format!("{}: initial version", project.name),
        clock,
    )
}

/// Write `files` into the repository at `dir` and commit them on HEAD.
pub fn commit(dir: &Path, files: &[File], message: &str, clock: &Clock) -> Result<Oid> {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repository::open(dir)?;
    let mut index = repo.index()?;
    for (path, content, executable) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, content)?;
        let mode = if *executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode))?;
        index.add_path(Path::new(path))?;
    }
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let signature = clock.signature()?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &parents)?)
}

/// Tag HEAD (annotated).
pub fn tag(dir: &Path, name: &str, clock: &Clock) -> Result<Oid> {
    let repo = Repository::open(dir)?;
    let head = repo.head()?.peel(git2::ObjectType::Commit)?;
    Ok(repo.tag(name, &head, &clock.signature()?, name, false)?)
}

/// The demo's upstreams under `dir`: (name, path) of each repository.
pub fn create_upstreams(dir: &Path, clock: &Clock) -> Result<Vec<(&'static str, PathBuf)>> {
    let mut out = Vec::new();
    for project in [libfix(), tool(), rusty(), root()] {
        let path = dir.join(project.name);
        create(&path, &project, clock)?;
        tag(&path, "v1.0", clock)?;
        out.push((project.name, path));
    }
    Ok(out)
}

/// A manifest for the demo upstreams: the root tree inlines the others.
pub fn manifest(upstreams: &Path) -> String {
    let url = |name: &str| format!("file://{}", upstreams.join(name).display());
    format!(
        "[workspace]\nname = \"demo\"\n\n[tarball]\nroot = \"root\"\nname = \"root-{{desc}}\"\nformats = [\"gz\"]\n\n\
[components.libfix]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"extras/libfix\"\n\n\
[components.tool]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/tool\"\n\n\
[components.rusty]\nurl = \"{}\"\nrevision = \"master\"\nintree = \"tools/rusty\"\n\n\
[components.root]\nurl = \"{}\"\nrevision = \"master\"\ndepends = [\"libfix\", \"tool\", \"rusty\"]\n",
        url("libfix"),
        url("tool"),
        url("rusty"),
        url("root")
    )
}

/// The fixtures' recipes into `workspace/recipes/`.
pub fn write_recipes(workspace: &Path) -> Result<()> {
    let dir = workspace.join("recipes");
    std::fs::create_dir_all(&dir)?;
    for project in [libfix(), tool(), rusty(), root(), hello_module()] {
        crate::fsutil::atomic_write(&dir.join(format!("{}.toml", project.name)), project.recipe.as_bytes())?;
        for (file, content) in &project.tests {
            crate::fsutil::atomic_write(&dir.join("tests").join(project.name).join(file), content.as_bytes())?;
        }
    }
    Ok(())
}
