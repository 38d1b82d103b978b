//! Configuration from the environment (spec §9). Every `FLEETPASS_*` variable must be
//! one the product knows (a server setting, or one the docs give to the agent, to
//! `curl` examples or to the test harness) and every server setting valid: a typo is
//! an error naming the variable and the setting it resembles, not a silently ignored
//! setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fleetpass_http::secret_scanning::PartnerKeys;
use fleetpass_http::{AdminKey, GuardConfig, HttpConfig, RateLimitFields, TrustedProxies};
use fleetpass_ports::keys::MasterKey;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line, for log shippers.
    Json,
}

/// Where rate-limit counts live (`FLEETPASS_RATE_LIMIT_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    /// In this process: limits hold per replica. The default without `DATABASE_URL`.
    Memory,
    /// In PostgreSQL, shared by every replica, with the in-process limiter as the
    /// fallback while the database is unreachable. The default with `DATABASE_URL`.
    Postgres,
}

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: Postgres when set, the in-memory store otherwise.
    pub database_url: Option<String>,
    /// Whether `FLEETPASS_PUBLIC_URL` was set (rather than defaulted from the bind
    /// address, which differs per replica).
    pub public_url_set: bool,
    /// `FLEETPASS_BIND`.
    pub bind: SocketAddr,
    /// `FLEETPASS_LOG`: a tracing filter.
    pub log_filter: String,
    /// `FLEETPASS_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `FLEETPASS_MIGRATE`: apply pending migrations at start.
    pub migrate_on_start: bool,
    /// `FLEETPASS_DB_POOL_SIZE`: Postgres connections per process.
    pub pool_size: usize,
    /// `FLEETPASS_MASTER_KEY` or the file named by `FLEETPASS_MASTER_KEY_FILE`: seals
    /// signing keys at rest. Required in Postgres mode; ephemeral in memory mode.
    pub master_key: Option<MasterKey>,
    /// HTTP settings (`FLEETPASS_PUBLIC_URL`, `FLEETPASS_ADMIN_KEY`, `FLEETPASS_QUERY_TOKENS`,
    /// `FLEETPASS_METRICS_TOKEN`, and the secret-scanning partner key set from
    /// `FLEETPASS_SECRET_SCANNING_KEYS_FILE` or `FLEETPASS_SECRET_SCANNING_KEYS`).
    pub http: HttpConfig,
    /// Rate limits and trusted proxies (`FLEETPASS_PUBLIC_RATE_LIMIT`,
    /// `FLEETPASS_AUTH_FAILURE_LIMIT`, `FLEETPASS_TRUSTED_PROXIES`,
    /// `FLEETPASS_RATE_LIMIT_HEADERS`).
    pub guard: GuardConfig,
    /// `FLEETPASS_RATE_LIMIT_BACKEND`.
    pub rate_limit_backend: RateLimitBackend,
    /// `FLEETPASS_MAX_HELD_POLLS`: how many waiting check-ins this process holds at
    /// once; more are refused with 503 and `Retry-After`.
    pub max_held_polls: usize,
}

/// A configuration error: which variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable.
    pub var: String,
    /// What is wrong.
    pub message: String,
}

fn err(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        message: message.into(),
    }
}

const KNOWN: &[&str] = &[
    "FLEETPASS_BIND",
    "FLEETPASS_PUBLIC_URL",
    "FLEETPASS_ADMIN_KEY",
    "FLEETPASS_LOG",
    "FLEETPASS_LOG_FORMAT",
    "FLEETPASS_QUERY_TOKENS",
    "FLEETPASS_MIGRATE",
    "FLEETPASS_DB_POOL_SIZE",
    "FLEETPASS_MASTER_KEY",
    "FLEETPASS_MASTER_KEY_FILE",
    "FLEETPASS_PUBLIC_RATE_LIMIT",
    "FLEETPASS_AUTH_FAILURE_LIMIT",
    "FLEETPASS_TRUSTED_PROXIES",
    "FLEETPASS_RATE_LIMIT_BACKEND",
    "FLEETPASS_RATE_LIMIT_HEADERS",
    "FLEETPASS_METRICS_TOKEN",
    "FLEETPASS_MAX_POLL_WAIT",
    "FLEETPASS_MAX_HELD_POLLS",
    "FLEETPASS_SECRET_SCANNING_KEYS",
    "FLEETPASS_SECRET_SCANNING_KEYS_FILE",
];

