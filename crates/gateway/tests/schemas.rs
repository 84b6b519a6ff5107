//! The committed JSON Schemas under `schemas/` must match the code. Regenerate with
//! `cargo xtask schemas` (or `UPDATE_SCHEMAS=1 cargo test -p switchyard-gateway --test schemas`).

use std::path::PathBuf;

#[test]
fn committed_schemas_match_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut drift = Vec::new();
    for (name, text) in switchyard_gateway::schemas::all() {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == text => {}
            Ok(_) => drift.push(format!("{name} differs from the code")),
            Err(_) => drift.push(format!("{name} is missing")),
        }
    }
    assert!(
        drift.is_empty(),
        "schemas/ is out of date ({}); run `cargo xtask schemas`",
        drift.join(", ")
    );
}

#[test]
fn the_config_schema_describes_targets() {
    let (_, text) = switchyard_gateway::schemas::all()
        .into_iter()
        .find(|(n, _)| *n == "config.schema.json")
        .unwrap();
    assert!(text.contains("\"first_token_ms\""), "{text}");
    assert!(text.contains("\"api_key\""));
}
