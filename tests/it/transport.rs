//! The transport under attack: malformed TLS, slow clients and floods of connections. The
//! server closes what it cannot use, cuts slow clients at the configured timeouts, caps
//! connections per client address and per listener, keeps its memory bounded, serves other
//! clients throughout, and keeps every write acknowledged during the attack.
//!
//! Linux answers on all of 127.0.0.0/8, so a test plays several clients by binding its sockets
//! to 127.0.0.1 (the attacker), 127.0.0.2 (an agent), and so on.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestDatabase, client_tls, spawn_app_with};

both_backends!(
    malformed_handshakes_and_stray_bytes_are_closed_and_others_served,
    slow_handshakes_and_slow_headers_are_cut_while_others_are_served,
    connection_caps_hold_memory_stays_bounded_and_writes_are_kept,
);

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const AGENT: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection from `source` to `to`.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// Reads until the server closes the connection; how long that took, or None if it was still
/// open after `limit`. Whatever the server sends first (an alert, an error page) is skipped.
async fn closed_by_server<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// A client of the HTTPS listener from `source`, opening a fresh connection for each request.
fn client_from(cert: &Path, source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(cert))
        .local_address(IpAddr::from(source))
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn tls_connector(cert: &Path) -> TlsConnector {
    let mut config = client_tls(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// The start of a real TLS 1.2/1.3 ClientHello: a handshake record announcing 512 bytes, of
/// which only the first few arrive.
const CLIENT_HELLO_START: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, // record: handshake, TLS 1.0 framing, 512 bytes
    0x01, 0x00, 0x01, 0xfc, // ClientHello, 508 bytes
    0x03, 0x03, // legacy version TLS 1.2
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, // part of the random
];

async fn malformed_handshakes_and_stray_bytes_are_closed_and_others_served(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: "tls_handshake_timeout_secs = 2\nidle_timeout_secs = 2\n".into(),
            ..Options::default()
        },
    )
    .await;
    let mut noise = vec![0u8; 2048];
    getrandom::fill(&mut noise).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", noise),
        (
            "plain HTTP to the TLS port",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
        ),
        ("truncated ClientHello", CLIENT_HELLO_START.to_vec()),
        (
            "record longer than TLS allows",
            vec![0x16, 0x03, 0x03, 0xff, 0xff, 0x01, 0x00, 0xff, 0xfb],
        ),
        (
            "handshake message of 16 MiB",
            vec![0x16, 0x03, 0x03, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff],
        ),
        (
            "SSLv2 ClientHello",
            vec![
                0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
            ],
        ),
        (
            "application data before any handshake",
            vec![0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5],
        ),
        ("nothing at all", Vec::new()),
    ];
    let agent = client_from(&app.cert_path(), AGENT);
    for (what, bytes) in cases {
        let mut tcp = connect_from(ATTACKER, app.server.addr).await.unwrap();
        // The server may close before it has read everything: a failed write is fine.
        let _ = tcp.write_all(&bytes).await;
        // Without the handshake timeout, the truncated hello and the silent client would be
        // kept for ever; the bound is generous, the configured timeout is 2 s.
        let closed = closed_by_server(&mut tcp, Duration::from_secs(30)).await;
        assert!(
            closed.is_some(),
            "{what}: the server kept the connection open"
        );
        eprintln!("{what}: closed after {:?}", closed.unwrap());
        let r = agent.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "after {what}");
    }
    // An HTTP/2 client that opens its connection and then says nothing is closed: its first
    // request's headers are late (and it is idle). Header blocks left open mid-way are in
    // bad_input.rs.
    let mut config = client_tls(&app.cert_path());
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = connect_from(ATTACKER, app.server.addr).await.unwrap();
    let mut h2 = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let closed = closed_by_server(&mut h2, Duration::from_secs(30)).await;
    assert!(closed.is_some(), "an idle HTTP/2 connection was kept");
    eprintln!("idle HTTP/2 connection: closed after {:?}", closed.unwrap());

    // A client that gives up mid-handshake does not disturb the next one either.
    let tcp = connect_from(ATTACKER, app.server.addr).await.unwrap();
    drop(tcp);
    let r = agent.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// What an attacker connection ended with.
struct SlowOutcome {
    /// Time from the moment the attack could start (connected, or handshake done) to the
    /// server's close; None when the attacker stopped first.
    closed_after: Option<Duration>,
}