/// `FLEETPASS_*` names the product documents for others than the server, which a
/// user's shell may well hold while it starts the server: the agent's settings, the
/// variables the `/docs` and guide examples use, and the test and CI harnesses'.
const OTHERS: &[&str] = &[
    // fleetpass-agent (README, `fleetpass-agent --help`).
    "FLEETPASS_SERVER",
    "FLEETPASS_ENROLLMENT_TOKEN",
    "FLEETPASS_AGENT_STATE",
    "FLEETPASS_AGENT_LOG",
    // The shell variables of the /docs examples and guides.
    "FLEETPASS_URL",
    "FLEETPASS_TOKEN",
    // The test harnesses (README "Tests", fuzz/README.md, `cargo xtask contract`).
    "FLEETPASS_TEST_BIN",
    "FLEETPASS_AGENT_BIN",
    "FLEETPASS_TEST_KEEP_DB",
    "FLEETPASS_FUZZ_VERBOSE",
    "FLEETPASS_CONTRACT_TOKEN",
    "FLEETPASS_CONTRACT_THROWAWAY_TOKEN",
];

/// The refusal of an unknown `FLEETPASS_*` name: the known name it most resembles
/// (a typo), else the list of server settings.
fn unknown_setting(name: &str) -> ConfigError {
    let nearest = KNOWN
        .iter()
        .chain(OTHERS)
        .map(|known| (strsim::levenshtein(name, known), *known))
        .min()
        .filter(|(distance, _)| *distance <= 3);
    match nearest {
        Some((_, known)) => err(name, format!("unknown setting; did you mean {known}?")),
        None => err(
            name,
            format!(
                "unknown setting; the server's settings are {}",
                KNOWN.join(", ")
            ),
        ),
    }
}

fn on_off(var: &str, value: Option<&String>, default: bool) -> Result<bool, ConfigError> {
    match value.map(String::as_str) {
        None => Ok(default),
        Some("on" | "true" | "1") => Ok(true),
        Some("off" | "false" | "0") => Ok(false),
        Some(other) => Err(err(var, format!("must be `on` or `off`, not {other:?}"))),
    }
}

