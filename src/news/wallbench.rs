//! `beffroi bench wall`: how fast the signed-in wall renders with a realistic organisation.
//! It seeds its own SQLite database (agents in a department tree, on sites and in groups;
//! items over two years with mixed audiences, expiries, schedules, pins and mandatory reads),
//! starts the real server, gives sampled agents real sessions and measures real HTTPS
//! requests of `/` at the requested concurrency. A benchmark, not a test: it reports figures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use crate::auth::session::{self, SESSION_COOKIE};
use crate::config::Config;
use crate::db::{Database, DbError, SnapshotPolicy, Tx};
use crate::with_tx;

#[derive(Debug, Clone)]
pub struct WallBench {
    pub agents: u64,
    pub items: u64,
    pub concurrency: usize,
    pub requests: u64,
    pub client: Client,
    pub seconds: u64,
    pub write: Option<PathBuf>,
    /// Where the seeded instance lives between runs (else a temporary directory).
    pub data_dir: Option<PathBuf>,
    /// The server's database pool size; `None`, the server's default.
    pub connections: Option<u32>,
}

/// Who sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Tokio tasks in this process: the load generator competes with the server for the cores.
    Internal,
    /// Debian's `wrk` in its own process (closed loop, one connection per agent).
    Wrk,
}

/// Latency figures of one run.
struct Measured {
    requests: u64,
    seconds: f64,
    /// p50, p95 (absent from wrk), p99, max, in milliseconds.
    p50: f64,
    p95: Option<f64>,
    p99: f64,
    max: f64,
    client: &'static str,
}

/// SplitMix64: reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n.max(1)).unwrap_or(0)
    }
    fn chance(&mut self, per_thousand: u64) -> bool {
        self.next() % 1000 < per_thousand
    }
}

const DIRECTORATES: i64 = 12;
const SERVICES_PER_DIRECTORATE: i64 = 8;
const SITES: i64 = 25;
const GROUPS: i64 = 300;
/// The rest of every seeded item's body (about 2 KB in all).
const BODY_TEXT: &str = "Le service des ressources humaines rappelle les points suivants.\n\n\
### Ce qui change\n\n\
- Les demandes de congés passent désormais par le **portail agent**, rubrique *Mes absences* ; \
les demandes papier restent acceptées jusqu'à la fin du trimestre.\n\
- Les heures supplémentaires sont déclarées avant le 5 du mois suivant, visées par le ou la \
responsable de service.\n\
- Le télétravail reste plafonné à deux jours par semaine, sauf accord particulier inscrit dans \
l'avenant de l'agent.\n\n\
### Calendrier\n\n\
1. Information des encadrants en réunion de direction.\n\
2. Présentation aux équipes lors des réunions de service.\n\
3. Mise en service du nouveau formulaire, avec une permanence d'aide à l'accueil de la mairie \
le mardi et le jeudi de 9 h à 12 h.\n\n\
Pour toute question, écrivez à la cellule RH ou consultez la [page dédiée](/spaces/rh). Les \
agents des sites distants peuvent demander un rendez-vous téléphonique ; les référents de site \
relaient l'information auprès des équipes qui n'ont pas de poste informatique.\n\n\
> Merci à toutes et à tous pour votre attention et votre engagement au service des habitants.\n\n\
La direction générale des services remercie également les agents ayant participé aux groupes \
de travail préparatoires, dont les remarques ont permis de simplifier le circuit de validation \
et de réduire les délais de traitement des demandes.";

