//! `{ per = "second", count = 100 }`: one limit window.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
}

impl Per {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Per::Second => 1,
            Per::Minute => 60,
            Per::Hour => 3600,
            Per::Day => 86_400,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Per::Second => "second",
            Per::Minute => "minute",
            Per::Hour => "hour",
            Per::Day => "day",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub per: Per,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_per_has_its_length_and_name() {
        for (per, secs, name) in [
            (Per::Second, 1, "second"),
            (Per::Minute, 60, "minute"),
            (Per::Hour, 3600, "hour"),
            (Per::Day, 86_400, "day"),
        ] {
            assert_eq!(per.duration(), Duration::from_secs(secs));
            assert_eq!(per.as_str(), name);
            assert_eq!(serde_json::to_string(&per).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn a_window_reads_from_toml_and_refuses_unknown_units_and_keys() {
        let w: Window = toml::from_str("per = \"minute\"\ncount = 100").unwrap();
        assert_eq!(
            w,
            Window {
                per: Per::Minute,
                count: 100
            }
        );
        assert!(toml::from_str::<Window>("per = \"week\"\ncount = 1").is_err());
        assert!(toml::from_str::<Window>("per = \"Minute\"\ncount = 1").is_err());
        assert!(toml::from_str::<Window>("per = \"minute\"\ncount = -1").is_err());
        assert!(toml::from_str::<Window>("per = \"minute\"\ncount = 1\nburst = 2").is_err());
        assert!(toml::from_str::<Window>("per = \"minute\"").is_err());
    }
}
