//! `fetch_flatcar` against a local HTTP mirror serving files signed by a key
//! generated in the test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use pgp::composed::{
    ArmorOptions, DetachedSignature, KeyType, SecretKeyParamsBuilder, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;
use racker_netboot::ContentError;
use racker_netboot::IgnitionDir;
use racker_netboot::assets::{FetchEvent, FetchOptions, FetchOutcome, fetch_flatcar};
use racker_netboot::http::metrics::Metrics;
use racker_netboot::http::{HttpContent, HttpServer};
use racker_netboot::matchbox::Catalog;
use racker_netboot::report::ReportStore;

const VERSION: &str = "4081.2.0";

fn key(name: &str) -> SignedSecretKey {
    SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("{name} <{name}@example.test>"))
        .build()
        .unwrap()
        .generate(rand_core::OsRng)
        .unwrap()
}

fn armored_public(k: &SignedSecretKey) -> String {
    k.to_public_key()
        .to_armored_string(ArmorOptions::default())
        .unwrap()
}

fn sign(k: &SignedSecretKey, data: &[u8]) -> Vec<u8> {
    DetachedSignature::sign_binary_data(
        rand_core::OsRng,
        &k.primary_key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        data,
    )
    .unwrap()
    .to_bytes()
    .unwrap()
}

struct Mirror {
    _dir: tempfile::TempDir,
    mirror: PathBuf,
    state: PathBuf,
    base: String,
    files: Vec<(String, Vec<u8>)>,
    metrics: Arc<Metrics>,
    signer: SignedSecretKey,
}

async fn mirror() -> Mirror {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    let state = dir.path().join("state");
    let vdir = mirror.join("amd64-usr").join(VERSION);
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::create_dir_all(mirror.join("amd64-usr/current")).unwrap();
    std::fs::write(
        mirror.join("amd64-usr/current/version.txt"),
        format!("FLATCAR_BUILD=4081\nFLATCAR_VERSION={VERSION}\n"),
    )
    .unwrap();
    let signer = key("flatcar-test");
    let mut files = Vec::new();
    for (i, name) in [
        "flatcar_production_pxe.vmlinuz",
        "flatcar_production_pxe_image.cpio.gz",
        "flatcar_production_image.bin.bz2",
    ]
    .iter()
    .enumerate()
    {
        let data: Vec<u8> = (0..(300_000 + i * 1000))
            .map(|j| (j * 31 + i) as u8)
            .collect();
        std::fs::write(vdir.join(name), &data).unwrap();
        std::fs::write(vdir.join(format!("{name}.sig")), sign(&signer, &data)).unwrap();
        files.push(((*name).to_owned(), data));
    }
    let metrics = Arc::new(Metrics::default());
    std::fs::create_dir_all(&state).unwrap();
    let content = HttpContent::new(
        Catalog::default(),
        ReportStore::open(&state).unwrap(),
        Arc::new(IgnitionDir::in_state_dir(&state)),
        &mirror,
        metrics.clone(),
    );
    let server = HttpServer::bind("127.0.0.1:0".parse().unwrap(), content)
        .await
        .unwrap();
    let base = format!("http://{}/assets/amd64-usr", server.local_addr());
    tokio::spawn(server.run());
    Mirror {
        _dir: dir,
        mirror,
        state,
        base,
        files,
        metrics,
        signer,
    }
}

impl Mirror {
    fn options(&self, key: &SignedSecretKey) -> FetchOptions {
        let mut o = FetchOptions::default();
        o.base_url = Some(self.base.clone());
        o.signing_key = armored_public(key);
        o
    }
    fn assets(&self) -> PathBuf {
        self.state.join("assets")
    }
    fn served(&self) -> u64 {
        self.metrics.http.asset_bytes.load(Ordering::Relaxed)
    }
}

