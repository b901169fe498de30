//! The UI's TypeScript is generated from the Rust types: this fails when `ui/src/bindings.ts`
//! is not what the commands and events generate now.

#[test]
fn the_generated_typescript_is_current() {
    let expected = storyteller_desktop::typescript_bindings().expect("generating the bindings");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(storyteller_desktop::BINDINGS);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is stale: run `cargo run -p storyteller-desktop -- --write-bindings` and commit it",
        path.display()
    );
}
