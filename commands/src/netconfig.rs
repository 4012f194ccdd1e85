//! Placeholder until the netlink implementation lands (branch `netconfig`).

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct NetConfig(Vec<serde_json::Value>);

impl NetConfig {
    pub fn apply(&self) -> Result<(), String> {
        Err("not implemented yet".to_owned())
    }
}
