//! Server settings: built-in defaults, then an optional TOML file, then environment
//! variables and flags (clap reads both; a flag wins over its variable).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Password hashing cost. Production defaults follow OWASP's argon2id advice; tests lower
/// them through configuration, never by changing these defaults.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Argon2Settings {
    /// The key and why, for parameters no password could be hashed with (or that would
    /// take more than [`MOST_ARGON2_KIB`] per login).
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.memory_kib > MOST_ARGON2_KIB {
            return Err((
                "argon2.memory_kib",
                format!(
                    "{} KiB per login is more than {MOST_ARGON2_KIB} (1 GiB); the default is {}",
                    self.memory_kib,
                    Argon2Settings::default().memory_kib
                ),
            ));
        }
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map(|_| ())
            .map_err(|e| {
                let key = match e {
                    argon2::Error::TimeTooSmall => "argon2.iterations",
                    argon2::Error::ThreadsTooFew | argon2::Error::ThreadsTooMany => {
                        "argon2.parallelism"
                    }
                    _ => "argon2.memory_kib",
                };
                let reason = format!(
                    "{e} (memory_kib {}, iterations {}, parallelism {}; memory_kib must be at \
                     least 8 × parallelism)",
                    self.memory_kib, self.iterations, self.parallelism
                );
                (key, reason)
            })
    }
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Argon2Settings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Everything the server needs to run.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The SQLite file and photos live here.
    pub data_dir: PathBuf,
    /// `postgres://…` to run on PostgreSQL; none for the embedded SQLite file.
    pub database_url: Option<String>,
    /// Largest JSON body accepted.
    pub max_json_bytes: usize,
    /// Largest ledger file accepted by the import endpoint.
    pub max_import_bytes: usize,
    /// Largest photo or signature image accepted by the resumable upload.
    pub max_upload_bytes: u64,
    /// PNGs up to this size (and JPEGs, when `decode_jpeg_pixels`) are fully decoded to
    /// prove they are images; larger ones have their header checked, so memory stays
    /// flat however large the file.
    pub full_decode_limit_bytes: u64,
    /// Every JPEG gets a one-pass structural check of all its markers, tables and scans
    /// (`services::image_check`); this also decodes its pixels, at ~10× the CPU of
    /// everything else a submission costs.
    pub decode_jpeg_pixels: bool,
    /// A record whose device time is later than its receipt by more than this is flagged.
    pub clock_tolerance_secs: i64,
    /// A visit signed more than this many days after the date it claims is flagged
    /// `entered_late` (it still counts; the office sees it).
    pub late_entry_days: i64,
    /// How long a login token lives.
    pub token_ttl_hours: i64,
    /// How long an enrollment code handed out by a town office stays valid.
    pub enrollment_ttl_days: i64,
    /// An upload still unfinished this many days after its creation is discarded (tus
    /// expiration; `Upload-Expires` says when). The client then starts it again.
    pub upload_expiry_days: i64,
    /// The most unfinished uploads one account may hold at once (QA s23c F9: each
    /// reserves a row and a file). A device sends one file at a time, so a few are
    /// open at most; creating another past this is refused (429 `too_many_uploads`)
    /// until one is finished or expires.
    pub max_unfinished_uploads: u64,
    /// The most enrollment codes one `POST /enrollment/codes` issues. Each is an
    /// argon2id hash, and a request for a town of 6,000 helpers ran for minutes, past any
    /// client's or proxy's timeout, then stored codes no one received in place of the
    /// printed ones (QA s27a F1). A larger town issues by village, or with
    /// `bangfu-server enrollment-codes` on the server, which has no such bound.
    pub max_codes_per_request: u64,
    /// An upload request whose body sends no byte for this many seconds is taken as cut
    /// (a phone gone out of coverage without closing its connection): the bytes before
    /// are kept and the upload is free for the client's next request, instead of held
    /// by a dead connection for as long as the network keeps it (QA s25c F2).
    pub upload_idle_secs: u64,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// The addresses of the reverse proxies (nginx, caddy) that terminate TLS in front
    /// of the server. From these alone `X-Forwarded-For` is believed: behind a proxy
    /// every device reaches the server from the proxy's address, so the throttle of
    /// wrong passwords and codes, kept per username and address, let anyone lock any
    /// helper out (QA s29a I4). Empty (the default): the socket's address, whatever a
    /// request's headers claim.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `tracing` filter, e.g. `info` or `bangfu_server=debug`.
    pub log: String,
    pub argon2: Argon2Settings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("bangfu-data"),
            database_url: None,
            max_json_bytes: 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            full_decode_limit_bytes: 32 * 1024 * 1024,
            decode_jpeg_pixels: false,
            clock_tolerance_secs: 600,
            late_entry_days: 7,
            token_ttl_hours: 24 * 30,
            enrollment_ttl_days: 30,
            upload_expiry_days: 30,
            max_unfinished_uploads: 32,
            max_codes_per_request: 1000,
            upload_idle_secs: 30,
            workers: 0,
            trusted_proxies: Vec::new(),
            log: "info,sea_orm_migration=warn".to_string(),
            argon2: Argon2Settings::default(),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("max_json_bytes", &self.max_json_bytes)
            .field("max_import_bytes", &self.max_import_bytes)
            .field("token_ttl_hours", &self.token_ttl_hours)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// Hides the passwords in a database URL: the user's (`postgres://user:***@host/db`)