/// Agents given a session and sampled by the load.
const SIGNED_IN: i64 = 5_000;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub async fn run(bench: &WallBench) -> Result<String, String> {
    crate::tls::install_crypto_provider();
    let machine_at_start = machine();
    let temp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let root = bench
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = \"{}\"\n{}\n\
         [log]\nlevel = \"warn\"\n\n[security]\nrequests_per_second = 1000000\nrequest_burst = 1000000\n",
        root.join("data").display(),
        bench
            .connections
            .map(|n| format!("max_connections = {n}\n"))
            .unwrap_or_default()
    );
    let config = Config::from_toml(&text, Path::new("bench.toml"), Vec::new()).map_err(err)?;
    let pool = config.storage.pool_size(true);
    let db = Database::connect(&config).await.map_err(err)?;
    db.migrate(&SnapshotPolicy {
        dir: root.join("snapshots"),
        pg_password: None,
        skip: true,
    })
    .await
    .map_err(err)?;

    // A kept instance is reused when it holds the sizes asked for.
    let seeded_marker = root.join(format!("seeded-{}-{}", bench.agents, bench.items));
    let start = Instant::now();
    let mut rng = Rng(0xBEFF_2026);
    let mut tx = db.begin().await.map_err(err)?;
    if seeded_marker.exists() {
        crate::say!("Reusing the instance seeded in {}", root.display());
        crate::with_tx!(&mut tx, conn => sqlx::query("DELETE FROM sessions").execute(conn).await.map(|_| ()))
            .map_err(err)?;
    } else {
        crate::say!(
            "Seeding {} agents and {} news items…",
            bench.agents,
            bench.items
        );
        seed(&mut tx, bench, crate::db::now(), &mut rng)
            .await
            .map_err(err)?;
    }
    let sessions = sessions(&mut tx, &mut rng, bench.agents, &config)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    crate::with_db!(&db, pool => sqlx::query("PRAGMA optimize").execute(pool).await.map(|_| ()))
        .map_err(err)?;
    if bench.data_dir.is_some() {
        std::fs::write(&seeded_marker, b"").map_err(err)?;
    }
    let seeded = start.elapsed().as_secs_f64();

    let cert = config.tls_cert_path();
    let running = crate::server::start(config, db).await.map_err(err)?;
    let base = format!("https://127.0.0.1:{}/", running.addr.port());
    let client = client(&cert)?;

    // Warm-up: caches, connection pools, TLS sessions.
    for token in sessions.iter().take(200) {
        get_wall(&client, &base, token).await?;
    }
    let distinct = sessions.len();
    let measured = match bench.client {
        Client::Internal => internal_client(bench, &client, &base, sessions).await?,
        Client::Wrk => wrk_client(bench, &base, &sessions, temp.path()).await?,
    };
    running.shutdown().await;
    let ms = |v: f64| format!("{v:.1} ms");
    let machine = machine_at_start;
    let command = match bench.client {
        Client::Internal => format!(
            "`beffroi bench wall --agents {} --items {} --concurrency {} --requests {}`",
            bench.agents, bench.items, bench.concurrency, bench.requests
        ),
        Client::Wrk => format!(
            "`beffroi bench wall --agents {} --items {} --concurrency {} --client wrk --seconds {}`",
            bench.agents, bench.items, bench.concurrency, bench.seconds
        ),
    };
    let mut out = format!(
        "## News wall\n\nSigned-in wall (`GET /`, full page: session, audience keys, mandatory reads, \
         one page of 20 items) over real HTTPS, SQLite (WAL) backend, {pool} pool connections. \
         Machine: {machine}. Command: {command} (release build). Load generator: {}. Seeding took \
         {seeded:.0} s.\n\n| measurement | result |\n|---|---|\n",
        measured.client
    );
    out.push_str(&format!(
        "| requests ({} concurrent agents, {} distinct sessions) | {} |\n",
        bench.concurrency, distinct, measured.requests
    ));
    out.push_str(&format!(
        "| throughput | {:.0} pages/s |\n",
        measured.requests as f64 / measured.seconds.max(1e-9)
    ));
    out.push_str(&format!("| p50 | {} |\n", ms(measured.p50)));
    if let Some(p95) = measured.p95 {
        out.push_str(&format!("| p95 | {} |\n", ms(p95)));
    }
    out.push_str(&format!(
        "| p99 | {} |\n| max | {} |\n",
        ms(measured.p99),
        ms(measured.max)
    ));
    if let Some(path) = &bench.write {
        crate::bench::write_section(path, "## News wall", &out)?;
    }
    Ok(out)
}

