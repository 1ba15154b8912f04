//! The field client over https://: a county that serves behind TLS with its own
//! certificate authority. The real `bangfu` binary logs in and syncs through a TLS
//! proxy in front of a real server, trusting the county's CA by `BANGFU_CA_FILE`; without
//! it, the login is refused as an untrusted certificate, not as a network that is down.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bangfu_server::db_test;
use bangfu_tests::scenario::{HELPER, fixture_ledger};
use bangfu_tests::{PASSWORD, TestDb, World, client_binary, enroll_directly};

/// A CA and a certificate it signed for `localhost` and 127.0.0.1: the CA's PEM and DER,
/// and the server's certificate chain and key.
fn county_ca() -> (
    String,
    Vec<u8>,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "测试县扶贫办 CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        ca_cert.der().to_vec(),
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

/// A certificate for `localhost` of an authority no one knows that expired on
/// 2025-06-30: a county's certificate left to lapse.
fn lapsed_certificate() -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2024, 7, 1);
    params.not_after = rcgen::date_time_ymd(2025, 6, 30);
    let cert = params.self_signed(&key).unwrap();
    (
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

/// A TLS-terminating proxy on loopback in front of `target`: what a county puts before
/// its server (nginx, caddy). Its `https://` address.
async fn tls_proxy(
    target: std::net::SocketAddr,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> String {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake the client refused ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    format!("https://127.0.0.1:{port}")
}

/// Runs `bangfu` on `data` with `args`, the password on stdin, trusting `ca` when given.
fn bangfu<S: AsRef<std::ffi::OsStr>>(
    data: &Path,
    ca: Option<&Path>,
    args: &[S],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(client_binary());
    cmd.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove(bangfu_client::api::CA_FILE_VAR)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(ca) = ca {
        cmd.env(bangfu_client::api::CA_FILE_VAR, ca);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn over_https(t: &TestDb) {
    let w = World::new(t).await;
    fixture_ledger(t, &w).await;
    enroll_directly(t, &w, HELPER).await;
    let (ca_pem, ca_der, chain, key) = county_ca();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("county-ca.pem");
    // Saved as Windows Notepad saves it, with a byte-order mark (QA s28d H4).
    std::fs::write(&ca_file, format!("\u{feff}{ca_pem}")).unwrap();
    let server = tls_proxy(w.server.addr, chain, key).await;
    let data = dir.path().join("device");
    let login: Vec<String> = [
        "login",
        "--server",
        &server,
        "--username",
        HELPER,
        "--password-stdin",
    ]
    .map(String::from)
    .to_vec();
    // Not trusting the county's CA, the device refuses the server, and says why.
    let (data_copy, args) = (data.clone(), login.clone());
    let refused = tokio::task::spawn_blocking(move || bangfu(&data_copy, None, &args))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("证书不受本机信任") && err.contains("BANGFU_CA_FILE"),
        "{err}"
    );

    // A lapsed certificate is said with its date and the device's, so a helper whose
    // clock is right is not sent to check it (QA s28c G4).
    let (chain_lapsed, key_lapsed) = lapsed_certificate();
    let lapsed = tls_proxy(w.server.addr, chain_lapsed, key_lapsed).await;
    let (data_copy, mut args) = (data.clone(), login.clone());
    args[2] = lapsed;
    let refused = tokio::task::spawn_blocking(move || bangfu(&data_copy, None, &args))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success(), "{err}");
    let today = (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        err.contains("已于2025-06-30") && err.contains(&format!("本机时间为{today}")),
        "{err}"
    );

    // A CA file that is no certificate is said to be so (QA s28b F2).
    let (data_copy, args) = (data.clone(), login.clone());
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "这不是证书").unwrap();
    let refused = tokio::task::spawn_blocking(move || bangfu(&data_copy, Some(&not_pem), &args))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(!refused.status.success(), "{err}");
    assert!(err.contains("证书文件无法使用"), "{err}");

    // The county's CA as Windows exports it (`.cer`, DER) is trusted too (QA s29a I8).
    let (data_copy, args) = (dir.path().join("device-der"), login.clone());
    let der_file = dir.path().join("county-ca.cer");
    std::fs::write(&der_file, &ca_der).unwrap();
    let out = tokio::task::spawn_blocking(move || bangfu(&data_copy, Some(&der_file), &args))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Trusting it, the device logs in and syncs over TLS.
    let (data_copy, ca) = (data.clone(), ca_file.clone());
    let out = tokio::task::spawn_blocking(move || {
        let login = bangfu(&data_copy, Some(&ca), &login);
        let sync = bangfu(&data_copy, Some(&ca), &["sync"]);
        (login, sync)
    })
    .await
    .unwrap();
    for o in [&out.0, &out.1] {
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The device's households came over TLS.
    let list = tokio::task::spawn_blocking(move || bangfu(&data, None, &["--json", "households"]))
        .await
        .unwrap();
    let households: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        households.as_array().is_some_and(|h| !h.is_empty()),
        "{households}"
    );
}
db_test!(the_field_client_logs_in_and_syncs_over_https, over_https);
