//! Just enough of a Kubernetes API client to follow node joins: the
//! kubeconfig Lokomotive writes (current context → cluster + user: server,
//! CA, client certificate/key or token) and `GET /api/v1/nodes`.
//!
//! Parsing is pure ([`Kubeconfig::parse`] takes a file reader for the paths
//! a kubeconfig may name; [`parse_nodes`] takes the response body); the
//! HTTP client is [`Client`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

/// Where Lokomotive writes the cluster's admin kubeconfig, below its asset
/// directory.
pub(crate) const KUBECONFIG_IN_ASSETS: &str = "cluster-assets/auth/kubeconfig";

/// Why a kubeconfig or the API could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubeError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a kubeconfig: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: {what} {name:?} is not defined")]
    Missing {
        path: PathBuf,
        what: &'static str,
        name: String,
    },
    #[error("{path}: {field} is not valid base64")]
    Base64 { path: PathBuf, field: &'static str },
    #[error("{path}: {what}: {reason}")]
    Credentials {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("Kubernetes API {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("Kubernetes API {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Kubernetes API {url}: unexpected node list: {reason}")]
    NodeList { url: String, reason: String },
}

/// The parts of a kubeconfig racker uses.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Kubeconfig {
    /// API server URL.
    pub(crate) server: String,
    /// PEM of the CA that signed the server's certificate.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify`.
    pub(crate) insecure: bool,
    /// PEM client certificate and key.
    pub(crate) client_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Bearer token.
    pub(crate) token: Option<String>,
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("server", &self.server)
            .field("ca", &self.ca_pem.is_some())
            .field("insecure", &self.insecure)
            .field("client_cert", &self.client_pem.is_some())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<Named<RawContext>>,
    #[serde(default)]
    clusters: Vec<Named<RawCluster>>,
    #[serde(default)]
    users: Vec<Named<RawUser>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    value: Option<T>,
}

#[derive(Deserialize)]
struct RawContext {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawCluster {
    server: Option<String>,
    certificate_authority_data: Option<String>,
    certificate_authority: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawUser {
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
}

impl Kubeconfig {
    /// Read and parse the kubeconfig at `path` (files it names are read
    /// relative to its directory).
    pub(crate) fn load(path: &Path) -> Result<Self, KubeError> {
        let text = std::fs::read_to_string(path).map_err(|source| KubeError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, &|p: &Path| std::fs::read(p))
    }

    /// Parse kubeconfig `text` (from `path`); `read` reads the files it
    /// names.
    pub(crate) fn parse(
        path: &Path,
        text: &str,
        read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<Self, KubeError> {
        let format = |reason: String| KubeError::Format {
            path: path.to_owned(),
            reason,
        };
        let raw: RawConfig = serde_yaml_ng::from_str(text).map_err(|e| format(e.to_string()))?;
        let missing = |what: &'static str, name: &str| KubeError::Missing {
            path: path.to_owned(),
            what,
            name: name.to_owned(),
        };
        // The current context, or the only one there is.
        let context = match &raw.current_context {
            Some(name) if !name.is_empty() => raw
                .contexts
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| missing("context", name))?,
            _ if raw.contexts.len() == 1 => &raw.contexts[0],
            _ => return Err(missing("current-context", "")),
        };
        let ctx = context
            .value
            .as_ref()
            .ok_or_else(|| missing("context", &context.name))?;
        let cluster = raw
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.value.as_ref())
            .ok_or_else(|| missing("cluster", &ctx.cluster))?;
        let user = match &ctx.user {
            Some(name) => raw
                .users
                .iter()
                .find(|u| &u.name == name)
                .and_then(|u| u.value.as_ref())
                .ok_or_else(|| missing("user", name))?,
            None => &RawUser::default(),
        };
        let server = cluster
            .server
            .clone()
            .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
            .ok_or_else(|| format("the cluster has no http(s) server URL".to_owned()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let file = |name: &str| -> Result<Vec<u8>, KubeError> {
            let p = dir.join(name);
            read(&p).map_err(|source| KubeError::Read { path: p, source })
        };
        let data = |field: &'static str, b64: &str| -> Result<Vec<u8>, KubeError> {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| KubeError::Base64 {
                    path: path.to_owned(),
                    field,
                })
        };
        let ca_pem = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(d), _) => Some(data("certificate-authority-data", d)?),
            (None, Some(f)) => Some(file(f)?),
            (None, None) => None,
        };
        let cert = match (&user.client_certificate_data, &user.client_certificate) {
            (Some(d), _) => Some(data("client-certificate-data", d)?),
            (None, Some(f)) => Some(file(f)?),
            (None, None) => None,
        };
        let key = match (&user.client_key_data, &user.client_key) {
            (Some(d), _) => Some(data("client-key-data", d)?),
            (None, Some(f)) => Some(file(f)?),
            (None, None) => None,
        };
        let client_pem = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(KubeError::Credentials {
                    path: path.to_owned(),
                    what: "client certificate",
                    reason: "a certificate needs its key and a key its certificate".to_owned(),
                });
            }
        };
        let token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(t.trim().to_owned()),
            (None, Some(f)) => Some(String::from_utf8_lossy(&file(f)?).trim().to_owned()),
            (None, None) => None,
        };
        Ok(Self {
            server: server.trim_end_matches('/').to_owned(),
            ca_pem,
            insecure: cluster.insecure_skip_tls_verify,
            client_pem,
            token: token.filter(|t| !t.is_empty()),
        })
    }
}

