//! Spaces and their pages through HTTP, on both backends: no space, page or attachment reaches
//! an agent outside its audience (a property-style test against a plain Rust model), members'
//! roles are enforced, Markdown cannot carry script, attachments are checked by type and size
//! and served safely, administrators manage but do not read private spaces, and every change
//! is in the audit log.

use std::collections::{BTreeMap, BTreeSet};

use beffroi::accounts::Role;
use beffroi::audience::Rule;
use beffroi::blobs::{BlobStore, MediaType};
use beffroi::directory::structure::{self, Placement};
use beffroi::spaces::pages::{self, Author, PageInput};
use beffroi::spaces::{self, NewSpace, SpaceRole, Visibility};
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{
    Backend, Options, TestApp, audit_entries, details, spawn_app, spawn_app_with,
};

mod approval;

both_backends!(
    nothing_leaks_outside_its_audience,
    member_roles_are_enforced,
    administrators_manage_but_do_not_read_private_spaces,
    markdown_cannot_carry_script,
    attachments_are_checked_and_served_safely,
);

/// A small deterministic generator (xorshift64*), so a failure replays with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf_token(client, "/spaces").await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    client.post(app.url(path)).form(&all).send().await.unwrap()
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> reqwest::Response {
    client.get(app.url(path)).send().await.unwrap()
}

