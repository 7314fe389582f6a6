//! TLS: 1.3 by default, 1.2 only when enabled (and then ECDHE + AEAD only), 1.1 refused, the
//! certificate reloaded without a restart, plain HTTP only redirects.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, spawn_app, spawn_app_with};

both_backends!(
    tls13_is_negotiated_and_tls12_refused_by_default,
    tls12_works_only_when_enabled_with_aead_suites,
    tls11_client_hello_is_refused,
    certificate_is_reloaded_without_restart,
    plain_http_listener_only_redirects,
);

fn connector(
    app: &TestApp,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_file_iter(app.cert_path()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(beffroi::tls::crypto_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn handshake(
    app: &TestApp,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(app.server.addr).await?;
    connector(app, versions)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}

async fn tls13_is_negotiated_and_tls12_refused_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let stream = handshake(&app, &[&rustls::version::TLS13, &rustls::version::TLS12])
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        None,
        "no ALPN offered, none chosen"
    );
    assert!(
        handshake(&app, &[&rustls::version::TLS12]).await.is_err(),
        "TLS 1.2 accepted by default"
    );
}

async fn tls12_works_only_when_enabled_with_aead_suites(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "min_version = \"1.2\"\n".into(),
            ..Options::default()
        },
    )
    .await;
    let stream = handshake(&app, &[&rustls::version::TLS12]).await.unwrap();
    let conn = stream.get_ref().1;
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let suite = format!("{:?}", conn.negotiated_cipher_suite().unwrap().suite());
    assert!(
        suite.starts_with("TLS_ECDHE_")
            && (suite.contains("GCM") || suite.contains("CHACHA20_POLY1305")),
        "{suite}"
    );
    let stream = handshake(&app, &[&rustls::version::TLS13, &rustls::version::TLS12])
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

/// A minimal TLS 1.1 ClientHello (no supported_versions extension), byte by byte.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, 0x00, u8::try_from(body.len()).unwrap()];
    handshake.extend(body);
    let mut record = vec![
        0x16,
        0x03,
        0x01,
        0x00,
        u8::try_from(handshake.len()).unwrap(),
    ];
    record.extend(handshake);
    record
}

async fn tls11_client_hello_is_refused(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "min_version = \"1.2\"\n".into(),
            ..Options::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(app.server.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    // An alert record (never a ServerHello), fatal, protocol_version (70) or handshake_failure (40).
    assert_eq!(answer[0], 0x15, "expected an alert, got {answer:?}");
    assert_eq!(answer[5], 0x02, "expected a fatal alert, got {answer:?}");
    assert!([70, 40].contains(&answer[6]), "unexpected alert {answer:?}");
}

fn served_fingerprint(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> String {
    beffroi::tls::fingerprint(&stream.get_ref().1.peer_certificates().unwrap()[0])
}

async fn certificate_is_reloaded_without_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = app.server.certificates.fingerprint();
    let open = handshake(&app, &[&rustls::version::TLS13]).await.unwrap();
    assert_eq!(served_fingerprint(&open), old);
    // A client that keeps its connection across the reload.
    let client = app.client();
    assert_eq!(
        client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Renew: new files written beside and renamed over, as certbot and friends do.
    let staging = app.data_dir.join("staging");
    beffroi::tls::generate_self_signed(
        &staging.join("cert.pem"),
        &staging.join("key.pem"),
        vec!["127.0.0.1".into(), "localhost".into()],
    )
    .unwrap();
    std::fs::rename(staging.join("key.pem"), app.config.tls_key_path()).unwrap();
    std::fs::rename(staging.join("cert.pem"), app.cert_path()).unwrap();

    let mut new = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let fp = app.server.certificates.fingerprint();
        if fp != old {
            new = Some(fp);
            break;
        }
    }
    let new = new.expect("certificate not reloaded within 10 s");
    // New handshakes get the new certificate (the client now trusts the new file).
    let fresh = handshake(&app, &[&rustls::version::TLS13]).await.unwrap();
    assert_eq!(served_fingerprint(&fresh), new);
    // The connection opened before still works: nothing was dropped.
    let mut open = open;
    open.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    open.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // A broken replacement is refused and the good certificate stays.
    std::fs::write(app.cert_path(), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.server.certificates.fingerprint(), new);
}

async fn plain_http_listener_only_redirects(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: "http_redirect_listen = \"127.0.0.1:0\"\n".into(),
            ..Options::default()
        },
    )
    .await;
    let port = app.server.redirect_addr.unwrap().port();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(
        b"GET /login?next=%2F HTTP/1.1\r\nHost: intranet.example:80\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    let lower = response.to_lowercase();
    assert!(response.starts_with("HTTP/1.1 308"), "{response}");
    let https_port = app.server.addr.port();
    assert!(
        lower.contains(&format!(
            "location: https://intranet.example:{https_port}/login?next=%2f"
        )),
        "{response}"
    );
    assert!(lower.contains("strict-transport-security"), "{response}");
    assert!(!lower.contains("set-cookie"), "{response}");
}
