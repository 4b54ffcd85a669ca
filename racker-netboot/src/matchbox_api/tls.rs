//! The certificates of the gRPC API, made with `rcgen` like the original's
//! `cert-gen` made them with openssl: a CA, a server certificate for the
//! management node's addresses and one client certificate, all signed by
//! the CA. The server side lives in `<state-dir>/matchbox/certs/`
//! (`ca.crt`, `server.crt`, `server.key`), the client side, which
//! `baremetal.lokocfg` points at, in `<state-dir>/matchbox-client/`
//! (`ca.crt`, `client.crt`, `client.key`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::MatchboxApiError;
use super::store::write_atomic;

/// Where the certificates are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// `<state-dir>/matchbox/certs`.
    pub server_dir: PathBuf,
    /// `<state-dir>/matchbox-client`.
    pub client_dir: PathBuf,
}

impl CertPaths {
    /// The conventional locations under a state directory.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            server_dir: state_dir.join("matchbox").join("certs"),
            client_dir: state_dir.join("matchbox-client"),
        }
    }

    /// The CA certificate the server trusts for clients.
    pub fn ca(&self) -> PathBuf {
        self.server_dir.join("ca.crt")
    }
    /// The server certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.server_dir.join("server.crt")
    }
    /// The server key.
    pub fn server_key(&self) -> PathBuf {
        self.server_dir.join("server.key")
    }
    /// The client certificate.
    pub fn client_cert(&self) -> PathBuf {
        self.client_dir.join("client.crt")
    }
    /// The client key.
    pub fn client_key(&self) -> PathBuf {
        self.client_dir.join("client.key")
    }
    /// The client's copy of the CA certificate.
    pub fn client_ca(&self) -> PathBuf {
        self.client_dir.join("ca.crt")
    }

    fn all(&self) -> [PathBuf; 6] {
        [
            self.ca(),
            self.server_cert(),
            self.server_key(),
            self.client_cert(),
            self.client_key(),
            self.client_ca(),
        ]
    }

    /// Make the certificates unless all six files exist (then they are
    /// kept: Terraform state and lokoctl configs keep working across
    /// restarts). The server certificate names `localhost`, `127.0.0.1`
    /// and `server_ips`. Returns whether new ones were made.
    pub fn ensure(&self, server_ips: &[IpAddr]) -> Result<bool, MatchboxApiError> {
        if self.all().iter().all(|p| p.is_file()) {
            return Ok(false);
        }
        let made = generate(server_ips)?;
        for dir in [&self.server_dir, &self.client_dir] {
            std::fs::create_dir_all(dir).map_err(|e| MatchboxApiError::io("creating", dir, e))?;
        }
        write_atomic(&self.ca(), made.ca.as_bytes(), 0o644)?;
        write_atomic(&self.client_ca(), made.ca.as_bytes(), 0o644)?;
        write_atomic(&self.server_cert(), made.server_cert.as_bytes(), 0o644)?;
        write_atomic(&self.server_key(), made.server_key.as_bytes(), 0o600)?;
        write_atomic(&self.client_cert(), made.client_cert.as_bytes(), 0o644)?;
        write_atomic(&self.client_key(), made.client_key.as_bytes(), 0o600)?;
        Ok(true)
    }
}

/// A freshly made set of PEM texts (the CA key is not kept, as with the
/// original's `cert-gen`: a new client needs a new set).
#[derive(Clone)]
pub struct GeneratedCerts {
    /// CA certificate.
    pub ca: String,
    /// Server certificate.
    pub server_cert: String,
    /// Server key (PKCS#8).
    pub server_key: String,
    /// Client certificate.
    pub client_cert: String,
    /// Client key (PKCS#8).
    pub client_key: String,
}

impl std::fmt::Debug for GeneratedCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedCerts")
            .field("ca", &self.ca)
            .field("server_cert", &self.server_cert)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> MatchboxApiError + '_ {
    move |e| MatchboxApiError::Tls {
        reason: format!("{what}: {e}"),
    }
}

/// Make a CA and a server and client certificate signed by it.
pub fn generate(server_ips: &[IpAddr]) -> Result<GeneratedCerts, MatchboxApiError> {
    let ca_key = KeyPair::generate().map_err(tls_err("CA key"))?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "racker matchbox CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(tls_err("CA certificate"))?;

    let server_key = KeyPair::generate().map_err(tls_err("server key"))?;
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(tls_err("server name"))?;
    server
        .distinguished_name
        .push(DnType::CommonName, "racker matchbox server");
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    ips.extend(server_ips.iter().copied().filter(|ip| !ip.is_loopback()));
    ips.dedup();
    server
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_cert = server
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(tls_err("server certificate"))?;

    let client_key = KeyPair::generate().map_err(tls_err("client key"))?;
    let mut client = CertificateParams::default();
    client
        .distinguished_name
        .push(DnType::CommonName, "racker matchbox client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let client_cert = client
        .signed_by(&client_key, &ca_cert, &ca_key)
        .map_err(tls_err("client certificate"))?;
    Ok(GeneratedCerts {
        ca: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_made_once_with_private_keys_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let paths = CertPaths::in_state_dir(dir.path());
        assert!(paths.ensure(&["172.24.213.1".parse().unwrap()]).unwrap());
        let key = std::fs::metadata(paths.client_key()).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
        let cert = std::fs::read_to_string(paths.server_cert()).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(
            std::fs::read(paths.ca()).unwrap(),
            std::fs::read(paths.client_ca()).unwrap()
        );
        assert!(!paths.ensure(&[]).unwrap(), "kept");
        assert_eq!(std::fs::read_to_string(paths.server_cert()).unwrap(), cert);
        assert!(!format!("{:?}", generate(&[]).unwrap()).contains("PRIVATE KEY"));
    }
}