/// One Kubernetes node as racker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KubeNode {
    pub(crate) name: String,
    /// The `Ready` condition is `True`.
    pub(crate) ready: bool,
    /// `InternalIP` / `ExternalIP` addresses.
    pub(crate) ips: Vec<Ipv4Addr>,
    /// `Hostname` addresses.
    pub(crate) hostnames: Vec<String>,
}

impl KubeNode {
    /// True when this Kubernetes node is racker's node `hostname` at `ip`:
    /// same name (or `<hostname>.<domain>`), host name or address.
    pub(crate) fn is(&self, hostname: &str, ip: Ipv4Addr) -> bool {
        let named = |n: &str| {
            !hostname.is_empty()
                && (n == hostname
                    || n.strip_prefix(hostname)
                        .is_some_and(|rest| rest.starts_with('.')))
        };
        named(&self.name) || self.hostnames.iter().any(|h| named(h)) || self.ips.contains(&ip)
    }
}

#[derive(Deserialize)]
struct NodeList {
    items: Vec<RawNode>,
}

#[derive(Deserialize)]
struct RawNode {
    metadata: RawMeta,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Deserialize)]
struct RawMeta {
    name: String,
}

#[derive(Deserialize, Default)]
struct RawStatus {
    #[serde(default)]
    conditions: Vec<RawCondition>,
    #[serde(default)]
    addresses: Vec<RawAddress>,
}

#[derive(Deserialize)]
struct RawCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Deserialize)]
struct RawAddress {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

/// Parse a `GET /api/v1/nodes` body (a `NodeList`).
pub(crate) fn parse_nodes(url: &str, body: &[u8]) -> Result<Vec<KubeNode>, KubeError> {
    let list: NodeList = serde_json::from_slice(body).map_err(|e| KubeError::NodeList {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(list
        .items
        .into_iter()
        .map(|n| KubeNode {
            name: n.metadata.name,
            ready: n
                .status
                .conditions
                .iter()
                .any(|c| c.kind == "Ready" && c.status == "True"),
            ips: n
                .status
                .addresses
                .iter()
                .filter(|a| a.kind.ends_with("IP"))
                .filter_map(|a| a.address.parse().ok())
                .collect(),
            hostnames: n
                .status
                .addresses
                .iter()
                .filter(|a| a.kind == "Hostname")
                .map(|a| a.address.clone())
                .collect(),
        })
        .collect())
}

/// An API client for one kubeconfig.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Client {
    /// A client for the kubeconfig at `path` that gives up on each
    /// request after `timeout`.
    pub(crate) fn from_file(path: &Path, timeout: Duration) -> Result<Self, KubeError> {
        Self::new(path, &Kubeconfig::load(path)?, timeout)
    }

    /// A client for `cfg` (read from `path`, named in errors).
    pub(crate) fn new(path: &Path, cfg: &Kubeconfig, timeout: Duration) -> Result<Self, KubeError> {
        let credentials = |what: &'static str, e: reqwest::Error| KubeError::Credentials {
            path: path.to_owned(),
            what,
            reason: e.to_string(),
        };
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(ca) = &cfg.ca_pem {
            let ca = reqwest::Certificate::from_pem(ca)
                .map_err(|e| credentials("certificate authority", e))?;
            b = b.tls_built_in_root_certs(false).add_root_certificate(ca);
        }
        if cfg.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some((cert, key)) = &cfg.client_pem {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| credentials("client certificate", e))?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| credentials("TLS client", e))?;
        Ok(Self {
            http,
            server: cfg.server.clone(),
            token: cfg.token.clone(),
        })
    }

