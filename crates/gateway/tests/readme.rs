//! README.md prints the error-class table; it must be the one the code uses.

#[test]
fn readme_error_table_matches_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = switchyard_gateway::errors::policy_table_markdown();
    assert!(
        readme.contains(&table),
        "README.md's error table is stale; replace it with:\n{table}"
    );
}
