//! One canonical safety policy, mapped by each provider to what it has (Gemini's enums,
//! Mistral's `safe_prompt`) or reported as unsupported.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the client asked to be blocked, per harm category.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SafetyPolicy {
    pub settings: Vec<SafetySetting>,
}

impl SafetyPolicy {
    /// True when at least one category asks for blocking (anything but `block_none` / `off`).
    pub fn blocks_anything(&self) -> bool {
        self.settings.iter().any(|s| {
            !matches!(
                s.threshold,
                SafetyThreshold::BlockNone | SafetyThreshold::Off
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SafetySetting {
    pub category: HarmCategory,
    pub threshold: SafetyThreshold,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HarmCategory {
    Harassment,
    HateSpeech,
    SexuallyExplicit,
    DangerousContent,
    CivicIntegrity,
}

/// Ordered from most to least permissive blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SafetyThreshold {
    /// Filter off entirely, including safety metadata where the provider distinguishes it.
    Off,
    BlockNone,
    BlockOnlyHigh,
    BlockMediumAndAbove,
    BlockLowAndAbove,
}

/// What a provider does with a safety policy it cannot express, chosen per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnsupportedPolicy {
    /// Reject the request before any network call.
    #[default]
    Reject,
    /// Drop the field and add a warning to the response.
    Drop,
}
