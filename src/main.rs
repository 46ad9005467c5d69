fn main() {
    std::process::exit(sultana::run());
}
