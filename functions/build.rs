// Lambda binaries link without PIE, as Go's do: a position-independent executable
// carries a dynamic relocation for every pointer in its data (1.5 MB here), and a
// Lambda sandbox runs one process of one function.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
