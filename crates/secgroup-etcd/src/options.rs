//! How to reach etcd: endpoints, TLS, credentials, timeouts. `EtcdArgs`
//! is the flags (shared by `secgroupd` and `secgroupctl`), `ConnectOptions`
//! what they resolve to once the files they name are read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Client, Identity, TlsOptions};

use crate::error::EtcdError;
use crate::layout::{DEFAULT_PREFIX, Layout};

/// The `--etcd-*` flags. Flatten into a clap command; every flag has an
/// environment variable (`SECGROUP_ETCD_...`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtcdArgs {
    /// etcd endpoints (`http://127.0.0.1:2379`, `https://etcd-1:2379`;
    /// repeatable or comma-separated). Given, the rules come from etcd.
    #[arg(
        long = "etcd-endpoints",
        env = "SECGROUP_ETCD_ENDPOINTS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub endpoints: Vec<String>,

    /// The key prefix of the fleet's objects: `<prefix><kind>/<id>`.
    #[arg(long = "etcd-prefix", env = "SECGROUP_ETCD_PREFIX", default_value = DEFAULT_PREFIX, value_name = "PREFIX")]
    pub prefix: String,

    /// PEM file of the CA that signed the etcd servers' certificates
    /// (`https://` endpoints; the system's roots are not used).
    #[arg(
        long = "etcd-ca-file",
        env = "SECGROUP_ETCD_CA_FILE",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate, for etcd's `--client-cert-auth`; needs
    /// `--etcd-key-file`.
    #[arg(
        long = "etcd-cert-file",
        env = "SECGROUP_ETCD_CERT_FILE",
        value_name = "FILE"
    )]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of `--etcd-cert-file`.
    #[arg(
        long = "etcd-key-file",
        env = "SECGROUP_ETCD_KEY_FILE",
        value_name = "FILE"
    )]
    pub key_file: Option<PathBuf>,

    /// etcd user (etcd's role-based authentication); needs
    /// `--etcd-password-file`.
    #[arg(long = "etcd-user", env = "SECGROUP_ETCD_USER", value_name = "NAME")]
    pub user: Option<String>,

    /// File holding the user's password (one line; a trailing newline is
    /// ignored), so that it is in no command line or environment.
    #[arg(
        long = "etcd-password-file",
        env = "SECGROUP_ETCD_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,

    /// How long connecting and each request may take before etcd counts as
    /// unreachable (`5s`, `500ms`, or seconds).
    #[arg(long = "etcd-timeout", env = "SECGROUP_ETCD_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

