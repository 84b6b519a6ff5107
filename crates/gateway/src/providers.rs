//! The provider crates compiled into this build (cargo features), by config name.

use std::sync::Arc;

use switchyard_core::Provider;

struct Entry {
    name: &'static str,
    default_base_url: &'static str,
    make: fn() -> Arc<dyn Provider>,
}

const ENTRIES: &[Entry] = &[
    Entry {
        name: "openai",
        default_base_url: "https://api.openai.com/v1",
        make: || Arc::new(switchyard_openai::OpenAi),
    },
    #[cfg(feature = "anthropic")]
    Entry {
        name: "anthropic",
        default_base_url: "https://api.anthropic.com",
        make: || Arc::new(switchyard_anthropic::Anthropic),
    },
    #[cfg(feature = "gemini")]
    Entry {
        name: "gemini",
        default_base_url: "https://generativelanguage.googleapis.com",
        make: || Arc::new(switchyard_gemini::Gemini),
    },
    #[cfg(feature = "mistral")]
    Entry {
        name: "mistral",
        default_base_url: "https://api.mistral.ai/v1",
        make: || Arc::new(switchyard_mistral::Mistral),
    },
    #[cfg(feature = "deepseek")]
    Entry {
        name: "deepseek",
        default_base_url: "https://api.deepseek.com",
        make: || Arc::new(switchyard_deepseek::DeepSeek),
    },
    #[cfg(feature = "qwen")]
    Entry {
        name: "qwen",
        default_base_url: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        make: || Arc::new(switchyard_qwen::Qwen),
    },
];

/// Names of the providers this build supports.
pub fn compiled() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.name).collect()
}

pub fn is_known(name: &str) -> bool {
    ENTRIES.iter().any(|e| e.name == name)
}

/// The provider and its public base URL.
pub fn get(name: &str) -> Option<(Arc<dyn Provider>, &'static str)> {
    ENTRIES
        .iter()
        .find(|e| e.name == name)
        .map(|e| ((e.make)(), e.default_base_url))
}