    /// Every node the API server knows.
    pub(crate) async fn nodes(&self) -> Result<Vec<KubeNode>, KubeError> {
        let url = format!("{}/api/v1/nodes", self.server);
        let mut req = self.http.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let http = |source| KubeError::Http {
            url: url.clone(),
            source,
        };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(http)?;
        if !status.is_success() {
            return Err(KubeError::Status {
                url: url.clone(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_owned(),
            });
        }
        parse_nodes(&url, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_files(p: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            p.display().to_string(),
        ))
    }

    const DATA: &str = "apiVersion: v1
kind: Config
current-context: admin@rack7
clusters:
- name: rack7
  cluster:
    server: https://rack7.k8s.example.test:6443
    certificate-authority-data: Q0EtUEVN
contexts:
- name: admin@rack7
  context:
    cluster: rack7
    user: admin
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

    #[test]
    fn embedded_data() {
        let k = Kubeconfig::parse(Path::new("/k"), DATA, &no_files).unwrap();
        assert_eq!(k.server, "https://rack7.k8s.example.test:6443");
        assert_eq!(k.ca_pem.as_deref(), Some(b"CA-PEM".as_slice()));
        assert_eq!(k.client_pem, Some((b"CERT".to_vec(), b"KEY".to_vec())));
        assert_eq!(k.token, None);
        assert!(!format!("{k:?}").contains("KEY"));
    }

    #[test]
    fn files_relative_to_the_kubeconfig_and_token() {
        let text = "current-context: c
clusters: [{name: k, cluster: {server: 'https://10.0.0.1:6443', certificate-authority: ca.pem}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {tokenFile: tok}}]
";
        let read = |p: &Path| -> std::io::Result<Vec<u8>> {
            match p.to_str() {
                Some("/etc/k/ca.pem") => Ok(b"CA".to_vec()),
                Some("/etc/k/tok") => Ok(b" secret-token\n".to_vec()),
                _ => no_files(p),
            }
        };
        let k = Kubeconfig::parse(Path::new("/etc/k/config"), text, &read).unwrap();
        assert_eq!(k.ca_pem.as_deref(), Some(b"CA".as_slice()));
        assert_eq!(k.token.as_deref(), Some("secret-token"));
        assert!(!format!("{k:?}").contains("secret-token"));
    }

    #[test]
    fn errors_name_the_file_and_what_is_missing() {
        let e = Kubeconfig::parse(
            Path::new("/k"),
            &DATA.replace("current-context: admin@rack7", "current-context: other"),
            &no_files,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "/k: context \"other\" is not defined");
        let e = Kubeconfig::parse(
            Path::new("/k"),
            &DATA.replace("    user: admin", "    user: nobody"),
            &no_files,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "/k: user \"nobody\" is not defined");
        let e = Kubeconfig::parse(Path::new("/k"), &DATA.replace("S0VZ", "'@@@'"), &no_files)
            .unwrap_err();
        assert_eq!(e.to_string(), "/k: client-key-data is not valid base64");
        let e = Kubeconfig::parse(Path::new("/k"), "[1, 2]", &no_files).unwrap_err();
        assert!(e.to_string().starts_with("/k is not a kubeconfig"), "{e}");
        let e = Kubeconfig::parse(
            Path::new("/k"),
            &DATA.replace("    client-key-data: S0VZ\n", ""),
            &no_files,
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs its key"), "{e}");
    }

    #[test]
    fn node_list_and_matching() {
        let body = br#"{"kind":"NodeList","items":[
          {"metadata":{"name":"rack7-controller-0.rack7.k8s.example.test"},
           "status":{"conditions":[{"type":"Ready","status":"True"}],
                     "addresses":[{"type":"InternalIP","address":"172.24.213.2"},
                                  {"type":"Hostname","address":"rack7-controller-0"}]}},
          {"metadata":{"name":"w1"},
           "status":{"conditions":[{"type":"Ready","status":"False"}],
                     "addresses":[{"type":"InternalIP","address":"172.24.213.3"}]}},
          {"metadata":{"name":"bare"}}]}"#;
        let nodes = parse_nodes("u", body).unwrap();
        assert_eq!(nodes.len(), 3);
        assert!(nodes[0].ready && !nodes[1].ready && !nodes[2].ready);
        let ip = |d| Ipv4Addr::new(172, 24, 213, d);
        assert!(nodes[0].is("rack7-controller-0", ip(9)));
        assert!(nodes[0].is("", ip(2)));
        assert!(!nodes[0].is("rack7-controller", ip(9)));
        assert!(nodes[1].is("node-1", ip(3)));
        assert!(!nodes[2].is("node-2", ip(4)));
        assert!(parse_nodes("u", b"{}").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(text in ".{0,400}", bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Kubeconfig::parse(Path::new("/k"), &text, &no_files);
            let _ = parse_nodes("u", &bytes);
            let _ = parse_nodes("u", text.as_bytes());
        }
    }
}