/// How often an idle connection is pinged.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// `5s`, `500ms`, `2m`, or plain seconds; more than zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; expected 5s, 500ms, 2m or seconds"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; expected ms, s or m"
            ));
        }
    };
    if !(seconds > 0.0 && seconds < 86_400.0) {
        return Err(format!("{text:?} must be more than 0 and less than a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Credentials, read from their file.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// PEM bytes of the TLS files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<Vec<u8>>,
    /// Certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// Everything needed to connect, files read.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub endpoints: Vec<String>,
    pub layout: Layout,
    pub tls: Option<Tls>,
    pub credentials: Option<Credentials>,
    pub timeout: Duration,
}

impl EtcdArgs {
    /// Whether any endpoint was given: etcd is in use (an empty
    /// `SECGROUP_ETCD_ENDPOINTS=` in a unit file means none).
    pub fn enabled(&self) -> bool {
        self.endpoints.iter().any(|e| !e.trim().is_empty())
    }

    /// Checks the flags against each other and reads the files they name.
    pub fn options(&self) -> Result<ConnectOptions, EtcdError> {
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(EtcdError::Options(
                "no etcd endpoint given (--etcd-endpoints URL[,URL...])".to_owned(),
            ));
        }
        let layout = Layout::new(&self.prefix)?;
        let tls_given = self.ca_file.is_some() || self.cert_file.is_some();
        let tls = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(EtcdError::Options(
                    "--etcd-cert-file needs --etcd-key-file".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(EtcdError::Options(
                    "--etcd-key-file needs --etcd-cert-file".to_owned(),
                ));
            }
        };
        let tls = if tls_given || tls.is_some() {
            Some(Tls {
                ca: self.ca_file.as_deref().map(read).transpose()?,
                identity: tls,
            })
        } else {
            None
        };
        if tls.is_some()
            && let Some(plain) = endpoints.iter().find(|e| e.starts_with("http://"))
        {
            return Err(EtcdError::Options(format!(
                "endpoint {plain} is plain http but TLS files are given; use https://"
            )));
        }
        let credentials = match (&self.user, &self.password_file) {
            (Some(user), Some(file)) => {
                let text = String::from_utf8(read(file)?)
                    .map_err(|_| EtcdError::Options(format!("{} is not UTF-8", file.display())))?;
                let password = text.strip_suffix('\n').unwrap_or(&text);
                let password = password.strip_suffix('\r').unwrap_or(password);
                Some(Credentials {
                    user: user.clone(),
                    password: password.to_owned(),
                })
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(EtcdError::Options(
                    "--etcd-user needs --etcd-password-file".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(EtcdError::Options(
                    "--etcd-password-file needs --etcd-user".to_owned(),
                ));
            }
        };
        Ok(ConnectOptions {
            endpoints,
            layout,
            tls,
            credentials,
            timeout: self.timeout,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

impl ConnectOptions {
    /// Plain endpoints with the default prefix and timeout: tests, tools.
    pub fn plain(endpoints: &[String], prefix: &str) -> Result<ConnectOptions, EtcdError> {
        EtcdArgs {
            endpoints: endpoints.to_vec(),
            prefix: prefix.to_owned(),
            timeout: Duration::from_secs(5),
            ..EtcdArgs::default()
        }
        .options()
    }

    /// The endpoints as one string, for messages.
    pub fn endpoints_text(&self) -> String {
        self.endpoints.join(",")
    }

    /// A connected client (authenticated when credentials are given).
    pub async fn connect(&self) -> Result<Client, EtcdError> {
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_timeout(self.timeout)
            // Notices a dead server on an idle watch without a request;
            // not more often than etcd's --grpc-keepalive-min-time (5 s by
            // default), or etcd closes the connection for too many pings.
            .with_keep_alive(KEEPALIVE_INTERVAL, self.timeout)
            .with_keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            let mut config = TlsOptions::new();
            if let Some(ca) = &tls.ca {
                config = config.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(config);
        }
        if let Some(c) = &self.credentials {
            options = options.with_user(c.user.clone(), c.password.clone());
        }
        let connecting = Client::connect(&self.endpoints, Some(options));
        self.bounded("connecting", connecting).await
    }

    /// `request` within the timeout, errors named.
    pub(crate) async fn bounded<T>(
        &self,
        what: &'static str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(EtcdError::Request {
                endpoints: self.endpoints_text(),
                what,
                source,
            }),
            Err(_) => Err(EtcdError::Timeout {
                endpoints: self.endpoints_text(),
                what,
                seconds: self.timeout.as_secs_f64(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoints: &[&str]) -> EtcdArgs {
        EtcdArgs {
            endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: Duration::from_secs(5),
            ..EtcdArgs::default()
        }
    }

    fn error(args: &EtcdArgs) -> String {
        args.options()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn flags_checked_against_each_other() {
        assert!(args(&["http://127.0.0.1:2379"]).options().is_ok());
        assert!(!args(&[""]).enabled() && !args(&[]).enabled());
        assert_eq!(
            error(&args(&[])),
            "no etcd endpoint given (--etcd-endpoints URL[,URL...])"
        );
        let mut a = args(&["http://127.0.0.1:2379"]);
        a.user = Some("root".into());
        assert_eq!(error(&a), "--etcd-user needs --etcd-password-file");
        let mut a = args(&["http://127.0.0.1:2379"]);
        a.cert_file = Some("/nonexistent/cert.pem".into());
        assert_eq!(error(&a), "--etcd-cert-file needs --etcd-key-file");
        a.key_file = Some("/nonexistent/key.pem".into());
        assert!(error(&a).starts_with("cannot read /nonexistent/cert.pem"));
        let mut a = args(&["http://127.0.0.1:2379"]);
        a.prefix = "/secgroup".into();
        assert!(error(&a).starts_with("invalid etcd prefix"));
    }

    #[test]
    fn password_file_and_tls_scheme() {
        let dir = std::env::temp_dir().join(format!("secgroup-etcd-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
        let mut a = args(&["http://127.0.0.1:2379"]);
        a.user = Some("secgroup".into());
        a.password_file = Some(pw);
        let options = a.options().unwrap_or_else(|e| panic!("{e}"));
        let c = options
            .credentials
            .unwrap_or_else(|| panic!("no credentials"));
        assert_eq!(
            (c.user.as_str(), c.password.as_str()),
            ("secgroup", "s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));

        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "pem").unwrap_or_else(|e| panic!("{e}"));
        a.ca_file = Some(ca);
        assert_eq!(
            error(&a),
            "endpoint http://127.0.0.1:2379 is plain http but TLS files are given; use https://"
        );
        a.endpoints = vec!["https://127.0.0.1:2379".into()];
        assert!(a.options().is_ok_and(|o| o.tls.is_some()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
