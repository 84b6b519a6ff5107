//! README.md prints the error-class table and config examples; they must be the ones the code
//! uses and accepts.

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

#[test]
fn readme_error_table_matches_the_code() {
    let table = switchyard_gateway::errors::policy_table_markdown();
    assert!(
        readme().contains(&table),
        "README.md's error table is stale; replace it with:\n{table}"
    );
}

/// Every ```toml block in README is a config the gateway accepts and can build routes from
/// (a block without `[models…]` is a fragment, completed with a one-target route).
#[test]
fn readme_config_examples_are_valid() {
    let text = readme();
    let blocks: Vec<&str> = text
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 3, "found {} toml blocks", blocks.len());
    for block in blocks {
        let mut config = block.to_string();
        if !config.contains("[models.") {
            config
                .push_str("\n[models.x]\ntargets = [ { provider = \"openai\", model = \"m\" } ]\n");
        }
        let parsed = switchyard_gateway::config::parse(&config, "README", &|_| Some("sk-x".into()))
            .unwrap_or_else(|e| panic!("README block does not parse: {e}\n{block}"));
        switchyard_gateway::Gateway::new(&parsed)
            .unwrap_or_else(|e| panic!("README block does not build: {e}\n{block}"));
    }
}
