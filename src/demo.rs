//! `beffroi demo`: a complete instance in one command, for evaluation and for the end-to-end
//! tests. It writes its own configuration and SQLite database under the demo directory, brands
//! the demo organisation, resets the local administrator and prints the URL, the certificate
//! fingerprint and the one-time password.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use secrecy::ExposeSecret;

use crate::accounts::Role;
use crate::branding::legal::{self, LegalPage};
use crate::branding::{Colour, FooterLink, ImageKind, OrganisationName, Palette, service};
use crate::config::Config;
use crate::db::Database;
use crate::security_events::Actor;
use crate::{server, telemetry};

pub const DEMO_ORGANISATION: &str = "Commune de Démo-sur-Loire";

pub async fn run(dir: &Path, listen: SocketAddr) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data_dir = dir.join("data");
    let config_path = dir.join("beffroi.toml");
    let text = format!(
        "# Written by `beffroi demo`; rewritten at each start.\n\
         [server]\nlisten = \"{listen}\"\n\n[storage]\ndata_dir = \"{}\"\n\n[log]\nlevel = \"info\"\n",
        data_dir.display()
    );
    write_private(&config_path, &text)?;
    let config = Config::load(&config_path, std::env::vars()).map_err(|e| e.to_string())?;
    telemetry::init(&config.log.level, config.log.format);
    server::check_file_modes(&config_path, &config).map_err(|e| e.to_string())?;

    let db = Database::connect(&config)
        .await
        .map_err(|e| e.to_string())?;
    db.migrate(&server::snapshot_policy(&config, false).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let password = crate::cli::recover_admin(&config, &db, "admin").await?;
    let mut demo_passwords = Vec::new();
    for (login, display_name, roles) in DEMO_ACCOUNTS {
        let (_, password) = demo_account(&config, &db, login, display_name, roles).await?;
        demo_passwords.push((login, roles, password));
    }
    // After the demo accounts, which the seeded directory, spaces and news name. The directory
    // comes first: spaces and news look its departments and sites up by name.
    seed(&db).await?;
    crate::directory::demo::seed(&db).await?;
    let blobs = crate::blobs::BlobStore::from_config(&config).map_err(|e| e.to_string())?;
    crate::spaces::demo::seed(&db, &blobs).await?;
    crate::news::demo::seed(&db).await?;

    let running = server::start(config, db).await.map_err(|e| e.to_string())?;
    crate::say!();
    crate::say!("Beffroi demo is running.");
    crate::say!("  URL:                     https://{}/", running.addr);
    crate::say!(
        "  Certificate SHA-256:     {}",
        running.certificates.fingerprint()
    );
    crate::say!("  Administrator login:     admin");
    crate::say!("  One-time password:       {}", password.expose_secret());
    for (login, roles, password) in &demo_passwords {
        // "Auditor", "Agent", "Editor": the role that sets the account apart.
        let label = match roles.last() {
            Some(Role::Auditor) => "Auditor",
            Some(Role::Editor) => "Editor",
            _ => "Agent",
        };
        crate::say!("  {:<25}{login}", format!("{label} login:"));
        crate::say!(
            "  {:<25}{}",
            format!("{label} one-time pass.:"),
            password.expose_secret()
        );
    }
    crate::say!("  Data directory:          {}", data_dir.display());
    crate::say!("Stop with Ctrl-C.");
    crate::say!();
    server::wait_for_stop_signal().await;
    running.shutdown().await;
    Ok(())
}

/// The demo's auditor: an agent who may read the audit log, and nothing more.
pub const DEMO_AUDITOR: &str = "auditrice";
/// The demo's agent: no role beyond `agent`.
pub const DEMO_AGENT: &str = "camille";
/// The demo's communication officer: an agent with the `editor` role.
pub const DEMO_EDITOR: &str = "hugo";

/// The demo's sign-in accounts besides the break-glass administrator: (login, display name,
/// roles). Each gets a one-time password at every start.
pub const DEMO_ACCOUNTS: [(&str, &str, &[Role]); 3] = [
    (
        DEMO_AUDITOR,
        "Auditrice de démo",
        &[Role::Agent, Role::Auditor],
    ),
    (DEMO_AGENT, "Camille Martin", &[Role::Agent]),
    (DEMO_EDITOR, "Hugo Bernard", &[Role::Agent, Role::Editor]),
];

