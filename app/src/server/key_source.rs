//! Where the secret keys come from: `IMPACT_SECRET_KEY` (and `IMPACT_SECRET_KEY_PREVIOUS` for
//! rotation), else a key file created at first start with mode 0600 (`IMPACT_SECRET_KEY_FILE`, by
//! default beside the SQLite database). What the keys do is in `sealed`.
use std::path::{Path, PathBuf};

use anyhow::Context;
use zeroize::Zeroizing;

use super::sealed::{Keyring, SecretKey};

/// Where the keys come from: the settings `IMPACT_SECRET_KEY`, `IMPACT_SECRET_KEY_PREVIOUS` and
/// `IMPACT_SECRET_KEY_FILE`. The default (nothing set) uses the default key file.
#[derive(Clone, Debug, Default)]
pub struct KeySource {
    /// The current key; when `None`, the key file's (created on first start).
    pub key: Option<SecretKey>,
    /// Keys that values may still be sealed under; they are re-sealed under the current key.
    pub previous: Vec<SecretKey>,
    /// The key file, used when `key` is `None`; default: see [`default_key_file`].
    pub file: Option<PathBuf>,
}

impl KeySource {
    /// This key, and no other.
    pub fn key(key: SecretKey) -> Self {
        Self {
            key: Some(key),
            ..Self::default()
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name| std::env::var(name).ok();
        Self::from_settings(
            var("IMPACT_SECRET_KEY").as_deref(),
            var("IMPACT_SECRET_KEY_PREVIOUS").as_deref(),
            var("IMPACT_SECRET_KEY_FILE").as_deref(),
        )
    }

    /// From the three settings' values (`None` or blank: unset), checked.
    pub fn from_settings(
        key: Option<&str>,
        previous: Option<&str>,
        file: Option<&str>,
    ) -> anyhow::Result<Self> {
        let key = match key {
            Some(v) if !v.trim().is_empty() => {
                Some(SecretKey::parse(v).context("IMPACT_SECRET_KEY is malformed")?)
            }
            _ => None,
        };
        let previous = previous
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .filter(|k| !k.trim().is_empty())
            .enumerate()
            .map(|(i, k)| {
                SecretKey::parse(k).with_context(|| {
                    format!(
                        "IMPACT_SECRET_KEY_PREVIOUS: key {} of the comma-separated list is malformed",
                        i + 1
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let file = file.filter(|f| !f.trim().is_empty()).map(PathBuf::from);
        Ok(Self {
            key,
            previous,
            file,
        })
    }

    /// The keyring: the given key, or the key file's (created with a fresh key when missing).
    pub fn load(&self, database_url: &str) -> anyhow::Result<Keyring> {
        let current = match &self.key {
            Some(k) => k.clone(),
            None => {
                let path = self
                    .file
                    .clone()
                    .unwrap_or_else(|| default_key_file(database_url));
                read_or_create_key_file(&path)?
            }
        };
        Ok(Keyring::new(current, self.previous.clone()))
    }
}

/// Beside a SQLite database file, named like it with the extension `.key`
/// (`impact-connect.db` → `impact-connect.key`); `./impact-connect.key` for PostgreSQL or an
/// in-memory SQLite database.
pub fn default_key_file(database_url: &str) -> PathBuf {
    let fallback = PathBuf::from("./impact-connect.key");
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        return fallback;
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return fallback;
    }
    let db = Path::new(path);
    if db.extension().is_some_and(|e| e == "key") {
        let mut name = db.as_os_str().to_owned();
        name.push(".key");
        return PathBuf::from(name);
    }
    db.with_extension("key")
}

fn read_or_create_key_file(path: &Path) -> anyhow::Result<SecretKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            SecretKey::parse(&Zeroizing::new(text)).with_context(|| {
                format!(
                    "the secret key file {} is malformed (it must hold 32 bytes as base64 or hex)",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let created = options.open(path).and_then(|mut f| {
                use std::io::Write;
                f.write_all(format!("{}\n", key.to_base64().as_str()).as_bytes())?;
                f.sync_all()
            });
            match created {
                Ok(()) => {
                    tracing::info!(path = %path.display(), key_id = key.id(), "created the secret key file");
                    Ok(key)
                }
                // Another process starting at the same moment created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_or_create_key_file(path)
                }
                Err(e) => Err(e).with_context(|| {
                    format!("cannot create the secret key file {}", path.display())
                }),
            }
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot read the secret key file {}", path.display()))
        }
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the secret key file is readable by other users: chmod 600 it");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_file_sits_beside_a_sqlite_database() {
        let f = |u: &str| default_key_file(u).display().to_string();
        assert_eq!(
            f("sqlite://impact-connect.db?mode=rwc"),
            "impact-connect.key"
        );
        assert_eq!(
            f("sqlite:///var/lib/impact/app.db"),
            "/var/lib/impact/app.key"
        );
        assert_eq!(f("sqlite:data/app.db?mode=rwc"), "data/app.key");
        assert_eq!(f("sqlite://x/app.key"), "x/app.key.key");
        assert_eq!(f("sqlite::memory:"), "./impact-connect.key");
        assert_eq!(f("postgres://u:p@h/db"), "./impact-connect.key");
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!(
            "impact_sealed_{}_{}",
            std::process::id(),
            SecretKey::generate().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("app.key");
        let source = KeySource {
            file: Some(path.clone()),
            ..KeySource::default()
        };
        let first = source.load("sqlite::memory:").expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = source.load("sqlite::memory:").expect("read");
        assert_eq!(first.current_id(), again.current_id());
        std::fs::write(&path, "not a key").expect("write");
        let e = source.load("sqlite::memory:").expect_err("malformed");
        assert!(format!("{e:#}").contains("is malformed"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
