//! Stored objects in matchbox's JSON format (as in a matchbox data
//! directory: `profiles/<id>.json`, `groups/<id>.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Network boot settings of a profile: the same `boot` block as the
/// matchbox data directories racker renders.
pub use crate::matchbox::Boot as NetBoot;

/// A profile: how a group of machines boots and which configs it gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Identifier.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Ignition config or Container Linux Config template name; raw
    /// Ignition when it ends in `.ign` or `.ignition`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ignition_id: String,
    /// Cloud-config id (stored, not served).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cloud_id: String,
    /// Network boot settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<NetBoot>,
    /// Generic template name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generic_id: String,
}

/// A group: machines chosen by label selectors, their profile and metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Identifier.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Profile id.
    #[serde(default)]
    pub profile: String,
    /// Label selectors (`mac` normalised to lower-case colon form).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Metadata for templates (a JSON object).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}