/// and those given as parameters (`?password=***`, `sslpassword=***`), which libpq
/// takes as well and operators write beside `sslmode` (QA s30c N3).
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _))
                    if key.eq_ignore_ascii_case("password")
                        || key.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{key}=***")
                }
                _ => param.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// The part of a URL before its query, the password of its user hidden.
fn redact_userinfo(base: &str) -> String {
    let Some(scheme) = base.find("://") else {
        return base.to_string();
    };
    let rest = &base[scheme + 3..];
    let authority = rest.find('/').map_or(rest, |slash| &rest[..slash]);
    let Some(at) = authority.rfind('@') else {
        return base.to_string();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &base[..scheme + 3],
            &authority[..colon],
            &rest[at..]
        ),
        None => base.to_string(),
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A value that parses but leaves the server unusable (`token_ttl_hours = 0` would
    /// log everyone out at once): refused at start, naming the key (QA s26b F11).
    #[error("config file {path}: {key} = {value} is below its least useful value, {least}")]
    TooSmall {
        path: PathBuf,
        key: &'static str,
        value: i128,
        least: i128,
    },
    /// A setting no password could be hashed with: every login would answer 500 (QA
    /// s30c N4).
    #[error("config file {path}: {key}: {reason}")]
    Unusable {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
}

/// Most memory one password hash may take: 1 GiB (the default takes 19 MiB; a login
/// asking for more would stall or fail the server).
const MOST_ARGON2_KIB: u32 = 1 << 20;

impl Settings {
    /// Defaults overlaid with a TOML file, if one is given.
    pub fn from_file(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let Some(path) = path else {
            return Ok(Settings::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let settings: Settings = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        settings.check(path)?;
        Ok(settings)
    }

    /// Refuses values that parse but leave the server unusable.
    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let limits: [(&'static str, i128, i128); 11] = [
            ("max_json_bytes", self.max_json_bytes as i128, 1),
            ("max_import_bytes", self.max_import_bytes as i128, 1),
            ("max_upload_bytes", i128::from(self.max_upload_bytes), 1),
            (
                "clock_tolerance_secs",
                i128::from(self.clock_tolerance_secs),
                0,
            ),
            ("late_entry_days", i128::from(self.late_entry_days), 1),
            ("token_ttl_hours", i128::from(self.token_ttl_hours), 1),
            (
                "enrollment_ttl_days",
                i128::from(self.enrollment_ttl_days),
                1,
            ),
            ("upload_expiry_days", i128::from(self.upload_expiry_days), 1),
            (
                "max_unfinished_uploads",
                i128::from(self.max_unfinished_uploads),
                1,
            ),
            ("upload_idle_secs", i128::from(self.upload_idle_secs), 1),
            (
                "max_codes_per_request",
                i128::from(self.max_codes_per_request),
                1,
            ),
        ];
        if let Some((key, value, least)) =
            limits.into_iter().find(|(_, value, least)| value < least)
        {
            return Err(ConfigError::TooSmall {
                path: path.into(),
                key,
                value,
                least,
            });
        }
        self.argon2
            .check()
            .map_err(|(key, reason)| ConfigError::Unusable {
                path: path.into(),
                key,
                reason,
            })
    }

    /// The database to use: the configured URL, or the SQLite file in the data directory.
    pub fn effective_database_url(&self) -> String {
        match (&self.database_url, self.embedded_file()) {
            (_, Some(file)) => format!("sqlite://{}?mode=rwc", file.display()),
            (url, None) => url.clone().unwrap_or_default(),
        }
    }

    /// The embedded SQLite file in the data directory, unless a database URL is set.
    pub fn embedded_file(&self) -> Option<PathBuf> {
        self.database_url
            .as_deref()
            .is_none_or(|u| u.trim().is_empty())
            .then(|| self.data_dir.join("bangfu.db"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bangfu.toml");
        std::fs::write(
            &path,
            "bind = \"0.0.0.0:9000\"\n[argon2]\nmemory_kib = 64\n",
        )
        .unwrap();
        let s = Settings::from_file(Some(&path)).unwrap();
        assert_eq!(s.bind.port(), 9000);
        assert_eq!(s.argon2.memory_kib, 64);
        assert_eq!(s.argon2.iterations, Argon2Settings::default().iterations);
        std::fs::write(&path, "bnid = \"0.0.0.0:9000\"\n").unwrap();
        let err = Settings::from_file(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("bnid"), "{err}");
    }

    /// Values that would leave the server unusable are refused, naming the key.
    #[test]
    fn unusable_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bangfu.toml");
        for (text, key) in [
            ("token_ttl_hours = 0\n", "token_ttl_hours = 0"),
            ("upload_idle_secs = 0\n", "upload_idle_secs = 0"),
            ("max_upload_bytes = 0\n", "max_upload_bytes = 0"),
            ("clock_tolerance_secs = -5\n", "clock_tolerance_secs = -5"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Settings::from_file(Some(&path)).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        std::fs::write(&path, "token_ttl_hours = 1\n").unwrap();
        assert_eq!(Settings::from_file(Some(&path)).unwrap().token_ttl_hours, 1);
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let s = Settings {
            data_dir: "/tmp/x".into(),
            ..Settings::default()
        };
        assert_eq!(
            s.effective_database_url(),
            "sqlite:///tmp/x/bangfu.db?mode=rwc"
        );
    }

    #[test]
    fn passwords_never_reach_debug_output() {
        let s = Settings {
            database_url: Some("postgres://bangfu:hunter2@db/bangfu".into()),
            ..Settings::default()
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"));
        assert!(dbg.contains("bangfu:***@db"));
    }

    /// QA s30c N4: argon2 parameters no password could be hashed with are refused at
    /// start, naming the key.
    #[test]
    fn unusable_argon2_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bangfu.toml");
        for (text, key) in [
            ("[argon2]\nmemory_kib = 0\n", "argon2.memory_kib"),
            ("[argon2]\niterations = 0\n", "argon2.iterations"),
            ("[argon2]\nparallelism = 0\n", "argon2.parallelism"),
            ("[argon2]\nmemory_kib = 99999999\n", "argon2.memory_kib"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Settings::from_file(Some(&path)).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        std::fs::write(&path, "[argon2]\nmemory_kib = 64\n").unwrap();
        assert!(Settings::from_file(Some(&path)).is_ok());
    }

    /// QA s30c N3: a password given as a parameter is hidden too.
    #[test]
    fn passwords_in_parameters_are_hidden() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/db?password=QsecretQ&sslmode=disable"),
            "postgres://postgres@127.0.0.1:5432/db?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?sslmode=require&SSLPASSWORD=k"),
            "postgres://u:***@h/db?sslmode=require&SSLPASSWORD=***"
        );
        assert_eq!(
            redact_url("sqlite:///tmp/x/bangfu.db?mode=rwc"),
            "sqlite:///tmp/x/bangfu.db?mode=rwc"
        );
    }
}