impl Config {
    /// Reads the configuration from `vars` (the process environment in production).
    ///
    /// # Errors
    /// The first unknown or invalid variable.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        if let Some(unknown) = vars.keys().find(|k| {
            k.starts_with("FLEETPASS_")
                && !KNOWN.contains(&k.as_str())
                && !OTHERS.contains(&k.as_str())
        }) {
            return Err(unknown_setting(unknown));
        }
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty());
        let database_url = match get("DATABASE_URL") {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(url.clone())
            }
            Some(_) => return Err(err("DATABASE_URL", "must be a postgres:// URL")),
            None => None,
        };
        let bind: SocketAddr = get("FLEETPASS_BIND")
            .map_or("127.0.0.1:8080", String::as_str)
            .parse()
            .map_err(|_| {
                err(
                    "FLEETPASS_BIND",
                    "must be an address and port, e.g. 127.0.0.1:8080",
                )
            })?;
        let public_url = match get("FLEETPASS_PUBLIC_URL") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_owned()
            }
            Some(_) => {
                return Err(err(
                    "FLEETPASS_PUBLIC_URL",
                    "must start with http:// or https://",
                ));
            }
            None => format!("http://{bind}"),
        };
        let admin_key = match get("FLEETPASS_ADMIN_KEY") {
            Some(key) if key.len() >= 16 => Some(AdminKey::new(key)),
            Some(_) => return Err(err("FLEETPASS_ADMIN_KEY", "must be at least 16 characters")),
            None => None,
        };
        let log_format = match get("FLEETPASS_LOG_FORMAT").map(String::as_str) {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "FLEETPASS_LOG_FORMAT",
                    format!("must be `pretty` or `json`, not {other:?}"),
                ));
            }
        };
        let log_filter = get("FLEETPASS_LOG")
            .cloned()
            .unwrap_or_else(|| "info".to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| err("FLEETPASS_LOG", format!("is not a valid log filter: {e}")))?;
        let pool_size = match get("FLEETPASS_DB_POOL_SIZE") {
            None => 10,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=200).contains(n))
                .ok_or_else(|| err("FLEETPASS_DB_POOL_SIZE", "must be a number from 1 to 200"))?,
        };
        let master_key = match (
            get("FLEETPASS_MASTER_KEY"),
            get("FLEETPASS_MASTER_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "FLEETPASS_MASTER_KEY_FILE",
                    "set either FLEETPASS_MASTER_KEY or FLEETPASS_MASTER_KEY_FILE, not both",
                ));
            }
            (Some(key), None) => {
                Some(MasterKey::parse(key).map_err(|e| err("FLEETPASS_MASTER_KEY", e))?)
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    err(
                        "FLEETPASS_MASTER_KEY_FILE",
                        format!("cannot read {path}: {e}"),
                    )
                })?;
                Some(
                    MasterKey::parse(&text)
                        .map_err(|e| err("FLEETPASS_MASTER_KEY_FILE", format!("{path}: {e}")))?,
                )
            }
            (None, None) => None,
        };
        let secret_scanning = match (
            get("FLEETPASS_SECRET_SCANNING_KEYS"),
            get("FLEETPASS_SECRET_SCANNING_KEYS_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "FLEETPASS_SECRET_SCANNING_KEYS_FILE",
                    "set either FLEETPASS_SECRET_SCANNING_KEYS or FLEETPASS_SECRET_SCANNING_KEYS_FILE, not both",
                ));
            }
            (Some(json), None) => Some(
                PartnerKeys::parse(json)
                    .map_err(|e| err("FLEETPASS_SECRET_SCANNING_KEYS", e.to_string()))?,
            ),
            (None, Some(path)) => {
                let var = "FLEETPASS_SECRET_SCANNING_KEYS_FILE";
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err(var, format!("cannot read {path}: {e}")))?;
                Some(PartnerKeys::parse(&text).map_err(|e| err(var, format!("{path}: {e}")))?)
            }
            (None, None) => None,
        };
        let per_minute = |var: &str, default: u32| -> Result<u32, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| {
                        err(
                            var,
                            "must be a number of requests a minute from 1 to 100000",
                        )
                    }),
            }
        };
        let guard = GuardConfig {
            public_per_minute: per_minute("FLEETPASS_PUBLIC_RATE_LIMIT", 60)?,
            auth_failures_per_minute: per_minute("FLEETPASS_AUTH_FAILURE_LIMIT", 20)?,
            trusted_proxies: TrustedProxies::parse(
                get("FLEETPASS_TRUSTED_PROXIES").map_or("", String::as_str),
            )
            .map_err(|e| err("FLEETPASS_TRUSTED_PROXIES", e))?,
            rate_limit_fields: match get("FLEETPASS_RATE_LIMIT_HEADERS") {
                None => RateLimitFields::default(),
                Some(raw) => RateLimitFields::parse(raw).ok_or_else(|| {
                    err(
                        "FLEETPASS_RATE_LIMIT_HEADERS",
                        format!("must be `both` or `current`, not `{raw}`"),
                    )
                })?,
            },
        };
        let rate_limit_backend = match get("FLEETPASS_RATE_LIMIT_BACKEND").map(String::as_str) {
            None if database_url.is_some() => RateLimitBackend::Postgres,
            None | Some("memory") => RateLimitBackend::Memory,
            Some("postgres") if database_url.is_some() => RateLimitBackend::Postgres,
            Some("postgres") => {
                return Err(err(
                    "FLEETPASS_RATE_LIMIT_BACKEND",
                    "`postgres` needs DATABASE_URL",
                ));
            }
            Some(other) => {
                return Err(err(
                    "FLEETPASS_RATE_LIMIT_BACKEND",
                    format!("must be `memory` or `postgres`, not {other:?}"),
                ));
            }
        };
        let number = |var: &str, default: u64, max: u64, what: &str| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| err(var, format!("must be {what} from 1 to {max}"))),
            }
        };
        let max_poll_wait = number(
            "FLEETPASS_MAX_POLL_WAIT",
            fleetpass_http::DEFAULT_MAX_POLL_WAIT.as_secs(),
            3600,
            "a number of seconds",
        )?;
        let max_held_polls = number(
            "FLEETPASS_MAX_HELD_POLLS",
            fleetpass_ports::wakeups::DEFAULT_MAX_HELD as u64,
            1_000_000,
            "a number",
        )?;
        Ok(Self {
            public_url_set: get("FLEETPASS_PUBLIC_URL").is_some(),
            max_held_polls: usize::try_from(max_held_polls).unwrap_or(usize::MAX),
            guard,
            rate_limit_backend,
            master_key,
            database_url,
            bind,
            log_filter,
            log_format,
            migrate_on_start: on_off("FLEETPASS_MIGRATE", get("FLEETPASS_MIGRATE"), true)?,
            pool_size,
            http: HttpConfig {
                query_tokens: on_off(
                    "FLEETPASS_QUERY_TOKENS",
                    get("FLEETPASS_QUERY_TOKENS"),
                    true,
                )?,
                admin_key,
                public_url,
                metrics_token: get("FLEETPASS_METRICS_TOKEN")
                    .filter(|t| !t.is_empty())
                    .map(|t| AdminKey::new(t)),
                max_poll_wait: std::time::Duration::from_secs(max_poll_wait),
                secret_scanning,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_memory_on_loopback() {
        let c = Config::from_vars(vars(&[("PATH", "/bin")])).unwrap();
        assert_eq!(c.database_url, None);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.http.public_url, "http://127.0.0.1:8080");
        assert!(!c.public_url_set, "defaulted from the bind address");
        assert!(c.http.query_tokens && c.migrate_on_start && c.http.admin_key.is_none());
        let set = Config::from_vars(vars(&[("FLEETPASS_PUBLIC_URL", "https://fleet.example/")]));
        let set = set.unwrap();
        assert!(set.public_url_set);
        assert_eq!(set.http.public_url, "https://fleet.example");
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases = [
            ("FLEETPASS_BIND", "nowhere"),
            ("FLEETPASS_PUBLIC_URL", "ftp://x"),
            ("FLEETPASS_ADMIN_KEY", "short"),
            ("FLEETPASS_LOG_FORMAT", "xml"),
            ("FLEETPASS_QUERY_TOKENS", "maybe"),
            ("FLEETPASS_MIGRATE", "sometimes"),
            ("FLEETPASS_DB_POOL_SIZE", "0"),
            ("DATABASE_URL", "mysql://x"),
            ("FLEETPASS_LOG", "[[["),
            ("FLEETPASS_TYPO", "1"),
            ("FLEETPASS_MASTER_KEY", "too-short"),
            ("FLEETPASS_MASTER_KEY_FILE", "/nonexistent/master.key"),
            ("FLEETPASS_PUBLIC_RATE_LIMIT", "0"),
            ("FLEETPASS_AUTH_FAILURE_LIMIT", "many"),
            ("FLEETPASS_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("FLEETPASS_RATE_LIMIT_BACKEND", "postgres"),
            ("FLEETPASS_RATE_LIMIT_HEADERS", "trio"),
            ("FLEETPASS_MAX_POLL_WAIT", "0"),
            ("FLEETPASS_MAX_POLL_WAIT", "3601"),
            ("FLEETPASS_MAX_HELD_POLLS", "lots"),
            ("FLEETPASS_SECRET_SCANNING_KEYS", "{\"public_keys\": 1}"),
            (
                "FLEETPASS_SECRET_SCANNING_KEYS",
                r#"{"public_keys":[{"key_identifier":"k","key":"not a PEM"}]}"#,
            ),
            (
                "FLEETPASS_SECRET_SCANNING_KEYS_FILE",
                "/nonexistent/keys.json",
            ),
        ];
        for (var, value) in cases {
            let e = Config::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
    }

    #[test]
    fn master_key_from_the_environment_or_a_file() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let c = Config::from_vars(vars(&[("FLEETPASS_MASTER_KEY", key)])).unwrap();
        assert!(c.master_key.is_some());
        let path =
            std::env::temp_dir().join(format!("fleetpass-master-{}.key", std::process::id()));
        std::fs::write(&path, format!("{key}\n")).unwrap();
        let c = Config::from_vars(vars(&[(
            "FLEETPASS_MASTER_KEY_FILE",
            path.to_str().unwrap(),
        )]))
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(c.master_key.is_some());
        let both = Config::from_vars(vars(&[
            ("FLEETPASS_MASTER_KEY", key),
            ("FLEETPASS_MASTER_KEY_FILE", "x"),
        ]));
        assert_eq!(both.unwrap_err().var, "FLEETPASS_MASTER_KEY_FILE");
    }

    #[test]
    fn guard_settings_default_to_the_spec_and_can_be_set() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.guard, GuardConfig::default());
        assert_eq!(c.rate_limit_backend, RateLimitBackend::Memory);
        let pg = Config::from_vars(vars(&[("DATABASE_URL", "postgres://h/db")])).unwrap();
        assert_eq!(pg.rate_limit_backend, RateLimitBackend::Postgres);
        let c = Config::from_vars(vars(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("FLEETPASS_RATE_LIMIT_BACKEND", "memory"),
            ("FLEETPASS_PUBLIC_RATE_LIMIT", "120"),
            ("FLEETPASS_AUTH_FAILURE_LIMIT", "5"),
            ("FLEETPASS_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
            ("FLEETPASS_RATE_LIMIT_HEADERS", "current"),
        ]))
        .unwrap();
        assert_eq!(c.rate_limit_backend, RateLimitBackend::Memory);
        assert_eq!(c.guard.rate_limit_fields, RateLimitFields::Current);
        assert_eq!(
            (c.guard.public_per_minute, c.guard.auth_failures_per_minute),
            (120, 5)
        );
        let proxies = &c.guard.trusted_proxies;
        assert!(proxies.contains("10.9.8.7".parse().unwrap()));
        assert!(!proxies.contains("192.168.1.2".parse().unwrap()));
    }

    #[test]
    fn a_typo_names_the_setting_it_resembles_and_documented_names_pass() {
        let e = Config::from_vars(vars(&[("FLEETPASS_BINDD", "x")])).unwrap_err();
        assert_eq!(e.var, "FLEETPASS_BINDD");
        assert!(e.message.contains("did you mean FLEETPASS_BIND?"), "{e}");
        let e = Config::from_vars(vars(&[("FLEETPASS_MASTERKEY", "x")])).unwrap_err();
        assert!(
            e.message.contains("did you mean FLEETPASS_MASTER_KEY?"),
            "{e}"
        );
        let e = Config::from_vars(vars(&[("FLEETPASS_SOMETHING_ELSE", "x")])).unwrap_err();
        assert!(
            e.message
                .contains("the server's settings are FLEETPASS_BIND"),
            "{e}"
        );
        for name in OTHERS {
            assert!(
                Config::from_vars(vars(&[(name, "anything")])).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn check_in_limits_default_and_can_be_set() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(c.http.max_poll_wait, std::time::Duration::from_secs(300));
        assert_eq!(c.max_held_polls, 16_000);
        let c = Config::from_vars(vars(&[
            ("FLEETPASS_MAX_POLL_WAIT", "20"),
            ("FLEETPASS_MAX_HELD_POLLS", "3"),
        ]))
        .unwrap();
        assert_eq!(c.http.max_poll_wait, std::time::Duration::from_secs(20));
        assert_eq!(c.max_held_polls, 3);
    }

    #[test]
    fn secret_scanning_keys_from_the_environment_or_a_file() {
        // A P-256 public key made for this test (`openssl ecparam -name prime256v1`).
        let set = r#"{"public_keys":[{"key_identifier":"test-key-1","key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpXLfFTZyDO9BAM2HZgOUCo36uVd1\nvLbI4pqXZLXvr03DPI/g+rVBTmTAv/MhX4hsn97tDf43TXNuJ26xVF7Snw==\n-----END PUBLIC KEY-----\n","is_current":true}]}"#;
        let c = Config::from_vars(vars(&[])).unwrap();
        assert!(c.http.secret_scanning.is_none());
        let c = Config::from_vars(vars(&[("FLEETPASS_SECRET_SCANNING_KEYS", set)])).unwrap();
        let keys = c.http.secret_scanning.unwrap();
        assert_eq!(keys.identifiers().count(), 1);
        let path =
            std::env::temp_dir().join(format!("fleetpass-scanning-{}.json", std::process::id()));
        std::fs::write(&path, set).unwrap();
        let file = path.to_str().unwrap();
        let c = Config::from_vars(vars(&[("FLEETPASS_SECRET_SCANNING_KEYS_FILE", file)]));
        let both = Config::from_vars(vars(&[
            ("FLEETPASS_SECRET_SCANNING_KEYS", set),
            ("FLEETPASS_SECRET_SCANNING_KEYS_FILE", file),
        ]));
        std::fs::remove_file(&path).unwrap();
        assert!(c.unwrap().http.secret_scanning.is_some());
        assert_eq!(both.unwrap_err().var, "FLEETPASS_SECRET_SCANNING_KEYS_FILE");
    }

    #[test]
    fn query_tokens_can_be_turned_off() {
        let c = Config::from_vars(vars(&[("FLEETPASS_QUERY_TOKENS", "off")])).unwrap();
        assert!(!c.http.query_tokens);
    }
}