/// The space slugs `/spaces` lists.
fn listed_slugs(body: &str) -> BTreeSet<String> {
    body.split("href=\"/spaces/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn add_page(
    app: &TestApp,
    space_id: i64,
    slug: &str,
    body: &str,
    audience: &[Rule],
) -> i64 {
    let mut tx = app.db().begin().await.unwrap();
    let id = pages::create_page(
        &mut tx,
        space_id,
        &PageInput {
            title: slug.to_uppercase(),
            slug: slug.to_owned(),
            body: body.to_owned(),
            parent_id: None,
            audience: audience.iter().map(Rule::key).collect(),
        },
        &Author {
            account_id: None,
            name: "test",
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn attach(app: &TestApp, page_id: i64, text: &str) -> i64 {
    let blob = BlobStore::in_data_dir(&app.data_dir)
        .put(text.as_bytes().to_vec(), MediaType::Text)
        .await
        .unwrap();
    let mut tx = app.db().begin().await.unwrap();
    let id = pages::add_attachment(&mut tx, page_id, &blob, "note.txt", None, false)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

struct ModelAgent {
    client: reqwest::Client,
    id: i64,
    keys: BTreeSet<String>,
}

struct ModelSpace {
    slug: String,
    public: bool,
    audience: Vec<String>,
    members: BTreeMap<i64, SpaceRole>,
    /// (page slug, audience, attachment id)
    pages: Vec<(String, Vec<String>, i64)>,
}

impl ModelSpace {
    fn role(&self, agent: &ModelAgent) -> Option<SpaceRole> {
        if let Some(role) = self.members.get(&agent.id) {
            return Some(*role);
        }
        (self.public && self.audience.iter().any(|k| agent.keys.contains(k)))
            .then_some(SpaceRole::Reader)
    }

    fn sees_page(&self, agent: &ModelAgent, audience: &[String]) -> bool {
        match self.role(agent) {
            None => false,
            Some(role) if role >= SpaceRole::Editor => true,
            Some(_) => audience.is_empty() || audience.iter().any(|k| agent.keys.contains(k)),
        }
    }
}

async fn nothing_leaks_outside_its_audience(backend: Backend) {
    // Several hundred requests from one address: above the default rate limit.
    let app = spawn_app_with(
        backend,
        Options {
            extra: "[security]\nrequests_per_second = 1000\nrequest_burst = 5000\n".into(),
            ..Options::default()
        },
    )
    .await;
    let db = app.db();
    let mut rng = Rng(0x5eed_0007 ^ backend as u64);

    // The organisation: a department tree (d1 > d2 > d3, and d4), two sites, three groups.
    let d1 = structure::create_department(db, "D1", None).await.unwrap();
    let d2 = structure::create_department(db, "D2", Some(d1))
        .await
        .unwrap();
    let d3 = structure::create_department(db, "D3", Some(d2))
        .await
        .unwrap();
    let d4 = structure::create_department(db, "D4", None).await.unwrap();
    let parents: BTreeMap<i64, Option<i64>> =
        [(d1, None), (d2, Some(d1)), (d3, Some(d2)), (d4, None)].into();
    let s1 = structure::create_site(db, "S1", None).await.unwrap();
    let s2 = structure::create_site(db, "S2", None).await.unwrap();
    let mut groups = Vec::new();
    for name in ["g1", "g2", "g3"] {
        let id: i64 = beffroi::with_db!(db, pool => sqlx::query_scalar(
            "INSERT INTO groups (name, source, created_at) VALUES ($1, 'local', 0) RETURNING id"
        ).bind(name).fetch_one(pool).await.unwrap());
        groups.push(id);
    }
    let mut rule_pool = vec![
        Rule::Everyone,
        Rule::Site(s1),
        Rule::Site(s2),
        Rule::Role(Role::Editor),
    ];
    rule_pool.extend(groups.iter().map(|g| Rule::Group(*g)));
    rule_pool.extend([d1, d2, d3, d4].map(Rule::Department));

    // Agents with random memberships; the model works out their keys independently.
    let mut agents = Vec::new();
    for n in 0..6 {
        let editor = rng.chance(30);
        let roles: &[Role] = if editor {
            &[Role::Agent, Role::Editor]
        } else {
            &[Role::Agent]
        };
        let (client, id) = app.signed_in_as(&format!("agent{n}"), roles).await;
        let mut keys: BTreeSet<String> = ["everyone".to_owned(), "role:agent".to_owned()].into();
        if editor {
            keys.insert("role:editor".into());
        }
        for g in &groups {
            if rng.chance(40) {
                beffroi::with_db!(db, pool => sqlx::query(
                    "INSERT INTO account_groups (account_id, group_id) VALUES ($1, $2)"
                ).bind(id).bind(*g).execute(pool).await.map(|_| ()).unwrap());
                keys.insert(format!("group:{g}"));
            }
        }
        let department = rng.chance(70).then(|| rng.pick(&[d1, d2, d3, d4]));
        let site = rng.chance(70).then(|| rng.pick(&[s1, s2]));
        let mut up = department;
        while let Some(d) = up {
            keys.insert(format!("department:{d}"));
            up = parents[&d];
        }
        if let Some(s) = site {
            keys.insert(format!("site:{s}"));
        }
        structure::place_agent(
            db,
            id,
            &Placement {
                department_id: department,
                site_id: site,
                ..Placement::default()
            },
        )
        .await
        .unwrap();
        agents.push(ModelAgent { client, id, keys });
    }

    // Spaces with random visibility, audiences, members and narrowed pages.
    let mut model = Vec::new();
    for n in 0..8 {
        let slug = format!("espace-{n}");
        let public = rng.chance(60);
        let audience: BTreeSet<Rule> = (0..1 + rng.below(2))
            .map(|_| rng.pick(&rule_pool))
            .collect();
        let audience: Vec<Rule> = audience.into_iter().collect();
        let id = spaces::create_space(
            db,
            &NewSpace {
                slug: &slug,
                name: &slug,
                description: "",
                visibility: if public {
                    Visibility::Public
                } else {
                    Visibility::Private
                },
                approval_required: false,
                audience: &audience,
            },
        )
        .await
        .unwrap();
        let mut members = BTreeMap::new();
        for agent in &agents {
            if rng.chance(25) {
                let role = rng.pick(&SpaceRole::ALL);
                spaces::set_member(db, id, agent.id, role).await.unwrap();
                members.insert(agent.id, role);
            }
        }
        let mut page_list = Vec::new();
        for p in 0..3 {
            let page_audience: Vec<Rule> = if rng.chance(35) {
                Vec::new()
            } else {
                let set: BTreeSet<Rule> = (0..1 + rng.below(2))
                    .map(|_| rng.pick(&rule_pool))
                    .collect();
                set.into_iter().collect()
            };
            let page_slug = format!("page-{p}");
            let page_id = add_page(&app, id, &page_slug, "Texte", &page_audience).await;
            let file = attach(&app, page_id, &format!("pièce {n}-{p}")).await;
            page_list.push((
                page_slug,
                page_audience.iter().map(Rule::key).collect(),
                file,
            ));
        }
        model.push(ModelSpace {
            slug,
            public,
            audience: audience.iter().map(Rule::key).collect(),
            members,
            pages: page_list,
        });
    }

    let mut checked = 0;
    for agent in &agents {
        let listed = listed_slugs(
            &get(&app, &agent.client, "/spaces")
                .await
                .text()
                .await
                .unwrap(),
        );
        let expected: BTreeSet<String> = model
            .iter()
            .filter(|s| s.role(agent).is_some())
            .map(|s| s.slug.clone())
            .collect();
        assert_eq!(listed, expected, "agent {} keys {:?}", agent.id, agent.keys);
        for space in &model {
            let home = get(&app, &agent.client, &format!("/spaces/{}", space.slug)).await;
            let open = space.role(agent).is_some();
            assert_eq!(
                home.status(),
                if open {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                }
            );
            let home_body = home.text().await.unwrap();
            for (page, audience, file) in &space.pages {
                let visible = space.sees_page(agent, audience);
                let expected = if visible {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                let base = format!("/spaces/{}/pages/{page}", space.slug);
                assert_eq!(
                    get(&app, &agent.client, &base).await.status(),
                    expected,
                    "{base} for agent {} ({:?}), page audience {audience:?}",
                    agent.id,
                    agent.keys
                );
                for path in [
                    format!("{base}/files/{file}"),
                    format!("{base}/history"),
                    format!("{base}/versions/1"),
                ] {
                    assert_eq!(
                        get(&app, &agent.client, &path).await.status(),
                        expected,
                        "{path}"
                    );
                }
                // The home page lists exactly the visible pages.
                assert_eq!(
                    home_body.contains(&format!("{base}\"")),
                    visible,
                    "{base} listed"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6 * 8 * 3);
    // The random draw exercised both outcomes.
    let opened = agents
        .iter()
        .flat_map(|a| model.iter().map(move |s| s.role(a).is_some()))
        .filter(|o| *o)
        .count();
    assert!(
        opened > 0 && opened < 48,
        "degenerate draw: {opened} of 48 open"
    );
}

pub(crate) async fn private_space(app: &TestApp, slug: &str) -> i64 {
    spaces::create_space(
        app.db(),
        &NewSpace {
            slug,
            name: "Projet",
            description: "Un projet",
            visibility: Visibility::Private,
            approval_required: false,
            audience: &[Rule::Everyone],
        },
    )
    .await
    .unwrap()
}

async fn member_roles_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let space = private_space(&app, "projet").await;
    let mut clients = BTreeMap::new();
    for (name, role) in [
        ("reader", SpaceRole::Reader),
        ("contrib", SpaceRole::Contributor),
        ("editor", SpaceRole::Editor),
        ("manager", SpaceRole::Manager),
    ] {
        let (client, id) = app.signed_in_as(name, &[Role::Agent]).await;
        spaces::set_member(app.db(), space, id, role).await.unwrap();
        clients.insert(name, (client, id));
    }
    let page = [
        ("title", "Compte rendu"),
        ("slug", "compte-rendu"),
        ("body", "# Réunion"),
    ];

    // A reader cannot create or edit.
    let reader = &clients["reader"].0;
    assert_eq!(
        post_form(&app, reader, "/spaces/projet/pages", &page)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&app, reader, "/spaces/projet/new-page").await.status(),
        StatusCode::FORBIDDEN
    );
    // A contributor creates, then edits; the history keeps both versions.
    let contrib = &clients["contrib"].0;
    assert_eq!(
        post_form(&app, contrib, "/spaces/projet/pages", &page)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let edited = [
        ("title", "Compte rendu"),
        ("slug", "compte-rendu"),
        ("body", "# Réunion du lundi"),
    ];
    assert_eq!(
        post_form(
            &app,
            contrib,
            "/spaces/projet/pages/compte-rendu/edit",
            &edited
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post_form(
            &app,
            reader,
            "/spaces/projet/pages/compte-rendu/edit",
            &edited
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    let parent_id: i64 = beffroi::with_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT id FROM space_pages WHERE slug = 'compte-rendu'"
    ).fetch_one(pool).await.unwrap());
    let parent_id = parent_id.to_string();
    let history = get(&app, reader, "/spaces/projet/pages/compte-rendu/history")
        .await
        .text()
        .await
        .unwrap();
    assert!(history.contains("/versions/2\"") && history.contains("/versions/1\""));
    let old = get(&app, reader, "/spaces/projet/pages/compte-rendu/versions/1")
        .await
        .text()
        .await
        .unwrap();
    assert!(old.contains("<h1>Réunion</h1>") && !old.contains("lundi"));
    // A sub-page is listed on its parent's page.
    assert_eq!(
        post_form(
            &app,
            contrib,
            "/spaces/projet/pages",
            &[
                ("title", "Annexe"),
                ("body", "Détail"),
                ("parent", &parent_id)
            ]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    let parent_page = get(&app, reader, "/spaces/projet/pages/compte-rendu")
        .await
        .text()
        .await
        .unwrap();
    assert!(parent_page.contains("href=\"/spaces/projet/pages/annexe\""));
    // A contributor cannot delete; an editor can.
    assert_eq!(
        post_form(
            &app,
            contrib,
            "/spaces/projet/pages/compte-rendu/delete",
            &[]
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_form(
            &app,
            &clients["editor"].0,
            "/spaces/projet/pages/compte-rendu/delete",
            &[]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&app, reader, "/spaces/projet/pages/compte-rendu")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Members: only managers manage; the last manager can be neither removed nor demoted.
    let (manager, manager_id) = &clients["manager"];
    let reader_id = clients["reader"].1;
    assert_eq!(
        get(&app, reader, "/spaces/projet/members").await.status(),
        StatusCode::FORBIDDEN
    );
    let remove_self = format!("/spaces/projet/members/{manager_id}/remove");
    assert_eq!(
        post_form(&app, manager, &remove_self, &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
    let demote_self = format!("/spaces/projet/members/{manager_id}/role");
    assert_eq!(
        post_form(&app, manager, &demote_self, &[("role", "editor")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let promote = format!("/spaces/projet/members/{reader_id}/role");
    assert_eq!(
        post_form(&app, manager, &promote, &[("role", "manager")])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    // With a second manager, the first may now leave.
    assert_eq!(
        post_form(&app, manager, &remove_self, &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&app, manager, "/spaces/projet").await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, newcomer) = app.signed_in_as("newcomer", &[Role::Agent]).await;
    let search = get(&app, reader, "/spaces/projet/members?q=newcom")
        .await
        .text()
        .await
        .unwrap();
    assert!(search.contains(&format!("name=\"account_id\" value=\"{newcomer}\"")));
    let newcomer_text = newcomer.to_string();
    assert_eq!(
        post_form(
            &app,
            reader,
            "/spaces/projet/members",
            &[("account_id", &newcomer_text), ("role", "reader")]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );

    let db = app.db();
    for (action, count) in [
        ("page.create", 2),
        ("page.update", 1),
        ("page.delete", 1),
        ("space.member_role", 1),
        ("space.member_remove", 1),
        ("space.member_add", 1),
    ] {
        assert_eq!(audit_entries(db, action).await.len(), count, "{action}");
    }
    let added = &audit_entries(db, "space.member_add").await[0];
    assert_eq!(
        added.target.as_deref(),
        Some(format!("space:{space}").as_str())
    );
    assert_eq!(details(added)["account"], newcomer);
    assert_eq!(
        details(&audit_entries(db, "page.update").await[0])["version"],
        2
    );
}

async fn administrators_manage_but_do_not_read_private_spaces(backend: Backend) {
    let app = spawn_app(backend).await;
    private_space(&app, "projet").await;
    let (admin, _) = app.signed_in_as("admin", &[Role::Agent, Role::Admin]).await;
    let (agent, agent_id) = app.signed_in_as("agent", &[Role::Agent]).await;
    let site = structure::create_site(app.db(), "Dépôt", None)
        .await
        .unwrap();

    assert_eq!(
        get(&app, &agent, "/admin/spaces").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&app, &agent, "/spaces/projet/members").await.status(),
        StatusCode::NOT_FOUND
    );
    let list = get(&app, &admin, "/admin/spaces")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("/spaces/projet/members"));
    // Administering is not reading: the home and pages stay closed, members and settings open.
    assert_eq!(
        get(&app, &admin, "/spaces/projet").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &admin, "/spaces/projet/members").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &admin, "/spaces/projet/settings").await.status(),
        StatusCode::OK
    );
    let form = get(&app, &admin, "/admin/spaces/new")
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains(&format!("value=\"site:{site}\"")));

    // Creating a space for one site; a forged audience key is refused.
    let site_key = format!("site:{site}");
    let fields = [
        ("slug", "depot"),
        ("name", "Dépôt"),
        ("description", "Espace du dépôt"),
        ("visibility", "public"),
        ("audience", site_key.as_str()),
    ];
    let forged = [
        ("slug", "autre"),
        ("name", "Autre"),
        ("visibility", "public"),
        ("audience", "site:999999"),
    ];
    assert_eq!(
        post_form(&app, &admin, "/admin/spaces", &forged)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_form(&app, &agent, "/admin/spaces", &fields)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_form(&app, &admin, "/admin/spaces", &fields)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post_form(&app, &admin, "/admin/spaces", &fields)
            .await
            .status(),
        StatusCode::BAD_REQUEST,
        "a slug is unique"
    );
    let created = audit_entries(app.db(), "space.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(details(&created[0])["audience"][0], site_key);
    // The agent is not at the site: the space is closed to them until they are placed there.
    assert_eq!(
        get(&app, &agent, "/spaces/depot").await.status(),
        StatusCode::NOT_FOUND
    );
    structure::place_agent(
        app.db(),
        agent_id,
        &Placement {
            site_id: Some(site),
            ..Placement::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        get(&app, &agent, "/spaces/depot").await.status(),
        StatusCode::OK
    );

    // Settings and archiving are audited; an archived space closes to non-members.
    assert_eq!(
        post_form(
            &app,
            &admin,
            "/spaces/depot/settings",
            &[
                ("name", "Dépôt municipal"),
                ("visibility", "public"),
                ("audience", "everyone")
            ]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post_form(&app, &admin, "/spaces/depot/archive", &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&app, &agent, "/spaces/depot").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(audit_entries(app.db(), "space.update").await.len(), 1);
    assert_eq!(audit_entries(app.db(), "space.archive").await.len(), 1);
}

async fn markdown_cannot_carry_script(backend: Backend) {
    let app = spawn_app(backend).await;
    let space = private_space(&app, "projet").await;
    let (client, id) = app.signed_in_as("contrib", &[Role::Agent]).await;
    spaces::set_member(app.db(), space, id, SpaceRole::Contributor)
        .await
        .unwrap();
    let body = "# Titre\n\n<script>alert('xss')</script>\n\n<img src=x onerror=alert(1)>\n\n\
                [lien](javascript:alert(2)) <a href=\"https://example.org\" onclick=\"x()\">ok</a>";
    assert_eq!(
        post_form(
            &app,
            &client,
            "/spaces/projet/pages",
            &[("title", "Piège"), ("body", body)]
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    let page = get(&app, &client, "/spaces/projet/pages/piege").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Titre</h1>"));
    assert!(html.contains("href=\"https://example.org\""));
    for bad in [
        "<script",
        "alert('xss')",
        "onerror",
        "javascript:",
        "onclick",
    ] {
        assert!(!html.contains(bad), "{bad} in the page");
    }
}

pub(crate) fn multipart(token: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "beffroi-test-boundary-7d1f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn attachments_are_checked_and_served_safely(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            server_extra: "max_upload_bytes = 12582912\n".into(),
            ..Options::default()
        },
    )
    .await;
    let space = private_space(&app, "projet").await;
    let (client, id) = app.signed_in_as("contrib", &[Role::Agent]).await;
    let (outsider, _) = app.signed_in_as("outsider", &[Role::Agent]).await;
    spaces::set_member(app.db(), space, id, SpaceRole::Contributor)
        .await
        .unwrap();
    add_page(&app, space, "reglement", "Règlement", &[]).await;
    let upload = |file_name: &'static str, bytes: Vec<u8>| {
        let (client, app) = (&client, &app);
        async move {
            let token = app.csrf_token(client, "/spaces").await;
            let (content_type, body) = multipart(&token, file_name, &bytes);
            client
                .post(app.url("/spaces/projet/pages/reglement/files"))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        upload(
            "règlement intérieur.txt",
            "Article 1 : horaires.\n".as_bytes().to_vec()
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        upload("plan.png", b"\x89PNG\r\n\x1a\n0000".to_vec()).await,
        StatusCode::SEE_OTHER
    );
    // Refused by sniffed type whatever the name says, and by size.
    assert_eq!(
        upload(
            "image.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>".to_vec()
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload("prog.pdf", b"MZ\x90\x00\x03".to_vec()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload("gros.txt", vec![b'a'; 10 * 1024 * 1024 + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let added = audit_entries(app.db(), "page.attachment_add").await;
    assert_eq!(added.len(), 2);
    let text_id = details(&added[0])["attachment"].as_i64().unwrap();
    let png_id = details(&added[1])["attachment"].as_i64().unwrap();

    let text_path = format!("/spaces/projet/pages/reglement/files/{text_id}");
    let response = get(&app, &client, &text_path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "private");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''r%C3%A8glement"),
        "{disposition}"
    );
    assert_eq!(response.text().await.unwrap(), "Article 1 : horaires.\n");
    let png = get(
        &app,
        &client,
        &format!("/spaces/projet/pages/reglement/files/{png_id}"),
    )
    .await;
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(
        png.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    assert_eq!(
        get(&app, &outsider, &text_path).await.status(),
        StatusCode::NOT_FOUND
    );
    // An attachment is reachable only under its own page.
    add_page(&app, space, "autre", "Autre", &[]).await;
    assert_eq!(
        get(
            &app,
            &client,
            &format!("/spaces/projet/pages/autre/files/{text_id}")
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );

    let remove = format!("{text_path}/delete");
    assert_eq!(
        post_form(&app, &client, &remove, &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&app, &client, &text_path).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        audit_entries(app.db(), "page.attachment_remove")
            .await
            .len(),
        1
    );
}
