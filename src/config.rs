//! The server's configuration: embedded defaults, an optional TOML file, `SIGHTLINE_*` env vars and flags,
//! in that order of precedence (flags win). Unknown keys are an error naming the key.

use serde::{Deserialize, Serialize};
use sightline_ingest::logs::server::LogReceiverConfig;
use sightline_ingest::otlp::server::OtlpConfig;
use sightline_ingest::statsd::StatsdConfig;
use sightline_model::Limits;
use sightline_storage::StorageConfig;
use sightline_ui::AuthConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The complete commented example printed by `sightline config --example`; a test loads it.
pub const EXAMPLE: &str = include_str!("../sightline.example.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where everything Sightline keeps lives.
    pub data_dir: PathBuf,
    pub listen: ListenConfig,
    pub statsd: StatsdConfig,
    /// Syslog and raw-line receiver on `--syslog-listen`.
    pub syslog: LogReceiverConfig,
    pub otlp: OtlpConfig,
    pub storage: StorageConfig,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub alerts: AlertsConfig,
    pub self_monitoring: SelfMonitoringConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: ListenConfig::default(),
            statsd: StatsdConfig::default(),
            syslog: LogReceiverConfig::default(),
            otlp: OtlpConfig::default(),
            storage: StorageConfig::default(),
            limits: Limits::default(),
            auth: AuthConfig::default(),
            alerts: AlertsConfig::default(),
            self_monitoring: SelfMonitoringConfig::default(),
        }
    }
}

/// Listener addresses: `host:port`, or `off`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    pub statsd: String,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub syslog: String,
    pub http: String,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            statsd: "127.0.0.1:8125".into(),
            otlp_grpc: "127.0.0.1:4317".into(),
            otlp_http: "127.0.0.1:4318".into(),
            syslog: "127.0.0.1:5514".into(),
            http: "127.0.0.1:7800".into(),
        }
    }
}

/// Alert evaluation settings (used by the monitors work).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub eval_interval: String,
    /// How long an OK monitor group may go without data before it is removed from the monitor's states,
    /// like `24h`; `off`: never.
    pub group_expiry: String,
    pub webhook_allow: Vec<String>,
    /// A PEM file of extra certificate authorities for `https://` webhooks (besides Mozilla's roots); empty:
    /// none.
    pub webhook_ca_file: String,
    /// The URL users reach Sightline at: the base of notifications' `$LINK` and Alertmanager `externalURL`;
    /// empty: `http://<the HTTP listener's address>`.
    pub external_url: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            eval_interval: "30s".into(),
            group_expiry: "24h".into(),
            webhook_allow: Vec::new(),
            webhook_ca_file: String::new(),
            external_url: String::new(),
        }
    }
}

/// Self-monitoring: Sightline's own `/metrics` written into its metric store (`sightline.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfMonitoringConfig {
    /// How often `/metrics` is read and stored, like `10s`; `off` disables it.
    pub interval: String,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        SelfMonitoringConfig {
            interval: "10s".into(),
        }
    }
}

/// Parses a listener setting: `None` for `off`, else the socket address. `what` names the setting in errors.
pub fn parse_listen(what: &str, value: &str) -> anyhow::Result<Option<SocketAddr>> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr = v
        .parse::<SocketAddr>()
        .map_err(|e| anyhow::anyhow!("{what}: {v:?} is not host:port or off ({e})"))?;
    Ok(Some(addr))
}

impl Config {
    /// Reads a TOML file; unknown keys are an error that names them.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        Config::from_toml(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        Ok(toml::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_complete_and_matches_defaults() {
        let parsed = Config::from_toml(EXAMPLE).expect("the example config parses");
        assert_eq!(parsed, Config::default());
        // Every key of the defaults appears in the example, and nothing else does.
        let example: toml::Value = toml::from_str(EXAMPLE).unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        assert_eq!(example, defaults);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[storage]\nretention_dayz = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention_dayz"), "{err}");
        let err = Config::from_toml("bogus = 1\n").unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn listen_values() {
        fn check(input: &str, expected: Result<Option<&str>, &str>) {
            match (parse_listen("--http-listen", input), expected) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.map(|a| a.to_string()).as_deref(), want, "{input}")
                }
                (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
        check("127.0.0.1:0", Ok(Some("127.0.0.1:0")));
        check("OFF", Ok(None));
        check("[::1]:7800", Ok(Some("[::1]:7800")));
        check(
            "localhost",
            Err("--http-listen: \"localhost\" is not host:port"),
        );
    }
}
