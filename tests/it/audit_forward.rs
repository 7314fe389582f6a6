//! Forwarding the audit log to a SIEM (`[audit.syslog]`): real collectors in the test — TCP,
//! TLS with a test CA, local datagram and stream sockets — receive every entry as one RFC 5424
//! message, in sequence order; a collector that is down, or killed mid-stream, delays entries but
//! loses none; a collector whose certificate does not verify gets nothing, and progress does
//! not advance; on PostgreSQL one node forwards at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beffroi::audit::entry::Entry;
use beffroi::audit::forward::format::timestamp;
use beffroi::security_events::{Actor, record_alone};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UnixDatagram, UnixListener};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, spawn_app_with};

both_backends!(
    entries_arrive_in_order_as_rfc5424_messages,
    a_collector_down_at_first_gets_everything_from_seq_1,
    a_collector_killed_mid_stream_loses_nothing,
    tls_needs_the_collectors_authority,
    local_datagram_and_stream_sockets,
    one_node_forwards_at_a_time,
);

/// Short timings so that each test takes a second or two.
fn syslog_section(transport: &str, address: &str, extra: &str) -> String {
    format!(
        "[audit.syslog]\ntransport = \"{transport}\"\naddress = \"{address}\"\n\
         hostname = \"node-1.test\"\npoll_interval_ms = 50\nretry_max_secs = 1\n\
         timeout_secs = 2\n{extra}"
    )
}

async fn spawn_forwarding(backend: Backend, section: String) -> TestApp {
    spawn_app_with(
        backend,
        Options {
            extra: section,
            ..Options::default()
        },
    )
    .await
}

/// A free TCP port on 127.0.0.1, closed again.
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads octet-counted frames (RFC 6587 §3.4.1) and passes each message on. A malformed frame
/// is passed on as a message that no test accepts.
async fn read_frames<R: AsyncRead + Unpin>(mut reader: R, tx: &UnboundedSender<String>) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some(space) = buffer.iter().position(|b| *b == b' ') {
            let Some(len) = std::str::from_utf8(&buffer[..space])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                let _ = tx.send(format!("BAD FRAME {:?}", String::from_utf8_lossy(&buffer)));
                return;
            };
            if buffer.len() < space + 1 + len {
                break;
            }
            let message = String::from_utf8(buffer[space + 1..space + 1 + len].to_vec())
                .unwrap_or_else(|e| format!("BAD UTF-8 {e}"));
            buffer.drain(..space + 1 + len);
            let _ = tx.send(message);
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A TCP collector on `port`, serving one connection at a time. Aborting its task closes the
/// listener and the connection at once, like a collector that crashes.
fn tcp_collector(listener: TcpListener) -> (JoinHandle<()>, UnboundedReceiver<String>) {
    let (tx, rx) = unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            read_frames(stream, &tx).await;
        }
    });
    (task, rx)
}

async fn tcp_collector_on(port: u16) -> (JoinHandle<()>, UnboundedReceiver<String>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tcp_collector(listener)
}

/// One received RFC 5424 message, split into its parts.
#[derive(Debug)]
struct Message {
    pri: u16,
    version: String,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    sd_id: String,
    params: BTreeMap<String, String>,
    msg: String,
}

impl Message {
    fn seq(&self) -> u64 {
        self.params["seq"].parse().unwrap()
    }
}

/// Parses a message as a strict RFC 5424 receiver would (§6, with §6.3.3's escapes).
fn parse(text: &str) -> Message {
    let mut head = text.splitn(7, ' ');
    let mut next = || {
        head.next()
            .unwrap_or_else(|| panic!("short message {text:?}"))
    };
    let pri_version = next();
    let (pri, version) = pri_version
        .strip_prefix('<')
        .and_then(|s| s.split_once('>'))
        .unwrap_or_else(|| panic!("no PRI in {text:?}"));
    let (timestamp, hostname, app_name, procid, msgid) = (next(), next(), next(), next(), next());
    let rest = next();
    let rest = rest
        .strip_prefix('[')
        .unwrap_or_else(|| panic!("no SD in {text:?}"));
    let (sd_id, mut rest) = rest.split_once(' ').unwrap();
    let mut params = BTreeMap::new();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            rest = after;
            break;
        }
        rest = rest.strip_prefix(' ').unwrap_or(rest);
        let (name, after) = rest.split_once("=\"").unwrap();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("open value in {text:?}"));
            match c {
                '\\' => {
                    let (_, escaped) = chars.next().unwrap();
                    if !matches!(escaped, '"' | '\\' | ']') {
                        value.push('\\');
                    }
                    value.push(escaped);
                }
                '"' => break i,
                c => value.push(c),
            }
        };
        params.insert(name.to_owned(), value);
        rest = &after[end + 1..];
    }
    let msg = rest
        .strip_prefix(" \u{feff}")
        .unwrap_or_else(|| panic!("no BOM before MSG in {text:?}"));
    Message {
        pri: pri.parse().unwrap(),
        version: version.to_owned(),
        timestamp: timestamp.to_owned(),
        hostname: hostname.to_owned(),
        app_name: app_name.to_owned(),
        procid: procid.to_owned(),
        msgid: msgid.to_owned(),
        sd_id: sd_id.to_owned(),
        params,
        msg: msg.to_owned(),
    }
}