/// Trickles `first` and then one byte every half second into `stream`, until the server closes
/// it or `stop` is set.
async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    first: &[u8],
    stop: &AtomicBool,
) -> SlowOutcome {
    let start = Instant::now();
    if stream.write_all(first).await.is_err() {
        return SlowOutcome {
            closed_after: Some(start.elapsed()),
        };
    }
    let mut buf = [0u8; 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            return SlowOutcome { closed_after: None };
        }
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return SlowOutcome { closed_after: Some(start.elapsed()) },
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                let sent = async {
                    stream.write_all(b"a").await?;
                    stream.flush().await
                };
                if sent.await.is_err() {
                    return SlowOutcome { closed_after: Some(start.elapsed()) };
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum SlowKind {
    /// Connects to the TLS port and never finishes the handshake.
    Handshake,
    /// Completes the handshake, then sends a request's headers a byte at a time.
    TlsHeaders,
    /// Sends a request's headers a byte at a time to the redirect listener.
    PlainHeaders,
}

/// One attacker: reconnects each time the server cuts it, until `stop`; returns how long each
/// of its connections lasted.
async fn slow_attacker(
    kind: SlowKind,
    https: SocketAddr,
    http: SocketAddr,
    connector: TlsConnector,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    let mut lifetimes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let outcome = match kind {
            SlowKind::Handshake => {
                let tcp = connect_from(ATTACKER, https).await.unwrap();
                trickle(tcp, &CLIENT_HELLO_START[..5], &stop).await
            }
            SlowKind::TlsHeaders => {
                let tcp = connect_from(ATTACKER, https).await.unwrap();
                let Ok(tls) = connector
                    .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
                    .await
                else {
                    continue;
                };
                trickle(tls, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", &stop).await
            }
            SlowKind::PlainHeaders => {
                let tcp = connect_from(ATTACKER, http).await.unwrap();
                trickle(tcp, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", &stop).await
            }
        };
        if let Some(lifetime) = outcome.closed_after {
            lifetimes.push(lifetime);
        }
    }
    lifetimes
}

async fn slow_handshakes_and_slow_headers_are_cut_while_others_are_served(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: "http_redirect_listen = \"127.0.0.1:0\"\n\
                           tls_handshake_timeout_secs = 2\nheader_read_timeout_secs = 2\n"
                .into(),
            ..Options::default()
        },
    )
    .await;
    let https = app.server.addr;
    let http = app.server.redirect_addr.unwrap();
    let connector = tls_connector(&app.cert_path());
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for (kind, count) in [
        (SlowKind::Handshake, 100),
        (SlowKind::TlsHeaders, 100),
        (SlowKind::PlainHeaders, 60),
    ] {
        for _ in 0..count {
            attackers.push(tokio::spawn(slow_attacker(
                kind,
                https,
                http,
                connector.clone(),
                stop.clone(),
            )));
        }
    }
    // Let every attacker get its connection in.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Meanwhile, an agent is served: fresh connections, a sign-in (a form POST that writes a
    // session and an audit entry), the redirect listener.
    let agent = client_from(&app.cert_path(), AGENT);
    for _ in 0..5 {
        let r = agent.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (browser, id) = app.signed_in_as("agent.during.attack", &[]).await;
    let r = browser.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the signed-in home page");
    let plain = reqwest::Client::builder()
        .local_address(IpAddr::from(AGENT))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://127.0.0.1:{}/", http.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    // Keep the pressure on until every kind of attacker has been cut at least once.
    tokio::time::sleep(Duration::from_secs(3)).await;

    stop.store(true, Ordering::Relaxed);
    let mut by_kind = [Vec::new(), Vec::new(), Vec::new()];
    for (i, attacker) in attackers.into_iter().enumerate() {
        let kind = if i < 100 {
            0
        } else if i < 200 {
            1
        } else {
            2
        };
        by_kind[kind].extend(attacker.await.unwrap());
    }
    for (name, lifetimes) in ["slow handshakes", "slow TLS headers", "slow plain headers"]
        .iter()
        .zip(&by_kind)
    {
        let longest = lifetimes.iter().max().copied().unwrap_or_default();
        eprintln!(
            "{name}: {} connections cut by the server, the longest after {longest:?}",
            lifetimes.len()
        );
        // Every attacker was cut at least once, each cut came from the 2 s timeout (a
        // byte every half second would otherwise keep it for ever); the bound is generous.
        assert!(
            lifetimes.len() >= 60,
            "{name}: only {} cut",
            lifetimes.len()
        );
        assert!(longest < Duration::from_secs(20), "{name}: {longest:?}");
    }

    // The sign-in made during the attack is committed with its audit entry.
    let sessions = beffroi::with_db!(app.db(), pool => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM sessions WHERE account_id = $1").bind(id).fetch_one(pool).await.unwrap());
    assert_eq!(sessions, 1);
    let entries = crate::helpers::audit_entries(app.db(), "auth.sign_in").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
}

/// Starts `beffroi serve`; returns the child and the port it listens on.
fn serve(config: &Path) -> (Child, u16) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_beffroi"))
        .env_remove("BEFFROI_CONFIG")
        .args(["serve", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start: {}", seen.join("\n"));
        };
        seen.push(line.clone());
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if json["message"] == "listening" {
            let addr: SocketAddr = json["addr"].as_str().unwrap().parse().unwrap();
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, addr.port());
        }
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Opens `count` connections from `source` that start a handshake and stall; returns the ones
/// the server kept open (the others it closed at once).
async fn hold(source: [u8; 4], to: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        tasks.push(tokio::spawn(async move {
            let mut tcp = connect_from(source, to).await.unwrap();
            // Writing may fail once the server has closed; the read below tells.
            let _ = tcp.write_all(&CLIENT_HELLO_START[..5]).await;
            // A refused connection is closed at once; a kept one waits on its handshake,
            // whose timeout here is a minute.
            match closed_by_server(&mut tcp, Duration::from_secs(3)).await {
                Some(_) => None,
                None => Some(tcp),
            }
        }));
    }
    let mut kept = Vec::new();
    for task in tasks {
        kept.extend(task.await.unwrap());
    }
    kept
}

async fn scim_create(client: &reqwest::Client, base: &str, token: &str, name: &str) -> bool {
    let body = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
    });
    client
        .post(format!("{base}/scim/v2/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::CREATED)
}

async fn connection_caps_hold_memory_stays_bounded_and_writes_are_kept(backend: Backend) {
    beffroi::tls::install_crypto_provider();
    let database = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let private = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let token = beffroi::auth::session::random_token().unwrap();
    private("scim-token", &format!("{token}\n"));
    private("oidc-secret", "unused\n");
    let db_line = database
        .url
        .as_ref()
        .map(|u| format!("database_url = \"{u}\"\n"))
        .unwrap_or_default();
    // Handshake and idle timeouts of a minute: here the caps alone must hold the attackers.
    let config_path = private(
        "beffroi.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 60\nmax_connections_per_ip = 40\n\
             tls_handshake_timeout_secs = 60\nheader_read_timeout_secs = 60\nidle_timeout_secs = 60\n\
             [storage]\ndata_dir = \"{data}\"\n{db_line}\
             [security]\nrequests_per_second = 100000\nrequest_burst = 100000\n\
             [log]\nformat = \"json\"\n\
             [metrics]\nallow_from = [\"127.0.0.2/32\"]\n\
             [oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"beffroi\"\n\
             client_secret_file = \"{dir}/oidc-secret\"\n\
             redirect_url = \"https://127.0.0.1/auth/oidc/callback\"\n\
             [scim]\ntoken_file = \"{dir}/scim-token\"\n",
            data = dir.path().join("data").display(),
            dir = dir.path().display(),
        ),
    );
    let (mut child, port) = serve(&config_path);
    let pid = child.id();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let cert = dir.path().join("data").join("tls").join("cert.pem");
    let base = format!("https://127.0.0.1:{port}");
    let agent = client_from(&cert, AGENT);
    let r = agent.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rss_idle = rss_kib(pid);

    // One address opens 300 connections: 40 are kept, the rest closed at once.
    let from_attacker = hold(ATTACKER, addr, 300).await;
    assert_eq!(from_attacker.len(), 40, "the per-address cap");

    // Another address is still served, and its writes are acknowledged.
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let name = format!("agent{i:02}");
        if scim_create(&agent, &base, &token, &name).await {
            acknowledged.push(name);
        }
    }
    assert_eq!(acknowledged.len(), 10, "writes during the flood");
    // The agent's connections are closed; give the server a moment to count them out.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A third address fills the listener: 20 more are kept, then nobody new gets in.
    let third = hold([127, 0, 0, 3], addr, 25).await;
    assert_eq!(third.len(), 20, "the listener's cap");
    let latecomer = client_from(&cert, [127, 0, 0, 4]);
    assert!(
        latecomer
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "a connection beyond max_connections is refused"
    );
    // A flood while full: two thousand more connections, all refused, none piling up.
    for _ in 0..10 {
        let kept = hold([127, 0, 0, 5], addr, 200).await;
        assert!(kept.is_empty(), "a connection beyond the cap was kept");
    }
    let rss_attack = rss_kib(pid);
    eprintln!("RSS: {rss_idle} KiB idle, {rss_attack} KiB under attack");
    assert!(
        rss_attack < 200 * 1024,
        "RSS {rss_attack} KiB under attack (idle: {rss_idle} KiB)"
    );

    // Slots come back as connections close.
    drop(third);
    let mut served = false;
    for _ in 0..50 {
        if let Ok(r) = latecomer.get(format!("{base}/healthz")).send().await {
            served = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served, "a freed slot is given to the next client");
    drop(from_attacker);

    // The refusals are counted where monitoring reads them.
    let metrics = agent
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counter = |limit: &str| -> u64 {
        let prefix =
            format!("beffroi_connections_refused_total{{listener=\"https\",limit=\"{limit}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(counter("server.max_connections_per_ip"), 260, "{metrics}");
    assert!(counter("server.max_connections") >= 2_006, "{metrics}");
    assert!(
        metrics.contains("beffroi_connections_open{listener=\"https\"}"),
        "{metrics}"
    );

    // Every acknowledged write is stored, with its audit entry.
    let config = beffroi::config::Config::load(&config_path, Vec::new()).unwrap();
    let db = beffroi::db::Database::connect(&config).await.unwrap();
    let mut stored: Vec<String> = beffroi::with_db!(&db, pool => sqlx::query_scalar(
        "SELECT user_name FROM scim_users").fetch_all(pool).await.unwrap());
    stored.sort();
    assert_eq!(stored, acknowledged);
    let audited = crate::helpers::audit_entries(&db, "scim.user_create").await;
    assert_eq!(audited.len(), acknowledged.len());
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}
