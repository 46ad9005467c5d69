//! The short fuzzing run: every target of `sultana::fuzzing` on its seed
//! corpus (`tests/corpus/fuzz/TARGET/`) and on deterministic mutations of it.
//! A panic is an invariant broken; the input is saved under
//! `target/fuzz-findings/` and printed. The long run is coverage-guided
//! (`cargo +nightly fuzz run TARGET tests/corpus/fuzz/TARGET`, see README).
//!
//! `SULTANA_FUZZ_ITERATIONS` (mutations per target, default 20000) and
//! `SULTANA_FUZZ_SEED` vary the run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use sultana::fuzzing::{Target, TARGETS};

/// Tokens that matter to the readers: TOML, make, paths, git, templates.
const DICTIONARY: &[&[u8]] = &[
    b"\"",
    b"'",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"=",
    b"\n",
    b"{",
    b"}",
    b",",
    b"#",
    b"\\",
    b"\\\n",
    b"..",
    b"/",
    b"-",
    b"--",
    b"::",
    b"ext::",
    b"file://",
    b"@",
    b"@@",
    b"$(",
    b")",
    b"${",
    b"?=",
    b":=",
    b"+=",
    b"ifeq (",
    b"ifneq (,",
    b"else\n",
    b"endif\n",
    b"define x\n",
    b"endef\n",
    b"*",
    b"**/",
    b"?",
    b"[!a-",
    b"$Format:%H$",
    b".git",
    b"\0",
    b"\xc3\xa9",
    b"\xff",
    b"true",
    b"1e999",
    b"9999999999999999999999",
    b"components",
    b"[components.x]\n",
    b"url = ",
    b"revision = ",
    b"path = ",
    b"intree = ",
    b"depends = [",
    b"_UPSTREAM_URL",
    b"_UPSTREAM_REVISION",
    b"QEMU_TAG",
    b"[[test]]\n",
    b"{prefix}",
    b"{dep.up.prefix}",
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*: deterministic, dependency free.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.below(256) as u8),
            2 | 3 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                out.splice(at..at, token.iter().copied());
            }
            4 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            5 if at < out.len() => {
                let end = (at + 1 + rng.below(32)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn save_finding(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    std::fs::create_dir_all(&dir).unwrap();
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{hash:016x}"));
    std::fs::write(&path, input).unwrap();
    path
}

/// The panics of `target`: (message, input).
fn run_target(name: &str, target: Target, iterations: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let corpus = seeds(name);
    assert!(!corpus.is_empty(), "no seeds for {name}");
    let mut rng = Rng(seed ^ name.bytes().fold(0, |h, b| h * 31 + b as u64) | 1);
    let inputs = corpus
        .iter()
        .cloned()
        .chain((0..iterations).map(|_| {
            let base = &corpus[rng.below(corpus.len())];
            mutate(&mut rng, base, &corpus)
        }))
        .collect::<Vec<_>>();
    let mut findings = Vec::new();
    for input in inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            findings.push((message, input));
        }
    }
    findings
}

#[test]
fn fuzz_every_reader_of_untrusted_input() {
    let iterations = std::env::var("SULTANA_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed = std::env::var("SULTANA_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let mut findings = Vec::new();
    for (name, target) in TARGETS {
        for (message, input) in run_target(name, *target, iterations, seed) {
            let saved = save_finding(name, &input);
            findings.push(format!(
                "{name}: {message}\n  input {} ({:?})",
                saved.display(),
                String::from_utf8_lossy(&input)
            ));
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

/// The mutator and the invariants are live: a broken input is caught.
#[test]
fn the_fuzzer_catches_a_broken_invariant() {
    // No lock seed has `$Format`: only a mutation can put it there.
    assert!(seeds("lock").iter().all(|s| !s.windows(7).any(|w| w == b"$Format")));
    let broken: Target = |data| assert!(!data.windows(7).any(|w| w == b"$Format"), "found it");
    let findings = run_target("lock", broken, 2000, 1);
    assert!(!findings.is_empty());
    assert!(findings[0].0.contains("found it"));
}
