//! The news wall and mandatory reads, through HTTP as agents and editors use them: audience
//! filtering never leaks an item (property-style, over random memberships), scheduling and
//! expiry follow the injected clock, approval, receipts across minor and material edits, the
//! receipts dashboard and its CSV, reminders, and image access control.

use beffroi::accounts::Role;
use beffroi::audience::AgentAudience;
use beffroi::directory::structure::{self, Placement};
use beffroi::spaces::{self, NewSpace, SpaceRole, Visibility};
use secrecy::ExposeSecret;

use crate::both_backends;
use crate::helpers::{
    Backend, Options, TestApp, audit_entries, details, spawn_app, spawn_app_with,
};

/// A small deterministic generator (SplitMix64), so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A multipart/form-data body, as a browser sends the news form.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----beffroi-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"image.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts the news form at `path` (`/news/new` or `/news/{id}/edit`).
async fn post_news(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> reqwest::Response {
    let token = app.csrf_token(client, "/").await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    let (content_type, body) = multipart(&all, file);
    client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Creates an item through the form and returns its id (from the redirect). Shared with the
/// other test modules that need an item made the way editors make them.
pub(crate) async fn create_news(
    app: &TestApp,
    client: &reqwest::Client,
    space_id: i64,
    fields: &[(&str, &str)],
) -> i64 {
    let space = space_id.to_string();
    let mut all = vec![("space", space.as_str()), ("category", "collectivite")];
    all.extend_from_slice(fields);
    let response = post_news(app, client, "/news/new", &all, None).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location
        .strip_prefix("/news/")
        .and_then(|rest| rest.split('?').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected redirect {location}"))
}

async fn text(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn status(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// The ids of the items listed in the wall's feed, following its pages.
async fn wall_ids(app: &TestApp, client: &reqwest::Client) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut path = "/".to_owned();
    loop {
        let page = text(client, app.url(&path)).await;
        for part in page.split("id=\"news-title-").skip(1) {
            ids.push(part.split('"').next().unwrap().parse().unwrap());
        }
        match page.split("href=\"/?after=").nth(1) {
            Some(rest) => path = format!("/?after={}", rest.split('"').next().unwrap()),
            None => return ids,
        }
    }
}

/// The version id offered by the first "J'ai lu ce message" form of a page.
fn shown_version(page: &str) -> String {
    page.split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no acknowledgement form in {page}"))
        .to_owned()
}

async fn create_space(app: &TestApp, slug: &str, approval_required: bool) -> i64 {
    spaces::create_space(
        app.db(),
        &NewSpace {
            slug,
            name: slug,
            description: "",
            visibility: Visibility::Public,
            approval_required,
            audience: &[beffroi::audience::Rule::Everyone],
        },
    )
    .await
    .unwrap()
}

/// A client with a session minted directly (no password hashing), for many agents at once.
async fn session_for(app: &TestApp, account_id: i64) -> reqwest::Client {
    let mut tx = app.db().begin().await.unwrap();
    let (token, _) = beffroi::auth::session::create(
        &mut tx,
        account_id,
        "127.0.0.1",
        None,
        app.server.state.timeouts,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!(
            "{}={}",
            beffroi::auth::session::SESSION_COOKIE,
            token.expose_secret()
        )
        .parse()
        .unwrap(),
    );
    headers.insert(reqwest::header::ORIGIN, app.base.parse().unwrap());
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::helpers::client_tls(&app.cert_path()))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn insert_account(app: &TestApp, login: &str, roles: &[Role]) -> i64 {
    let now = beffroi::db::now();
    let id: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "INSERT INTO accounts (kind, username, display_name, created_at, updated_at) \
         VALUES ('local', $1, $1, $2, $2) RETURNING id"
    ).bind(login).bind(now).fetch_one(pool).await.unwrap());
    for role in roles {
        beffroi::with_db!(app.db(), pool => sqlx::query(
            "INSERT INTO account_roles (account_id, role) VALUES ($1, $2)"
        ).bind(id).bind(role.as_str()).execute(pool).await.map(|_| ()).unwrap());
    }
    id
}

/// The clock, frozen at a whole minute (forms carry minutes).
fn freeze_clock(app: &TestApp) -> i64 {
    let t0 = beffroi::db::now() / 60 * 60;
    app.server.state.clock.set(t0);
    t0
}

/// A `datetime-local` value for `t`, in the default zone (Europe/Paris) as the form reads it.
fn at(t: i64) -> String {
    beffroi::timefmt::OrgZone::default().input_value(t)
}

async fn audience_filtering_never_leaks_an_item(backend: Backend) {
    // Hundreds of requests from one address: above the per-address limit, which is not what
    // this test is about.
    let options = Options {
        extra: "[security]\nrequests_per_second = 10000\nrequest_burst = 10000\n".into(),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let db = app.db();
    let t0 = freeze_clock(&app);
    let mut rng = Rng(0x5EED_0007);

    // The organisation: groups, a department tree, sites.
    let mut groups = Vec::new();
    for name in ["informatique", "cadres", "astreinte", "syndicat"] {
        let id: i64 = beffroi::with_db!(db, pool => sqlx::query_scalar(
            "INSERT INTO groups (name, source, created_at) VALUES ($1, 'local', 0) RETURNING id"
        ).bind(name).fetch_one(pool).await.unwrap());
        groups.push(id);
    }
    let mut departments: Vec<(i64, Option<i64>)> = Vec::new();
    for root in ["Direction générale", "Services techniques"] {
        let r = structure::create_department(db, root, None).await.unwrap();
        departments.push((r, None));
        for child in ["Atelier", "Bureau"] {
            let c = structure::create_department(db, child, Some(r))
                .await
                .unwrap();
            departments.push((c, Some(r)));
        }
    }
    let mut sites = Vec::new();
    for name in ["Mairie", "Centre technique", "Médiathèque"] {
        sites.push(structure::create_site(db, name, None).await.unwrap());
    }

    // Agents with random memberships; the expected audience keys computed in plain Rust.
    struct Agent {
        id: i64,
        keys: Vec<String>,
        disabled: bool,
    }
    let mut agents = Vec::new();
    for i in 0..10 {
        let editor = rng.chance(30);
        let roles: &[Role] = if editor {
            &[Role::Agent, Role::Editor]
        } else {
            &[Role::Agent]
        };
        let id = insert_account(&app, &format!("agent{i}"), roles).await;
        let mut keys = vec!["everyone".to_owned()];
        keys.extend(roles.iter().map(|r| format!("role:{}", r.as_str())));
        for g in &groups {
            if rng.chance(35) {
                beffroi::with_db!(db, pool => sqlx::query(
                    "INSERT INTO account_groups (account_id, group_id) VALUES ($1, $2)"
                ).bind(id).bind(g).execute(pool).await.map(|_| ()).unwrap());
                keys.push(format!("group:{g}"));
            }
        }
        let department = rng
            .chance(80)
            .then(|| departments[rng.below(departments.len() as u64) as usize]);
        let site = rng
            .chance(70)
            .then(|| sites[rng.below(sites.len() as u64) as usize]);
        if let Some((d, parent)) = department {
            keys.push(format!("department:{d}"));
            if let Some(p) = parent {
                keys.push(format!("department:{p}"));
            }
        }
        if let Some(s) = site {
            keys.push(format!("site:{s}"));
        }
        structure::place_agent(
            db,
            id,
            &Placement {
                department_id: department.map(|d| d.0),
                site_id: site,
                ..Placement::default()
            },
        )
        .await
        .unwrap();
        let disabled = i == 9;
        if disabled {
            beffroi::with_db!(db, pool => sqlx::query("UPDATE accounts SET disabled = TRUE WHERE id = $1")
                .bind(id).execute(pool).await.map(|_| ()).unwrap());
        }
        agents.push(Agent { id, keys, disabled });
    }

    // Items with random audiences, states and publication windows, written by an admin.
    let (admin, _) = app
        .signed_in_as("redaction", &[Role::Agent, Role::Admin])
        .await;
    let space = create_space(&app, "communication", false).await;
    let mut all_keys: Vec<String> = vec!["everyone".into(), "role:editor".into()];
    all_keys.extend(groups.iter().map(|g| format!("group:{g}")));
    all_keys.extend(departments.iter().map(|d| format!("department:{}", d.0)));
    all_keys.extend(sites.iter().map(|s| format!("site:{s}")));
    struct Expect {
        id: i64,
        live: bool,
        audience: Vec<String>,
    }
    let mut items = Vec::new();
    for i in 0..28 {
        let mut audience: Vec<String> = Vec::new();
        for _ in 0..=rng.below(2) {
            // "everyone" is rare, so that most items are for some agents only.
            let key = if rng.chance(8) {
                "everyone".to_owned()
            } else {
                all_keys[1 + rng.below(all_keys.len() as u64 - 1) as usize].clone()
            };
            if !audience.contains(&key) {
                audience.push(key);
            }
        }
        let draft = rng.chance(10);
        let (publish_at, expire_at) = match rng.below(5) {
            0 => (t0 + 3600, None),          // scheduled
            1 => (t0 - 7200, Some(t0 - 60)), // expired
            2 => (t0 - 600, Some(t0 + 600)), // live, expiring soon
            _ => (t0 - 60 * rng.below(1000) as i64, None),
        };
        let title = format!("Actualité {i}");
        let publish = at(publish_at);
        let expire = expire_at.map(at).unwrap_or_default();
        let pinned = if rng.chance(15) { "1" } else { "" };
        let mut fields = vec![
            ("title", title.as_str()),
            ("body", "Texte de l'actualité."),
            ("publish_at", publish.as_str()),
            ("expire_at", expire.as_str()),
            ("intent", if draft { "draft" } else { "publish" }),
        ];
        if !pinned.is_empty() {
            fields.push(("pinned", pinned));
        }
        for key in &audience {
            fields.push(("audience", key.as_str()));
        }
        let id = create_news(&app, &admin, space, &fields).await;
        let live = !draft && publish_at <= t0 && expire_at.is_none_or(|e| e > t0);
        items.push(Expect { id, live, audience });
    }

    for agent in &agents {
        let allowed: Vec<i64> = items
            .iter()
            .filter(|item| {
                !agent.disabled && item.live && item.audience.iter().any(|k| agent.keys.contains(k))
            })
            .map(|item| item.id)
            .collect();
        // The query itself, straight from the store.
        let audience = AgentAudience::of_account(db, agent.id).await.unwrap();
        let mut from_store: Vec<i64> =
            beffroi::news::store::wall(db, &audience, agent.id, t0, None, None, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
        from_store.sort_unstable();
        assert_eq!(from_store, allowed, "store wall of agent {}", agent.id);
        // Keyset pages of three, chained, give the same list in the same order.
        let full: Vec<i64> =
            beffroi::news::store::wall(db, &audience, agent.id, t0, None, None, 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
        let mut chained = Vec::new();
        let mut cursor = None;
        loop {
            let page = beffroi::news::store::wall(db, &audience, agent.id, t0, None, cursor, 3)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            cursor = Some(beffroi::news::store::WallCursor {
                pinned: last.pinned,
                publish_at: last.publish_at,
                id: last.id,
            });
            chained.extend(page.iter().map(|r| r.id));
        }
        assert_eq!(chained, full);
        if agent.disabled {
            assert!(audience.is_empty() && from_store.is_empty());
            continue;
        }
        // And through HTTP: the wall's pages, then every item directly.
        let client = session_for(&app, agent.id).await;
        let mut seen = wall_ids(&app, &client).await;
        let shown = seen.clone();
        seen.sort_unstable();
        assert_eq!(
            seen, allowed,
            "wall of agent {} ({:?})",
            agent.id, agent.keys
        );
        // Display order: pinned first, then newest first (ids break ties).
        let order: Vec<(bool, i64)> = {
            let rows = beffroi::news::store::wall(db, &audience, agent.id, t0, None, None, 1000)
                .await
                .unwrap();
            assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), shown);
            rows.iter().map(|r| (r.pinned, r.publish_at)).collect()
        };
        assert!(order.windows(2).all(|w| w[0] >= w[1]), "{order:?}");
        for item in &items {
            let code = status(&client, app.url(&format!("/news/{}", item.id))).await;
            let expected = if allowed.contains(&item.id) { 200 } else { 404 };
            assert_eq!(
                code, expected,
                "GET /news/{} as agent {}",
                item.id, agent.id
            );
        }
    }
}

async fn scheduled_items_appear_and_expire_with_the_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    let t0 = freeze_clock(&app);
    let space = create_space(&app, "communication", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let (agent, _) = app.signed_in_as("camille", &[Role::Agent]).await;

    let later = create_news(
        &app,
        &editor,
        space,
        &[
            ("title", "Fermeture estivale"),
            ("body", "La mairie ferme en août."),
            ("publish_at", &at(t0 + 3600)),
            ("expire_at", &at(t0 + 7200)),
            ("audience", "everyone"),
            ("intent", "publish"),
        ],
    )
    .await;
    let now = create_news(
        &app,
        &editor,
        space,
        &[
            ("title", "Coupure réseau"),
            ("body", "Ce midi."),
            ("expire_at", &at(t0 + 60)),
            ("audience", "everyone"),
            ("intent", "publish"),
        ],
    )
    .await;

    assert_eq!(wall_ids(&app, &agent).await, vec![now]);
    assert_eq!(
        status(&agent, app.url(&format!("/news/{later}"))).await,
        404
    );
    // The editor sees the scheduled item, marked as such.
    let page = text(&editor, app.url(&format!("/news/{later}"))).await;
    assert!(page.contains("Programmée pour le"), "{page}");

    app.server.state.clock.set(t0 + 3600);
    assert_eq!(wall_ids(&app, &agent).await, vec![later]);
    assert_eq!(status(&agent, app.url(&format!("/news/{now}"))).await, 404);

    app.server.state.clock.set(t0 + 7200);
    assert!(wall_ids(&app, &agent).await.is_empty());
    assert_eq!(
        status(&agent, app.url(&format!("/news/{later}"))).await,
        404
    );
}

async fn approval_flow_publishes_only_what_a_manager_approved(backend: Backend) {
    let app = spawn_app(backend).await;
    let space = create_space(&app, "communication", true).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    let (manager, manager_id) = app.signed_in_as("direction", &[Role::Agent]).await;
    let (agent, _) = app.signed_in_as("camille", &[Role::Agent]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    spaces::set_member(app.db(), space, manager_id, SpaceRole::Manager)
        .await
        .unwrap();

    // A plain agent cannot write in the space at all.
    let refused = post_news(
        &app,
        &agent,
        "/news/new",
        &[("space", &space.to_string()), ("title", "x")],
        None,
    )
    .await;
    assert_eq!(refused.status(), 404);

    let fields = |title: &'static str| {
        vec![
            ("title", title),
            ("body", "Le repas des agents aura lieu vendredi."),
            ("audience", "everyone"),
            ("intent", "publish"),
        ]
    };
    let approved = create_news(&app, &editor, space, &fields("Repas des agents")).await;
    let rejected = create_news(&app, &editor, space, &fields("Brouillon maladroit")).await;
    assert!(wall_ids(&app, &agent).await.is_empty());
    assert_eq!(
        status(&agent, app.url(&format!("/news/{approved}"))).await,
        404
    );
    // The editor cannot approve their own item.
    let token = app.csrf_token(&editor, "/").await;
    let response = editor
        .post(app.url(&format!("/news/{approved}/decision")))
        .form(&[("csrf_token", token.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let queue = text(&manager, app.url("/news/pending")).await;
    assert!(queue.contains("Repas des agents") && queue.contains("Brouillon maladroit"));
    let token = app.csrf_token(&manager, "/").await;
    for (id, form) in [
        (approved, vec![("decision", "approve")]),
        (
            rejected,
            vec![("decision", "reject"), ("reason", "Ton à revoir")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf_token", token.as_str()));
        let response = manager
            .post(app.url(&format!("/news/{id}/decision")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
    }
    // A rejection needs a reason.
    let response = manager
        .post(app.url(&format!("/news/{approved}/decision")))
        .form(&[("csrf_token", token.as_str()), ("decision", "reject")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    assert_eq!(wall_ids(&app, &agent).await, vec![approved]);
    let mine = text(&editor, app.url("/news/pending")).await;
    assert!(mine.contains("Ton à revoir"), "{mine}");
    assert!(mine.contains("Refusée"));

    let db = app.db();
    assert_eq!(audit_entries(db, "news.create").await.len(), 2);
    assert_eq!(audit_entries(db, "news.submit").await.len(), 2);
    let approvals = audit_entries(db, "news.approve").await;
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].actor_id, Some(manager_id));
    assert_eq!(
        approvals[0].target.as_deref(),
        Some(&*format!("news:{approved}"))
    );
    let rejections = audit_entries(db, "news.reject").await;
    assert_eq!(details(&rejections[0])["reason"], "Ton à revoir");
}

async fn receipts_survive_minor_edits_and_reset_on_material_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let t0 = freeze_clock(&app);
    let space = create_space(&app, "rh", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let (camille, camille_id) = app.signed_in_as("camille", &[Role::Agent]).await;
    let dominique = insert_account(&app, "=HYPERLINK(\"http://x\")", &[Role::Agent]).await;
    let group: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "INSERT INTO groups (name, source, created_at) VALUES ('Agents RH', 'local', 0) RETURNING id"
    ).fetch_one(pool).await.unwrap());
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "INSERT INTO account_groups (account_id, group_id) VALUES ($1, $3), ($2, $3)"
    ).bind(camille_id).bind(dominique).bind(group).execute(pool).await.map(|_| ()).unwrap());

    let group_key = format!("group:{group}");
    let fields = |body: &'static str, change: &'static str| {
        vec![
            ("category", "rh"),
            ("title", "Nouveau règlement intérieur"),
            ("body", body),
            ("ack_required", "1"),
            ("ack_deadline", "2099-01-31T12:00"),
            ("audience", group_key.as_str()),
            ("intent", "publish"),
            ("change", change),
        ]
    };
    let first = fields("Version 1 du règlement.", "minor");
    let id = create_news(&app, &editor, space, &first).await;

    // Highlighted on camille's wall with its deadline, then acknowledged from it.
    let wall = text(&camille, app.url("/")).await;
    assert!(
        wall.contains("À lire et confirmer") && wall.contains("31 janv. 2099 à 12:00"),
        "{wall}"
    );
    let version = shown_version(&wall);
    let token = app.csrf_token(&camille, "/").await;
    let ack = |version: String| {
        let token = token.clone();
        let camille = camille.clone();
        let url = app.url(&format!("/news/{id}/ack"));
        async move {
            camille
                .post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("version", &version),
                    ("from", "wall"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ack(version.clone()).await, 303);
    assert_eq!(
        ack(version.clone()).await,
        303,
        "a second press is harmless"
    );
    let wall = text(&camille, app.url("/")).await;
    assert!(!wall.contains("À lire et confirmer"), "{wall}");
    let entries = audit_entries(app.db(), "news.acknowledge").await;
    assert_eq!(entries.len(), 1, "one receipt, one entry");
    assert_eq!(entries[0].actor_id, Some(camille_id));
    assert_eq!(
        details(&entries[0])["body_sha256"],
        beffroi::news::service::sha256_hex("Version 1 du règlement.")
    );

    // A minor correction keeps the receipt.
    let minor = fields("Version 1 du règlement, sans coquille.", "minor");
    let edit = post_news(&app, &editor, &format!("/news/{id}/edit"), &minor, None).await;
    assert_eq!(edit.status(), 303);
    let page = text(&camille, app.url(&format!("/news/{id}"))).await;
    assert!(page.contains("Vous avez confirmé la lecture"), "{page}");
    app.server.state.clock.set(t0 + 60);

    // A material change asks again, and keeps the first receipt as history.
    let material = fields("Version 2 : nouveaux horaires.", "material");
    let edit = post_news(&app, &editor, &format!("/news/{id}/edit"), &material, None).await;
    assert_eq!(edit.status(), 303);
    assert_eq!(ack(version).await, 400, "stale version refused");
    let wall = text(&camille, app.url("/")).await;
    assert!(wall.contains("À lire et confirmer"), "{wall}");
    assert_eq!(
        audit_entries(app.db(), "news.receipts_reset").await.len(),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM news_receipts").await,
        1,
        "the first round's receipt is kept"
    );
    assert_eq!(ack(shown_version(&wall)).await, 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM news_receipts").await, 2);
    let history = text(&editor, app.url(&format!("/news/{id}/history"))).await;
    assert!(history.contains("Modification importante") && history.contains("Correction mineure"));

    // The dashboard: camille read, dominique did not; a plain agent may not see it.
    let dashboard = text(&editor, app.url(&format!("/news/{id}/receipts"))).await;
    assert!(dashboard.contains("50 %"), "{dashboard}");
    assert!(dashboard.contains("Agents RH"));
    assert!(dashboard.contains("HYPERLINK"));
    assert_eq!(
        status(&camille, app.url(&format!("/news/{id}/receipts"))).await,
        404
    );
    assert_eq!(
        status(&camille, app.url(&format!("/news/{id}/receipts.csv"))).await,
        404
    );
    let csv = editor
        .get(app.url(&format!("/news/{id}/receipts.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("camille,camille,,,yes,"), "{csv}");
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""),
        "formula neutralised: {csv}"
    );
    assert!(!csv.contains(",=HYPERLINK"));
    assert_eq!(
        audit_entries(app.db(), "news.receipts_export").await.len(),
        1
    );

    // A reminder shows on the wall of those who have not read, not on camille's.
    let token = app.csrf_token(&editor, "/").await;
    let remind = editor
        .post(app.url(&format!("/news/{id}/remind")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(remind.status(), 303);
    let reminders = audit_entries(app.db(), "news.reminder").await;
    assert_eq!(details(&reminders[0])["agents_not_acknowledged"], 1);
    let dominique_client = session_for(&app, dominique).await;
    assert!(
        text(&dominique_client, app.url("/"))
            .await
            .contains(">Rappel<")
    );
    assert!(!text(&camille, app.url("/")).await.contains(">Rappel<"));
}

async fn images_are_served_only_to_readers(backend: Backend) {
    let app = spawn_app(backend).await;
    let space = create_space(&app, "technique", false).await;
    let depot = structure::create_department(app.db(), "Services techniques", None)
        .await
        .unwrap();
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let reader = insert_account(&app, "agent-technique", &[Role::Agent]).await;
    structure::place_agent(
        app.db(),
        reader,
        &Placement {
            department_id: Some(depot),
            ..Placement::default()
        },
    )
    .await
    .unwrap();
    let outsider = insert_account(&app, "agent-accueil", &[Role::Agent]).await;

    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-test-bytes".to_vec();
    let space_text = space.to_string();
    let audience = format!("department:{depot}");
    let fields = [
        ("space", space_text.as_str()),
        ("category", "travaux"),
        ("title", "Nouveau camion"),
        ("body", "Livré ce matin."),
        ("audience", audience.as_str()),
        ("intent", "publish"),
    ];
    // Not an image: refused with a message, nothing stored.
    let refused = post_news(
        &app,
        &editor,
        "/news/new",
        &fields,
        Some(("image", b"<svg></svg>")),
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("pas une image PNG"));
    assert_eq!(app.count("SELECT COUNT(*) FROM news_items").await, 0);

    // An image with neither a text alternative nor "decorative" ticked: refused (RGAA 1.1).
    let refused = post_news(&app, &editor, "/news/new", &fields, Some(("image", &png))).await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Une image doit avoir un texte alternatif")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM news_items").await, 0);

    let alt = "Le camion-benne neuf garé devant le dépôt";
    let with_alt: Vec<(&str, &str)> = fields.iter().copied().chain([("image_alt", alt)]).collect();
    let created = post_news(&app, &editor, "/news/new", &with_alt, Some(("image", &png))).await;
    assert_eq!(created.status(), 303);
    let id: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT id FROM news_items").fetch_one(pool).await.unwrap());
    let reader_client = session_for(&app, reader).await;
    let alt_attribute = format!("alt=\"{alt}\"");
    assert!(
        text(&reader_client, app.url("/"))
            .await
            .contains(&alt_attribute)
    );
    let item_url = app.url(&format!("/news/{id}"));
    assert!(
        text(&reader_client, item_url.clone())
            .await
            .contains(&alt_attribute)
    );
    // Marked decorative on edit, without a new file: the alternative becomes empty.
    let decorative: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .chain([("image_decorative", "1")])
        .collect();
    let edited = post_news(
        &app,
        &editor,
        &format!("/news/{id}/edit"),
        &decorative,
        None,
    )
    .await;
    assert_eq!(edited.status(), 303);
    let page = text(&reader_client, item_url).await;
    assert!(
        page.contains("class=\"news-article__image\" src=\"/news/") && page.contains("alt=\"\">")
    );
    assert!(!page.contains(&alt_attribute));
    let url = app.url(&format!("/news/{id}/image"));
    let response = reader_client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.bytes().await.unwrap().to_vec(), png);
    let outsider_client = session_for(&app, outsider).await;
    assert_eq!(status(&outsider_client, url.clone()).await, 404);
    assert_eq!(
        status(&outsider_client, app.url(&format!("/news/{id}"))).await,
        404
    );
    assert_eq!(status(&outsider_client, app.url("/news/999999")).await, 404);
    assert_eq!(status(&outsider_client, app.url("/news/abc")).await, 404);
    // Signed out: sent to sign in, never the image.
    assert_eq!(status(&app.client(), url).await, 303);
}

/// Unix seconds of a UTC wall-clock time (`2026-03-30T06:00`), independently of the zone code.
fn utc(text: &str) -> i64 {
    let (date, clock) = text.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let c: Vec<i64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from 1970-01-01 to the date (proleptic Gregorian, March-based years).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + c[0] * 3600 + c[1] * 60
}

async fn stored_publish_at(app: &TestApp, id: i64) -> i64 {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT publish_at FROM news_items WHERE id = $1"
    ).bind(id).fetch_one(pool).await.unwrap())
}

async fn news_count(app: &TestApp) -> i64 {
    beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM news_items"
    ).fetch_one(pool).await.unwrap())
}

/// The editor types Paris time, summer and winter; the database keeps the UTC instant; the
/// pages show Paris time again, with the offset in `<time datetime>`.
async fn typed_times_are_paris_time_across_daylight_saving(backend: Backend) {
    let app = spawn_app(backend).await;
    // 1 March 2026, winter time: everything below is scheduled ahead.
    app.server.state.clock.set(utc("2026-03-01T09:00"));
    let space = create_space(&app, "communication", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let (agent, _) = app.signed_in_as("camille", &[Role::Agent]).await;

    // The form says which clock it reads, with the offset of the day.
    let form = text(&editor, app.url("/news/new?space=communication")).await;
    assert!(form.contains("Heure de Paris (UTC+1)"), "{form}");
    assert!(!form.contains("temps universel"), "{form}");

    let item = |title: &'static str, publish_at: &'static str| {
        vec![
            ("title", title),
            ("body", "Texte."),
            ("publish_at", publish_at),
            ("audience", "everyone"),
            ("intent", "publish"),
        ]
    };
    // Summer time (after 29 March): 08:00 in Paris is 06:00 UTC.
    let summer = create_news(&app, &editor, space, &item("Été", "2026-03-30T08:00")).await;
    assert_eq!(
        stored_publish_at(&app, summer).await,
        utc("2026-03-30T06:00")
    );
    // Winter time (before): 08:00 in Paris is 07:00 UTC.
    let winter = create_news(&app, &editor, space, &item("Hiver", "2026-03-27T08:00")).await;
    assert_eq!(
        stored_publish_at(&app, winter).await,
        utc("2026-03-27T07:00")
    );
    // 25 October: 02:30 happens twice; the earlier, still summer time (UTC+2), is taken.
    let fold = create_news(&app, &editor, space, &item("Repli", "2026-10-25T02:30")).await;
    assert_eq!(stored_publish_at(&app, fold).await, utc("2026-10-25T00:30"));

    // Not yet at 05:59 UTC, on the wall at 06:00 UTC (08:00 in Paris).
    app.server.state.clock.set(utc("2026-03-30T05:59"));
    assert!(!wall_ids(&app, &agent).await.contains(&summer));
    app.server.state.clock.set(utc("2026-03-30T06:00"));
    assert!(wall_ids(&app, &agent).await.contains(&summer));

    let wall = text(&agent, app.url("/")).await;
    assert!(
        wall.contains("<time datetime=\"2026-03-30T08:00+02:00\">30 mars 2026 à 08:00</time>"),
        "{wall}"
    );
    assert!(wall.contains("27 mars 2026 à 08:00"), "{wall}");
    let page = text(&agent, app.url(&format!("/news/{summer}"))).await;
    assert!(page.contains("30 mars 2026 à 08:00"), "{page}");
    assert!(!page.contains("(UTC)"), "{page}");
    let english = agent
        .get(app.url(&format!("/news/{winter}")))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        english.contains("datetime=\"2026-03-27T08:00+01:00\">27 Mar 2026, 08:00</time>"),
        "{english}"
    );
    // The edit form gives the typed time back, not the UTC one.
    let edit = text(&editor, app.url(&format!("/news/{fold}/edit"))).await;
    assert!(edit.contains("value=\"2026-10-25T02:30\""), "{edit}");
    // The scheduled item is announced in Paris time.
    let scheduled = text(&editor, app.url(&format!("/news/{fold}"))).await;
    assert!(
        scheduled.contains("Programmée pour le 25 oct. 2026 à 02:30"),
        "{scheduled}"
    );
}

/// A time that does not exist in Paris (the hour skipped on 29 March 2026) is refused with a
/// 400 naming the field, and nothing is stored.
async fn a_time_skipped_by_summer_time_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.server.state.clock.set(utc("2026-03-01T09:00"));
    let space = create_space(&app, "communication", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let space_id = space.to_string();
    for (field, expected) in [
        ("publish_at", "La date de publication tombe dans"),
        ("expire_at", "La date de retrait tombe dans"),
        ("ack_deadline", "La date limite de confirmation tombe dans"),
    ] {
        let fields = [
            ("space", space_id.as_str()),
            ("category", "collectivite"),
            ("title", "Changement d'heure"),
            ("body", "Texte."),
            ("ack_required", "1"),
            ("audience", "everyone"),
            ("intent", "publish"),
            (field, "2026-03-29T02:30"),
        ];
        let response = post_news(&app, &editor, "/news/new", &fields, None).await;
        assert_eq!(response.status(), 400, "{field}");
        let page = response.text().await.unwrap();
        assert!(page.contains(expected), "{field}: {page}");
        assert!(page.contains("heure de Paris"), "{field}: {page}");
        // The typed value is shown again for correction, unchanged.
        assert!(
            page.contains("value=\"2026-03-29T02:30\""),
            "{field}: {page}"
        );
    }
    assert_eq!(news_count(&app).await, 0);
    // Just after the gap is fine: 03:00 summer time is 01:00 UTC.
    let id = create_news(
        &app,
        &editor,
        space,
        &[
            ("title", "Après le changement"),
            ("body", "Texte."),
            ("publish_at", "2026-03-29T03:00"),
            ("audience", "everyone"),
            ("intent", "publish"),
        ],
    )
    .await;
    assert_eq!(stored_publish_at(&app, id).await, utc("2026-03-29T01:00"));
}

/// An overseas organisation: `[locale] timezone = "Pacific/Noumea"` (UTC+11, no DST).
async fn an_overseas_zone_is_used_for_reading_and_showing(backend: Backend) {
    let options = Options {
        extra: "[locale]\ntimezone = \"Pacific/Noumea\"\n".into(),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    app.server.state.clock.set(utc("2026-11-01T00:00"));
    let space = create_space(&app, "communication", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let (agent, _) = app.signed_in_as("camille", &[Role::Agent]).await;
    let form = text(&editor, app.url("/news/new?space=communication")).await;
    assert!(form.contains("Heure de Noumea (UTC+11)"), "{form}");
    let id = create_news(
        &app,
        &editor,
        space,
        &[
            ("title", "Rentrée"),
            ("body", "Texte."),
            ("publish_at", "2026-11-26T08:00"),
            ("audience", "everyone"),
            ("intent", "publish"),
        ],
    )
    .await;
    // 08:00 in Nouméa is 21:00 UTC the day before.
    assert_eq!(stored_publish_at(&app, id).await, utc("2026-11-25T21:00"));
    app.server.state.clock.set(utc("2026-11-25T21:00"));
    let wall = text(&agent, app.url("/")).await;
    assert!(
        wall.contains("<time datetime=\"2026-11-26T08:00+11:00\">26 nov. 2026 à 08:00</time>"),
        "{wall}"
    );
    // Paris's skipped hour is an ordinary hour there.
    let other = create_news(
        &app,
        &editor,
        space,
        &[
            ("title", "Archive"),
            ("body", "Texte."),
            ("publish_at", "2026-03-29T02:30"),
            ("audience", "everyone"),
            ("intent", "publish"),
        ],
    )
    .await;
    assert_eq!(
        stored_publish_at(&app, other).await,
        utc("2026-03-28T15:30")
    );
}

/// The "J'ai lu ce message" forms of a page that return to `from`, by item id, in page order.
fn ack_forms(page: &str, from: &str) -> Vec<i64> {
    page.split("action=\"/news/")
        .skip(1)
        .filter(|form| {
            form.split("</form>")
                .next()
                .is_some_and(|f| f.contains(&format!("name=\"from\" value=\"{from}\"")))
        })
        .map(|form| form.split('/').next().unwrap().parse().unwrap())
        .collect()
}

async fn mandatory_reads_beyond_five_are_one_link_away(backend: Backend) {
    let app = spawn_app(backend).await;
    freeze_clock(&app);
    let space = create_space(&app, "rh", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let (camille, _) = app.signed_in_as("camille", &[Role::Agent]).await;
    // Created latest deadline first, so that ids and deadlines disagree: the order shown must
    // be the deadlines'.
    let mut by_deadline = Vec::new();
    for day in (1..=7).rev() {
        let title = format!("Lecture {day}");
        let deadline = format!("2099-01-0{day}T12:00");
        let id = create_news(
            &app,
            &editor,
            space,
            &[
                ("title", title.as_str()),
                ("body", "À lire."),
                ("ack_required", "1"),
                ("ack_deadline", deadline.as_str()),
                ("audience", "everyone"),
                ("intent", "publish"),
            ],
        )
        .await;
        by_deadline.insert(0, id);
    }

    // The wall: the five earliest deadlines, and a link to the rest.
    let wall = text(&camille, app.url("/")).await;
    assert_eq!(
        ack_forms(&wall, "wall"),
        by_deadline[..5].to_vec(),
        "{wall}"
    );
    assert!(wall.contains("href=\"/news/to-read\""), "{wall}");

    // The full list, each with its form returning there.
    let list = text(&camille, app.url("/news/to-read")).await;
    assert_eq!(ack_forms(&list, "to-read"), by_deadline, "{list}");
    let token = app.csrf_token(&camille, "/news/to-read").await;
    for id in &by_deadline[..2] {
        let version = shown_version(&text(&camille, app.url(&format!("/news/{id}"))).await);
        let response = camille
            .post(app.url(&format!("/news/{id}/ack")))
            .form(&[
                ("csrf_token", token.as_str()),
                ("version", version.as_str()),
                ("from", "to-read"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/news/to-read?done=ack");
    }
    let list = text(&camille, app.url("/news/to-read?done=ack")).await;
    assert_eq!(ack_forms(&list, "to-read"), by_deadline[2..].to_vec());
    assert!(
        list.contains("role=\"status\""),
        "the confirmation is announced: {list}"
    );

    // Five left: all on the wall, and no link.
    let wall = text(&camille, app.url("/")).await;
    assert_eq!(ack_forms(&wall, "wall"), by_deadline[2..].to_vec());
    assert!(!wall.contains("href=\"/news/to-read\""), "{wall}");

    // The list is for signed-in agents only.
    let anonymous = app.client();
    assert_ne!(status(&anonymous, app.url("/news/to-read")).await, 200);
}

async fn wall_summaries_are_stored_and_follow_edits(backend: Backend) {
    let app = spawn_app(backend).await;
    freeze_clock(&app);
    let space = create_space(&app, "communication", false).await;
    let (editor, editor_id) = app.signed_in_as("hugo", &[Role::Agent, Role::Editor]).await;
    spaces::set_member(app.db(), space, editor_id, SpaceRole::Editor)
        .await
        .unwrap();
    let (camille, _) = app.signed_in_as("camille", &[Role::Agent]).await;
    let fields = |body: &'static str| {
        vec![
            ("title", "Fermeture du parking"),
            ("category", "collectivite"),
            ("body", body),
            ("audience", "everyone"),
            ("intent", "publish"),
            ("change", "minor"),
        ]
    };
    let id = create_news(
        &app,
        &editor,
        space,
        &fields("# Travaux\n\nLe parking *Nord* ferme."),
    )
    .await;
    let stored = || async {
        let summary: Option<String> = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
            "SELECT summary FROM news_items WHERE id = $1"
        ).bind(id).fetch_one(pool).await.unwrap());
        summary
    };
    assert_eq!(
        stored().await.as_deref(),
        Some("Travaux Le parking Nord ferme.")
    );
    assert!(
        text(&camille, app.url("/"))
            .await
            .contains("Le parking Nord ferme.")
    );

    // An edit rewrites it; a long body is cut with an ellipsis.
    let long: &'static str = Box::leak("Phrase longue. ".repeat(40).into_boxed_str());
    let edit = post_news(
        &app,
        &editor,
        &format!("/news/{id}/edit"),
        &fields(long),
        None,
    )
    .await;
    assert_eq!(edit.status(), 303);
    let summary = stored().await.unwrap();
    assert_eq!(summary, beffroi::news::summary_of(long));
    assert_eq!(summary.chars().count(), beffroi::news::SUMMARY_CHARS + 1);
    assert!(summary.ends_with('…'));

    // A row from before summaries existed is summarised from its body when shown.
    beffroi::with_db!(app.db(), pool => sqlx::query(
        "UPDATE news_items SET summary = NULL, body = 'Texte **ancien**.' WHERE id = $1"
    ).bind(id).execute(pool).await.map(|_| ()).unwrap());
    let wall = text(&camille, app.url("/")).await;
    assert!(wall.contains("Texte ancien."), "{wall}");
}

both_backends!(
    audience_filtering_never_leaks_an_item,
    scheduled_items_appear_and_expire_with_the_clock,
    approval_flow_publishes_only_what_a_manager_approved,
    receipts_survive_minor_edits_and_reset_on_material_ones,
    images_are_served_only_to_readers,
    mandatory_reads_beyond_five_are_one_link_away,
    wall_summaries_are_stored_and_follow_edits,
    typed_times_are_paris_time_across_daylight_saving,
    a_time_skipped_by_summer_time_is_refused,
    an_overseas_zone_is_used_for_reading_and_showing,
);