/// Creates or resets a demo account with exactly `roles` (never admin unless asked: the
/// break-glass function it reuses grants admin, which is replaced here); returns its account id
/// and one-time password. The role change is on record.
async fn demo_account(
    config: &Config,
    db: &Database,
    login: &str,
    display_name: &str,
    roles: &[Role],
) -> Result<(i64, secrecy::SecretString), String> {
    let password = crate::auth::password::generate_one_time_password()
        .map_err(|e| format!("no randomness available: {e}"))?;
    let hasher = crate::auth::password::PasswordHasher::new(config.security.max_concurrent_hashes)
        .map_err(|e| e.to_string())?;
    let hash = hasher.hash(&password).await.map_err(|e| e.to_string())?;
    let record = async {
        let mut tx = db.begin().await?;
        // The roles as committed (none on the first start), for the record.
        let before: Vec<String> = crate::with_tx!(&mut tx, conn => sqlx::query_scalar(
            "SELECT r.role FROM account_roles r JOIN accounts a ON a.id = r.account_id \
             WHERE a.kind = 'local' AND a.username = $1 ORDER BY r.role"
        ).bind(login).fetch_all(conn).await?);
        let before: Vec<Role> = before.iter().filter_map(|r| Role::parse(r)).collect();
        // A local account with a one-time password, created like the break-glass one, whose
        // administrator role is then replaced by the demo account's roles.
        let (id, _) =
            crate::accounts::upsert_break_glass_admin(&mut tx, login, display_name, &hash).await?;
        crate::with_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM account_roles WHERE account_id = $1")
                .bind(id).execute(&mut *conn).await?;
            for role in roles {
                sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                    .bind(id).bind(role.as_str()).execute(&mut *conn).await?;
            }
        });
        crate::security_events::roles_changed(
            &mut tx,
            &crate::security_events::Actor::console(),
            id,
            "demo",
            &before,
            roles,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    };
    let id = record
        .await
        .map_err(|e: crate::db::DbError| e.to_string())?;
    Ok((id, password))
}

/// The demo organisation's logo, drawn by `scripts/make-demo-logo.py`.
const DEMO_LOGO: &[u8] = include_bytes!("demo-logo.png");

/// The demo's footer links, as RGAA expects them on a public body's site: the built-in legal
/// pages (src/branding/legal.rs), seeded with [`DEMO_LEGAL_PAGES`].
const DEMO_FOOTER: [(&str, &str); 3] = [
    ("Mentions légales", "/mentions-legales"),
    ("Accessibilité : partiellement conforme", "/accessibilite"),
    ("Données personnelles", "/donnees-personnelles"),
];

/// The texts of the demo's legal pages, in French.
const DEMO_LEGAL_PAGES: [(LegalPage, &str); 3] = [
    (
        LegalPage::LegalNotice,
        include_str!("branding/demo/mentions-legales.md"),
    ),
    (
        LegalPage::Accessibility,
        include_str!("branding/demo/accessibilite.md"),
    ),
    (
        LegalPage::PersonalData,
        include_str!("branding/demo/donnees-personnelles.md"),
    ),
];

/// Brands the demo organisation: name, colours, logo and footer links, each change recorded
/// as done from the console (an unchanged branding records nothing). Agents arrive with single
/// sign-on (and its demo identity provider); until then the break-glass administrator is the
/// demo's only account.
pub async fn seed(db: &Database) -> Result<(), String> {
    let colour = |text: &str| Colour::parse(text).ok_or_else(|| format!("bad demo colour {text}"));
    let palette = Palette {
        primary: colour("#1b4f72")?,
        on_primary: colour("#ffffff")?,
        secondary: colour("#e8eef3")?,
        on_secondary: colour("#1b2a36")?,
    };
    if !palette.failures().is_empty() {
        return Err("demo colours below WCAG AA".into());
    }
    let name = OrganisationName::parse(DEMO_ORGANISATION).ok_or("bad demo name")?;
    let actor = Actor::console();
    let footer: Vec<FooterLink> = DEMO_FOOTER
        .iter()
        .map(|(label, url)| FooterLink {
            label: (*label).to_owned(),
            url: (*url).to_owned(),
        })
        .collect();
    let logo = crate::blobs::MediaType::sniff(DEMO_LOGO).ok_or("demo logo is not an image")?;
    async {
        service::update_identity(db, &actor, &name, &palette).await?;
        service::update_footer(db, &actor, &footer).await?;
        for (page, text) in DEMO_LEGAL_PAGES {
            legal::save(db, &actor, page, crate::i18n::Lang::Fr, text.trim()).await?;
        }
        service::set_image(db, &actor, ImageKind::Logo, Some((DEMO_LOGO, logo))).await
    }
    .await
    .map(|_| ())
    .map_err(|e: crate::db::DbError| e.to_string())
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // An existing file keeps its old mode through open(); set it explicitly.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}