/// The in-process client: `concurrency` tasks, each sending its share of the requests one
/// after the other with a different agent's session each time.
async fn internal_client(
    bench: &WallBench,
    client: &reqwest::Client,
    base: &str,
    sessions: Vec<String>,
) -> Result<Measured, String> {
    let sessions = Arc::new(sessions);
    let per_task = bench.requests / bench.concurrency.max(1) as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..bench.concurrency.max(1) {
        let (client, base, sessions) = (client.clone(), base.to_owned(), sessions.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(per_task as usize);
            for i in 0..per_task as usize {
                let token = &sessions[(t * 7919 + i * 104_729) % sessions.len()];
                let began = Instant::now();
                get_wall(&client, &base, token).await?;
                times.push(began.elapsed());
            }
            Ok::<Vec<Duration>, String>(times)
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.map_err(err)??);
    }
    let seconds = start.elapsed().as_secs_f64();
    times.sort_unstable();
    let pct = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len().max(1)) - 1;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(Measured {
        requests: times.len() as u64,
        seconds,
        p50: pct(0.50),
        p95: Some(pct(0.95)),
        p99: pct(0.99),
        max: pct(1.0),
        client: "tokio tasks in the server's own process (reqwest + rustls)",
    })
}

/// Debian's `wrk` as a separate process: one connection per agent, each request with another
/// agent's session cookie (a Lua script rotates through them). Any answer but 200 fails the run.
async fn wrk_client(
    bench: &WallBench,
    base: &str,
    sessions: &[String],
    dir: &Path,
) -> Result<Measured, String> {
    let mut script = String::from("local tokens = {\n");
    for token in sessions {
        script.push_str(&format!("  \"{token}\",\n"));
    }
    // setup() runs in wrk's main Lua state once per thread; request() and response() in each
    // thread's own state; done() in the main state again, which reads the threads' counts.
    script.push_str(&format!(
        "}}\n\
         local threads = {{}}\n\
         function setup(thread)\n\
           thread:set(\"first\", #threads * 7919)\n\
           table.insert(threads, thread)\n\
         end\n\
         function init(args) counter = first or 0; bad = 0 end\n\
         function request()\n\
           counter = counter + 104729\n\
           local token = tokens[(counter % #tokens) + 1]\n\
           return wrk.format(\"GET\", \"/\", {{[\"Cookie\"] = \"{SESSION_COOKIE}=\" .. token}})\n\
         end\n\
         function response(status, headers, body)\n\
           if status ~= 200 or not string.find(body, \"news-feed\", 1, true) then bad = bad + 1 end\n\
         end\n\
         function done(summary, latency, requests)\n\
           local wrong = 0\n\
           for _, t in ipairs(threads) do wrong = wrong + t:get(\"bad\") end\n\
           local errors = summary.errors\n\
           io.write(string.format(\"BEFFROI-WRK %d %d %d %d %d %d\\n\", summary.requests, \
             summary.duration, latency:percentile(50), latency:percentile(99), latency.max, \
             wrong + errors.connect + errors.read + errors.write + errors.timeout + errors.status))\n\
         end\n"
    ));
    let path = dir.join("wall.lua");
    std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
    let output = tokio::process::Command::new("wrk")
        .arg("--threads")
        .arg("1")
        .arg("--connections")
        .arg(bench.concurrency.max(1).to_string())
        .arg("--duration")
        .arg(format!("{}s", bench.seconds.max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--script")
        .arg(&path)
        .arg(base)
        .output()
        .await
        .map_err(|e| format!("could not run wrk (Debian package `wrk`): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let figures: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BEFFROI-WRK "))
        .ok_or_else(|| format!("wrk printed no figures: {stdout}"))?
        .split_whitespace()
        .map(|v| v.parse::<f64>().map_err(err))
        .collect::<Result<_, _>>()?;
    let [requests, duration_us, p50_us, p99_us, max_us, errors, ..] = figures[..] else {
        return Err(format!("wrk figures not understood: {stdout}"));
    };
    if errors > 0.0 {
        return Err(format!("wrk saw {errors} failed requests: {stdout}"));
    }
    Ok(Measured {
        requests: requests as u64,
        seconds: duration_us / 1e6,
        p50: p50_us / 1000.0,
        p95: None,
        p99: p99_us / 1000.0,
        max: max_us / 1000.0,
        client: "Debian's wrk 4 in a separate process (1 thread, OpenSSL)",
    })
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    // The machine is shared: the load average says how much of it the benchmark had.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    format!("{cpus} cores, load average {load} when the run started")
}

fn client(cert: &Path) -> Result<reqwest::Client, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).map_err(err)? {
        roots.add(c.map_err(err)?).map_err(err)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::crypto_provider()))
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .map_err(err)
}

