//! The agent's state file: which server, which agent, and the agent secret. The file is
//! created with mode 0600 (its directory 0700) before the secret is written, and is
//! replaced atomically, so the secret is never readable by others, not even briefly.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fleetpass_domain::secret::{PlainSecret, SecretKind};
use serde::{Deserialize, Serialize};

/// What an enrolled agent keeps between runs.
#[derive(Debug, Clone)]
pub struct State {
    /// The server's base URL, e.g. `https://fleetpass.example.com`.
    pub server: String,
    /// The agent's id.
    pub agent_id: String,
    /// The fleet it belongs to.
    pub fleet_id: String,
    /// The long-lived secret it exchanges for access tokens. `Debug` redacts it.
    pub secret: PlainSecret,
    /// The host name it enrolled as, which its results name the asset by. `None` in
    /// state files written before it was kept (those agents enrolled as the host's own
    /// name unless `--hostname` said otherwise).
    pub hostname: Option<String>,
}

/// The file's JSON. Only this type ever holds the secret as a plain `String`, and only
/// on its way to or from the disk.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OnDisk {
    server: String,
    agent_id: String,
    fleet_id: String,
    agent_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
}

/// Where the state lives when `--state` is not given: `$XDG_STATE_HOME/fleetpass-agent/
/// state.json`, else `~/.local/state/fleetpass-agent/state.json`.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("fleetpass-agent").join("state.json")
}

impl State {
    /// Reads the state; refuses a file others can read, as ssh does with its keys.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let meta = std::fs::metadata(path).with_context(|| {
            format!(
                "no agent state at {} (run `fleetpass-agent enroll` first)",
                path.display()
            )
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} is readable by others (mode {mode:o}): it holds the agent secret; chmod 600 it",
                path.display()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let disk: OnDisk = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an agent state file", path.display()))?;
        let secret = PlainSecret::parse_kind(&disk.agent_secret, SecretKind::Agent)
            .map_err(|e| anyhow::anyhow!("the agent secret in {} {e}", path.display()))?;
        Ok(Self {
            server: disk.server,
            agent_id: disk.agent_id,
            fleet_id: disk.fleet_id,
            secret,
            hostname: disk.hostname,
        })
    }

    /// Writes the state: a 0600 temporary file beside `path`, then a rename over it.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let disk = OnDisk {
            server: self.server.clone(),
            agent_id: self.agent_id.clone(),
            fleet_id: self.fleet_id.clone(),
            agent_secret: self.secret.expose().to_owned(),
            hostname: self.hostname.clone(),
        };
        let text = serde_json::to_string_pretty(&disk)?;
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fleetpass-agent-state-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn state() -> State {
        State {
            server: "http://127.0.0.1:8080".into(),
            agent_id: "a".into(),
            fleet_id: "f".into(),
            secret: PlainSecret::from_random(SecretKind::Agent, [7; 32]),
            hostname: Some("scanner-01".into()),
        }
    }

    #[test]
    fn saved_state_is_private_and_round_trips() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("nested/state.json");
        state().save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = State::load(&path).unwrap();
        assert_eq!(loaded.secret, state().secret);
        assert_eq!(loaded.hostname.as_deref(), Some("scanner-01"));
        // Debug never shows the secret.
        assert!(!format!("{loaded:?}").contains(state().secret.expose()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_file_from_before_the_hostname_was_kept_still_loads() {
        let dir = temp_dir("old");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let old = serde_json::json!({"server": "http://127.0.0.1:8080", "agentId": "a",
            "fleetId": "f", "agentSecret": state().secret.expose()});
        std::fs::write(&path, old.to_string()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = State::load(&path).unwrap();
        assert_eq!((loaded.agent_id.as_str(), loaded.hostname), ("a", None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_file_others_can_read_is_refused() {
        let dir = temp_dir("loose");
        let path = dir.join("state.json");
        state().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = State::load(&path).unwrap_err().to_string();
        assert!(err.contains("readable by others"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
