//! Builds the write tracer preloaded into build steps
//! (src/ops/build/trace/sultana_trace.c) as a shared object the binary embeds.

fn main() {
    let source = "src/ops/build/trace/sultana_trace.c";
    println!("cargo:rerun-if-changed={source}");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out.join("libsultana_trace.so");
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&object)
        .arg(source)
        .arg("-ldl")
        .status()
        .expect("a C compiler for the write tracer");
    assert!(status.success(), "cannot build {source}");
}