async fn get_wall(client: &reqwest::Client, base: &str, token: &str) -> Result<(), String> {
    let response = client
        .get(base)
        .header(reqwest::header::COOKIE, format!("{SESSION_COOKIE}={token}"))
        .send()
        .await
        .map_err(err)?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("GET / answered {}", response.status()));
    }
    let body = response.text().await.map_err(err)?;
    if !body.contains("news-feed") {
        return Err("GET / did not render the wall".into());
    }
    Ok(())
}

async fn seed(tx: &mut Tx, bench: &WallBench, now: i64, rng: &mut Rng) -> Result<(), DbError> {
    with_tx!(tx, conn => {
        for d in 1..=DIRECTORATES {
            sqlx::query("INSERT INTO departments (id, name, parent_id, created_at) VALUES ($1, $2, NULL, 0)")
                .bind(d).bind(format!("Direction {d}")).execute(&mut *conn).await?;
            for s in 0..SERVICES_PER_DIRECTORATE {
                let id = DIRECTORATES + (d - 1) * SERVICES_PER_DIRECTORATE + s + 1;
                sqlx::query("INSERT INTO departments (id, name, parent_id, created_at) VALUES ($1, $2, $3, 0)")
                    .bind(id).bind(format!("Service {id}")).bind(d).execute(&mut *conn).await?;
            }
        }
        for s in 1..=SITES {
            sqlx::query("INSERT INTO sites (id, name, created_at) VALUES ($1, $2, 0)")
                .bind(s).bind(format!("Site {s}")).execute(&mut *conn).await?;
        }
        for g in 1..=GROUPS {
            sqlx::query("INSERT INTO groups (id, name, source, created_at) VALUES ($1, $2, 'scim', 0)")
                .bind(g).bind(format!("groupe-{g}")).execute(&mut *conn).await?;
        }
        let departments = DIRECTORATES * (1 + SERVICES_PER_DIRECTORATE);
        for a in 1..=i64::try_from(bench.agents).unwrap_or(i64::MAX) {
            sqlx::query("INSERT INTO accounts (id, kind, username, display_name, created_at, updated_at) \
                         VALUES ($1, 'local', $2, $3, 0, 0)")
                .bind(a).bind(format!("agent{a}")).bind(format!("Agent {a}")).execute(&mut *conn).await?;
            sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, 'agent')")
                .bind(a).execute(&mut *conn).await?;
            let department = DIRECTORATES + 1 + rng.below((departments - DIRECTORATES) as u64);
            sqlx::query("INSERT INTO agent_profiles (account_id, department_id, site_id, updated_at) \
                         VALUES ($1, $2, $3, 0)")
                .bind(a).bind(department).bind(1 + rng.below(SITES as u64)).execute(&mut *conn).await?;
            for _ in 0..rng.below(4) {
                sqlx::query("INSERT INTO account_groups (account_id, group_id) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING")
                    .bind(a).bind(1 + rng.below(GROUPS as u64)).execute(&mut *conn).await?;
            }
        }
        sqlx::query("INSERT INTO spaces (id, slug, name, visibility, approval_required, created_at, updated_at) \
                     VALUES (1, 'communication', 'Communication', 'public', FALSE, 0, 0)")
            .execute(&mut *conn).await?;
        sqlx::query("INSERT INTO space_audience (space_id, audience_key) VALUES (1, 'everyone')")
            .execute(&mut *conn).await?;
        let categories = crate::news::CATEGORIES;
        let two_years = 730 * 86_400;
        for n in 1..=i64::try_from(bench.items).unwrap_or(i64::MAX) {
            let scheduled = rng.chance(20);
            let publish_at = if scheduled {
                now + 3600 + rng.below(30 * 86_400)
            } else {
                now - rng.below(two_years)
            };
            let expire_at = rng.chance(400).then(|| publish_at + 30 * 86_400 + rng.below(150 * 86_400));
            let status = if rng.chance(30) { "archived" } else if rng.chance(20) { "draft" } else { "published" };
            let mandatory = rng.chance(5);
            // About 2 KB of Markdown, like a real announcement (headings, lists, links), so
            // that what the wall reads and summarises is realistic.
            let body = format!(
                "## Actualité numéro {n}\n\nTexte de l'actualité, avec quelques phrases pour \
                 ressembler à un vrai message aux agents de la collectivité. {BODY_TEXT}"
            );
            let summary = crate::news::summary_of(&body);
            sqlx::query("INSERT INTO news_items (id, space_id, author_id, title, body, body_sha256, \
                         category, important, pinned, status, publish_at, expire_at, ack_required, \
                         ack_deadline, current_version_id, created_at, updated_at, summary) \
                         VALUES ($1, 1, 1, $2, $3, '', $4, $5, $6, $7, $8, $9, $10, $11, NULL, $8, $8, $12)")
                .bind(n).bind(format!("Actualité {n}")).bind(body)
                .bind(categories[usize::try_from(rng.below(categories.len() as u64)).unwrap_or(0)])
                .bind(rng.chance(50)).bind(rng.chance(2)).bind(status).bind(publish_at)
                .bind(expire_at).bind(mandatory).bind(mandatory.then_some(publish_at + 14 * 86_400))
                .bind(summary)
                .execute(&mut *conn).await?;
            let kind = rng.below(10);
            let keys: Vec<String> = match kind {
                0..=2 => vec!["everyone".into()],
                3 => vec![format!("department:{}", 1 + rng.below(DIRECTORATES as u64))],
                4..=5 => vec![format!("department:{}", DIRECTORATES + 1 + rng.below((departments - DIRECTORATES) as u64))],
                6..=7 => vec![format!("site:{}", 1 + rng.below(SITES as u64))],
                _ => (0..=rng.below(2)).map(|_| format!("group:{}", 1 + rng.below(GROUPS as u64))).collect(),
            };
            for key in keys {
                sqlx::query("INSERT INTO news_audience (news_id, audience_key) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING")
                    .bind(n).bind(key).execute(&mut *conn).await?;
            }
        }
    });
    Ok(())
}

/// Sessions for a sample of agents; returns their cookie tokens.
async fn sessions(
    tx: &mut Tx,
    rng: &mut Rng,
    agents: u64,
    config: &Config,
) -> Result<Vec<String>, String> {
    let timeouts = session::SessionTimeouts {
        idle_secs: i64::try_from(config.session.idle_timeout_minutes * 60).unwrap_or(3600),
        absolute_secs: i64::try_from(config.session.absolute_timeout_hours * 3600)
            .unwrap_or(36_000),
    };
    let mut tokens = Vec::new();
    for _ in 0..SIGNED_IN.min(i64::try_from(agents).unwrap_or(0)) {
        let account = 1 + rng.below(agents);
        let (token, _) = session::create(tx, account, "127.0.0.1", Some("bench"), timeouts)
            .await
            .map_err(err)?;
        tokens.push(token.expose_secret().to_owned());
    }
    Ok(tokens)
}