fn nothing_installed(assets: &Path) {
    assert!(!assets.join("flatcar").join(VERSION).exists());
    assert!(std::fs::symlink_metadata(assets.join("flatcar/current")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_verifies_installs_and_skips_when_current() {
    let m = mirror().await;
    let mut events = Vec::new();
    let outcome = fetch_flatcar(&m.assets(), &m.options(&m.signer), |e| events.push(e))
        .await
        .unwrap();
    let dir = m.assets().join("flatcar").join(VERSION);
    assert_eq!(
        outcome,
        FetchOutcome::Installed {
            version: VERSION.into(),
            dir: dir.clone()
        }
    );
    assert!(events.contains(&FetchEvent::Resolved(VERSION.into())));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, FetchEvent::Verified(_)))
            .count(),
        3
    );
    for (name, data) in &m.files {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), data);
    }
    assert_eq!(
        std::fs::read_link(m.assets().join("flatcar/current")).unwrap(),
        Path::new(VERSION)
    );
    // Through the link, as the HTTP server will serve it.
    assert_eq!(
        std::fs::read(
            m.assets()
                .join("flatcar/current/flatcar_production_pxe.vmlinuz")
        )
        .unwrap(),
        m.files[0].1
    );
    assert!(
        !m.assets()
            .join(format!("flatcar/.partial-{VERSION}"))
            .exists()
    );
    // What flatcar-install reads from racker's mirror: version.txt to
    // resolve `-V current`, and the key the rendered installer passes as -k.
    assert_eq!(
        std::fs::read_to_string(m.assets().join("flatcar/current/version.txt")).unwrap(),
        format!("FLATCAR_VERSION={VERSION}\n")
    );
    assert_eq!(
        std::fs::read_to_string(
            m.assets()
                .join("flatcar/current/Flatcar_Image_Signing_Key.asc")
        )
        .unwrap(),
        m.options(&m.signer).signing_key
    );

    let served = m.served();
    let again = fetch_flatcar(&m.assets(), &m.options(&m.signer), |_| {})
        .await
        .unwrap();
    assert_eq!(
        again,
        FetchOutcome::AlreadyCurrent {
            version: VERSION.into()
        }
    );
    let version_txt = std::fs::metadata(m.mirror.join("amd64-usr/current/version.txt"))
        .unwrap()
        .len();
    assert_eq!(
        m.served() - served,
        version_txt,
        "only version.txt is fetched when current"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_download_resumes() {
    let m = mirror().await;
    let partial = m.assets().join(format!("flatcar/.partial-{VERSION}"));
    std::fs::create_dir_all(&partial).unwrap();
    let (name, data) = &m.files[0];
    std::fs::write(partial.join(name), &data[..200_000]).unwrap();
    let mut resumed = None;
    fetch_flatcar(&m.assets(), &m.options(&m.signer), |e| {
        if let FetchEvent::Start {
            file, resumed_from, ..
        } = &e
            && file == name
        {
            resumed = Some(*resumed_from);
        }
    })
    .await
    .unwrap();
    assert_eq!(resumed, Some(200_000));
    let total: u64 = m.files.iter().map(|(_, d)| d.len() as u64).sum();
    assert!(
        m.served() < total,
        "the first 200000 bytes were not re-sent"
    );
    assert_eq!(
        &std::fs::read(m.assets().join("flatcar").join(VERSION).join(name)).unwrap(),
        data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_file_installs_nothing() {
    let m = mirror().await;
    let target = m
        .mirror
        .join("amd64-usr")
        .join(VERSION)
        .join("flatcar_production_pxe_image.cpio.gz");
    let mut data = std::fs::read(&target).unwrap();
    data[1234] ^= 0x40;
    std::fs::write(&target, data).unwrap();
    let err = fetch_flatcar(&m.assets(), &m.options(&m.signer), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ContentError::BadSignature { file, .. } if file == "flatcar_production_pxe_image.cpio.gz"),
        "{err}"
    );
    nothing_installed(&m.assets());
    assert!(
        !m.assets()
            .join(format!("flatcar/.partial-{VERSION}"))
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_by_another_key_installs_nothing() {
    let m = mirror().await;
    let stranger = key("stranger");
    let err = fetch_flatcar(&m.assets(), &m.options(&stranger), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ContentError::BadSignature { .. }), "{err}");
    nothing_installed(&m.assets());

    let mut bad = m.options(&m.signer);
    bad.signing_key = "not a key".into();
    let err = fetch_flatcar(&m.assets(), &bad, |_| {}).await.unwrap_err();
    assert!(matches!(err, ContentError::SigningKey(_)), "{err}");
    nothing_installed(&m.assets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_version_is_a_download_error() {
    let m = mirror().await;
    let mut o = m.options(&m.signer);
    o.version = "9999.0.0".into();
    let err = fetch_flatcar(&m.assets(), &o, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    nothing_installed(&m.assets());
    o.version = "../../etc".into();
    assert!(fetch_flatcar(&m.assets(), &o, |_| {}).await.is_err());
}