/// Waits for `n` messages (at most 20 s, a failure rather than a stuck run).
async fn receive(rx: &mut UnboundedReceiver<String>, n: usize) -> Vec<Message> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(text)) => out.push(parse(&text)),
            _ => panic!(
                "received {} of {n} messages: {:?}",
                out.len(),
                out.iter().map(Message::seq).collect::<Vec<_>>()
            ),
        }
    }
    out
}

/// Whatever arrives within `wait`.
async fn drain(rx: &mut UnboundedReceiver<String>, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    while let Ok(Some(text)) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        rx.recv(),
    )
    .await
    {
        out.push(text);
    }
    out
}

fn actor(n: usize) -> Actor {
    Actor {
        account_id: Some(7),
        name: Some(format!("Agent {n}")),
        ip: Some("192.0.2.10".into()),
        request_id: Some(format!("req-{n}")),
    }
}

async fn append(app: &TestApp, n: usize) {
    record_alone(
        &app.server.state.audit,
        &actor(n),
        "auth.sign_in_failure",
        Some(format!("login:user{n}")),
        "denied",
        serde_json::json!({ "n": n, "reason": "wrong_password" }),
    )
    .await
    .unwrap();
}

async fn stored(app: &TestApp) -> Vec<Entry> {
    beffroi::audit::store::stored_entries(app.db())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.entry)
        .collect()
}

async fn last_seq(app: &TestApp) -> i64 {
    app.count("SELECT COALESCE(MAX(last_seq), 0) FROM audit_forwarding")
        .await
}

