//! Reading the settings: defaults in code → optional TOML file →
//! `SCANPAY_<SECTION>_<KEY>` env vars, each value typed like its default.

use std::path::Path;

use super::{ConfigError, SECTIONS, Settings};

impl Settings {
    /// Defaults, then the TOML file (if any), then `SCANPAY_<SECTION>_<KEY>` from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Settings::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("SCANPAY_") else {
                continue;
            };
            for section in SECTIONS {
                let prefix = format!("{}_", section.to_ascii_uppercase());
                if let Some(key) = rest.strip_prefix(&prefix) {
                    let key = key.to_ascii_lowercase();
                    let typed = env_value(&defaults, section, &key, value.clone());
                    let entry = table
                        .entry(section.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    match entry {
                        toml::Value::Table(t) => {
                            t.insert(key, typed);
                        }
                        _ => {
                            return Err(ConfigError::Invalid(format!(
                                "[{section}] must be a table"
                            )));
                        }
                    }
                }
            }
        }
        let settings: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }
}

/// Env values are text; give them the type of the default at the same key
/// (so `SCANPAY_CHECKOUT_QR_TTL_SECS=3` is a number and `SCANPAY_WXPAY_MCH_ID=1000` stays text).
fn env_value(defaults: &toml::Table, section: &str, key: &str, raw: String) -> toml::Value {
    let default = defaults
        .get(section)
        .and_then(|s| s.as_table())
        .and_then(|t| t.get(key));
    let parsed = match default {
        Some(toml::Value::Integer(_)) => raw.trim().parse().ok().map(toml::Value::Integer),
        Some(toml::Value::Float(_)) => raw.trim().parse().ok().map(toml::Value::Float),
        Some(toml::Value::Boolean(_)) => raw.trim().parse().ok().map(toml::Value::Boolean),
        // Lists are comma-separated: SCANPAY_HTTP_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8
        Some(toml::Value::Array(_)) => Some(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        )),
        _ => None,
    };
    parsed.unwrap_or(toml::Value::String(raw))
}