/// Waits until the progress table says `seq` (the collector is known to have it).
async fn wait_for_progress(app: &TestApp, seq: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while last_seq(app).await < seq {
        assert!(
            Instant::now() < deadline,
            "progress stuck at {}",
            last_seq(app).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a collector must see for a stored entry.
fn assert_matches(m: &Message, e: &Entry) {
    assert_eq!(m.seq(), e.seq);
    let severity = if e.outcome == "success" { 5 } else { 4 };
    assert_eq!(m.pri, 10 * 8 + severity, "authpriv by default");
    assert_eq!(m.version, "1");
    assert_eq!(m.timestamp, timestamp(e.time_us).unwrap());
    assert_eq!(m.hostname, "node-1.test");
    assert_eq!(m.app_name, "beffroi");
    assert_eq!(m.procid, std::process::id().to_string());
    assert_eq!(m.msgid, e.action);
    assert_eq!(m.sd_id, "beffroi@32473");
    let expected: BTreeMap<String, String> = [
        ("seq", Some(e.seq.to_string())),
        ("actor_id", e.actor_id.map(|i| i.to_string())),
        ("actor", e.actor_name.clone()),
        ("ip", e.actor_ip.clone()),
        ("request_id", e.request_id.clone()),
        ("target", e.target.clone()),
        ("outcome", Some(e.outcome.clone())),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
    .collect();
    assert_eq!(m.params, expected);
    assert_eq!(m.msg, e.details);
}

async fn entries_arrive_in_order_as_rfc5424_messages(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_collector, mut rx) = tcp_collector(listener);
    let app = spawn_forwarding(
        backend,
        syslog_section("tcp", &format!("127.0.0.1:{port}"), ""),
    )
    .await;

    for n in 1..=3 {
        append(&app, n).await;
    }
    // A success, and values a hostile client could choose: quotes, brackets, backslashes, and
    // a line break followed by what looks like a record of its own.
    record_alone(
        &app.server.state.audit,
        &Actor {
            account_id: None,
            name: Some("Eve \"the\" [admin] \\ ]".into()),
            ip: Some("2001:db8::1".into()),
            request_id: None,
        },
        "auth.sign_in",
        Some("x\n<13>1 2025-01-01T00:00:00Z evil beffroi - auth.sign_in - forged".into()),
        "success",
        serde_json::json!({ "login": "a\u{2028}b\r\nc", "method": "password" }),
    )
    .await
    .unwrap();
    append(&app, 5).await;

    let messages = receive(&mut rx, 5).await;
    let entries = stored(&app).await;
    assert_eq!(entries.len(), 5);
    for (m, e) in messages.iter().zip(&entries) {
        if e.seq == 4 {
            continue;
        }
        assert_matches(m, e);
    }
    // The hostile entry is one message, its values intact but for the line break.
    let hostile = &messages[3];
    assert_eq!(hostile.seq(), 4);
    assert_eq!(hostile.pri, 85, "a success is a notice");
    assert_eq!(hostile.params["actor"], "Eve \"the\" [admin] \\ ]");
    assert_eq!(
        hostile.params["target"],
        "x\u{fffd}<13>1 2025-01-01T00:00:00Z evil beffroi - auth.sign_in - forged"
    );
    assert!(!hostile.params.contains_key("actor_id"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&hostile.msg).unwrap(),
        serde_json::json!({ "login": "a\u{2028}b\r\nc", "method": "password" })
    );
    assert!(!hostile.msg.contains('\u{2028}') && !hostile.msg.contains('\n'));
    assert!(drain(&mut rx, Duration::from_millis(300)).await.is_empty());

    wait_for_progress(&app, 5).await;
    let metrics = app
        .client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("beffroi_audit_forwarded_total 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("beffroi_audit_forward_backlog 0\n"),
        "{metrics}"
    );
}

async fn a_collector_down_at_first_gets_everything_from_seq_1(backend: Backend) {
    let port = free_port().await;
    let app = spawn_forwarding(
        backend,
        syslog_section("tcp", &format!("127.0.0.1:{port}"), ""),
    )
    .await;
    app.create_admin("alice", "a long enough password").await;
    let client = app.client();
    // Sign-ins are refused and audited, and answered, while nothing listens. (Bounds are
    // generous for a busy machine: a request waiting on the collector would never end.)
    for _ in 0..2 {
        let started = Instant::now();
        let r = app.sign_in(&client, "alice", "wrong password!").await;
        assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    for n in 3..=6 {
        append(&app, n).await;
    }
    let started = Instant::now();
    let r = client.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(last_seq(&app).await, 0, "nothing was delivered");

    // The collector comes up: every entry arrives, from the first, in order.
    let (_collector, mut rx) = tcp_collector_on(port).await;
    let entries = stored(&app).await;
    assert!(entries.len() >= 6);
    let messages = receive(&mut rx, entries.len()).await;
    for (m, e) in messages.iter().zip(&entries) {
        assert_matches(m, e);
    }
    // …then new entries, live.
    append(&app, 7).await;
    append(&app, 8).await;
    let live = receive(&mut rx, 2).await;
    let n = entries.len() as u64;
    assert_eq!(
        live.iter().map(Message::seq).collect::<Vec<_>>(),
        [n + 1, n + 2]
    );
    wait_for_progress(&app, i64::try_from(n + 2).unwrap()).await;
}

async fn a_collector_killed_mid_stream_loses_nothing(backend: Backend) {
    const TOTAL: usize = 60;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (collector, mut rx) = tcp_collector(listener);
    // A longer poll interval: a batch counts as delivered once the connection was still open
    // that long after it was written.
    let app = spawn_forwarding(
        backend,
        syslog_section("tcp", &format!("127.0.0.1:{port}"), "")
            .replace("poll_interval_ms = 50", "poll_interval_ms = 200"),
    )
    .await;
    let audit = app.server.state.audit.clone();
    let appender = tokio::spawn(async move {
        for n in 1..=TOTAL {
            record_alone(
                &audit,
                &actor(n),
                "auth.sign_in_failure",
                None,
                "denied",
                serde_json::json!({ "n": n }),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });

    let first = receive(&mut rx, 10).await;
    collector.abort();
    let _ = collector.await;
    let mut seen: Vec<u64> = first.iter().map(Message::seq).collect();
    seen.extend(
        drain(&mut rx, Duration::ZERO)
            .await
            .iter()
            .map(|t| parse(t).seq()),
    );
    // Down for a while, as entries keep coming.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_collector, mut rx) = tcp_collector_on(port).await;
    appender.await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut again = Vec::new();
    while !(1..=TOTAL as u64).all(|s| seen.contains(&s) || again.contains(&s)) {
        assert!(
            Instant::now() < deadline,
            "missing entries; before the crash {seen:?}, after {again:?}"
        );
        for text in drain(&mut rx, Duration::from_millis(100)).await {
            again.push(parse(&text).seq());
        }
    }
    // After the restart, the stream resumes at or before the first entry the crash lost, in
    // order, without gaps.
    let resumed_at = again[0];
    assert!(resumed_at <= seen.iter().max().unwrap() + 1);
    assert_eq!(
        again,
        (resumed_at..=TOTAL as u64).collect::<Vec<_>>(),
        "in order, once each after the restart"
    );
    wait_for_progress(&app, TOTAL as i64).await;
}

/// A CA and a certificate for `siem.test` it signed, as PEM files in `dir`; returns
/// (CA file, server config).
fn test_pki(dir: &Path, tag: &str) -> (PathBuf, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Test SIEM CA {tag}"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["siem.test".to_owned()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let ca_file = dir.join(format!("ca-{tag}.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server =
        rustls::ServerConfig::builder_with_provider(Arc::new(beffroi::tls::crypto_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .unwrap();
    (ca_file, Arc::new(server))
}

/// A TLS collector: handshakes that fail are counted, not fatal.
fn tls_collector(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> (
    JoinHandle<()>,
    UnboundedReceiver<String>,
    UnboundedReceiver<()>,
) {
    let (tx, rx) = unbounded_channel();
    let (failed_tx, failed_rx) = unbounded_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            match acceptor.accept(tcp).await {
                Ok(tls) => read_frames(tls, &tx).await,
                Err(_) => {
                    let _ = failed_tx.send(());
                }
            }
        }
    });
    (task, rx, failed_rx)
}

async fn tls_needs_the_collectors_authority(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, server_config) = test_pki(dir.path(), "right");
    let (other_ca, _) = test_pki(dir.path(), "other");

    // The collector's own CA: entries arrive over TLS.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_collector, mut rx, _) = tls_collector(listener, server_config.clone());
    let app = spawn_forwarding(
        backend,
        syslog_section(
            "tls",
            &format!("127.0.0.1:{port}"),
            &format!(
                "ca_file = \"{}\"\nserver_name = \"siem.test\"\n",
                ca_file.display()
            ),
        ),
    )
    .await;
    append(&app, 1).await;
    append(&app, 2).await;
    let messages = receive(&mut rx, 2).await;
    for (m, e) in messages.iter().zip(&stored(&app).await) {
        assert_matches(m, e);
    }
    wait_for_progress(&app, 2).await;

    // Another CA: the handshake fails, nothing is sent, progress stays where it was.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_collector, mut rx, mut refused) = tls_collector(listener, server_config);
    let wrong = spawn_forwarding(
        backend,
        syslog_section(
            "tls",
            &format!("127.0.0.1:{port}"),
            &format!(
                "ca_file = \"{}\"\nserver_name = \"siem.test\"\n",
                other_ca.display()
            ),
        ),
    )
    .await;
    append(&wrong, 1).await;
    tokio::time::timeout(Duration::from_secs(10), refused.recv())
        .await
        .expect("the forwarder never tried")
        .unwrap();
    assert!(drain(&mut rx, Duration::from_millis(1500)).await.is_empty());
    assert_eq!(last_seq(&wrong).await, 0);
}

async fn local_datagram_and_stream_sockets(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();

    // A datagram socket, /dev/log style: one message per datagram, no framing.
    let path = dir.path().join("log.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let app = spawn_forwarding(
        backend,
        syslog_section("unix", &path.display().to_string(), ""),
    )
    .await;
    for n in 1..=3 {
        append(&app, n).await;
    }
    let entries = stored(&app).await;
    let mut buffer = vec![0u8; 65536];
    for e in &entries {
        let len = tokio::time::timeout(Duration::from_secs(20), socket.recv(&mut buffer))
            .await
            .expect("no datagram")
            .unwrap();
        let text = std::str::from_utf8(&buffer[..len]).unwrap();
        assert!(text.starts_with("<84>1 "), "{text}");
        assert_matches(&parse(text), e);
    }
    wait_for_progress(&app, 3).await;

    // A stream socket (rsyslog imptcp path=), octet-counted like TCP.
    let path = dir.path().join("stream.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, mut rx) = unbounded_channel();
    let _collector = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            read_frames(stream, &tx).await;
        }
    });
    let app = spawn_forwarding(
        backend,
        syslog_section("unix-stream", &path.display().to_string(), ""),
    )
    .await;
    append(&app, 1).await;
    append(&app, 2).await;
    let messages = receive(&mut rx, 2).await;
    for (m, e) in messages.iter().zip(&stored(&app).await) {
        assert_matches(m, e);
    }
}

/// Two nodes on one PostgreSQL database: the second waits while the first forwards, then
/// takes over from the first one's progress when it stops.
async fn one_node_forwards_at_a_time(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // SQLite is one node.
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_collector, mut rx) = tcp_collector(listener);
    let section = syslog_section("tcp", &format!("127.0.0.1:{port}"), "");
    let app = spawn_forwarding(backend, section.clone()).await;
    append(&app, 1).await;
    receive(&mut rx, 1).await;
    wait_for_progress(&app, 1).await;

    // A second node with the same configuration, on the same database.
    let second =
        beffroi::audit::forward::Forwarder::from_config(app.config.audit.syslog.as_ref().unwrap())
            .unwrap();
    let db = app.db().clone();
    let second = tokio::spawn(second.run(db, beffroi::http::metrics::Metrics::default()));
    for n in 2..=4 {
        append(&app, n).await;
    }
    let messages = receive(&mut rx, 3).await;
    assert_eq!(
        messages.iter().map(Message::seq).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    wait_for_progress(&app, 4).await;
    assert!(
        drain(&mut rx, Duration::from_millis(500)).await.is_empty(),
        "each entry once: the second node stands by"
    );

    // The first node stops: the second takes over where it left off.
    let TestApp { server, _db, .. } = app;
    let audit = beffroi::audit::appender::GroupAppender::spawn(server.state.db.clone());
    server.shutdown().await;
    record_alone(
        &audit,
        &actor(5),
        "auth.sign_in_failure",
        None,
        "denied",
        serde_json::json!({}),
    )
    .await
    .unwrap();
    let taken_over = receive(&mut rx, 1).await;
    assert_eq!(taken_over[0].seq(), 5);
    let seqs: BTreeSet<u64> = drain(&mut rx, Duration::from_millis(300))
        .await
        .iter()
        .map(|t| parse(t).seq())
        .collect();
    assert!(seqs.is_empty(), "{seqs:?}");
    second.abort();
}

/// `beffroi check-config` loads the CA file, names the key when it cannot, and tries the
/// collector without failing when it is merely down.
#[test]
fn check_config_checks_the_syslog_section() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, _) = test_pki(dir.path(), "check");
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |section: &str| {
        let config = dir.path().join("beffroi.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n{section}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_beffroi"))
            .env_remove("BEFFROI_CONFIG")
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let tls = |ca: &Path| {
        format!(
            "[audit.syslog]\ntransport = \"tls\"\naddress = \"127.0.0.1:{closed_port}\"\n\
             server_name = \"siem.test\"\nca_file = \"{}\"\n",
            ca.display()
        )
    };

    let (ok, out, err) = run(&tls(&ca_file));
    assert!(ok, "{out}{err}");
    assert!(out.contains("audit.syslog.ca_file"), "{out}");
    assert!(
        out.contains(&format!(
            "note audit log forwarding: cannot connect to tls 127.0.0.1:{closed_port}"
        )),
        "{out}"
    );

    // A collector whose certificate another authority signed: an error, since nothing would
    // ever be sent.
    let (_, server_config) = test_pki(dir.path(), "collector");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (_task, _rx, mut refused) =
                tls_collector(TcpListener::from_std(listener).unwrap(), server_config);
            let _ = refused.recv().await;
        });
    });
    let section = tls(&ca_file).replace(&format!(":{closed_port}"), &format!(":{port}"));
    let (ok, out, err) = run(&section);
    assert!(!ok, "{out}");
    assert!(
        err.contains("does not verify against audit.syslog.ca_file"),
        "{err}"
    );

    let (ok, _, err) = run(&tls(&not_pem));
    assert!(!ok);
    assert!(err.contains("audit.syslog.ca_file:"), "{err}");
    let (ok, _, err) = run(&tls(&dir.path().join("missing.pem")));
    assert!(!ok);
    assert!(err.contains("audit.syslog.ca_file:"), "{err}");
    let (ok, _, err) = run("[audit.syslog]\ntransport = \"tcp\"\naddress = \"nowhere\"\n");
    assert!(!ok);
    assert!(err.contains("audit.syslog.address:"), "{err}");
}
