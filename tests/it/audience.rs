//! Audience keys and space access, from the database: department rules reach sub-departments,
//! private spaces admit members only, and a disabled account belongs to no audience.

use beffroi::accounts::Role;
use beffroi::audience::{AgentAudience, Rule};
use beffroi::directory::structure::{self, Placement};
use beffroi::spaces::{self, NewSpace, SpaceRole, Visibility};

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

async fn department_rules_reach_sub_departments_and_private_spaces_members_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db();
    let finances = structure::create_department(db, "Finances", None)
        .await
        .unwrap();
    let accounting = structure::create_department(db, "Comptabilité", Some(finances))
        .await
        .unwrap();
    let depot = structure::create_site(db, "Centre technique", None)
        .await
        .unwrap();
    let (_, clerk) = app.signed_in_as("clerk", &[Role::Agent]).await;
    let (_, outsider) = app.signed_in_as("outsider", &[Role::Agent]).await;
    structure::place_agent(
        db,
        clerk,
        &Placement {
            department_id: Some(accounting),
            site_id: Some(depot),
            ..Placement::default()
        },
    )
    .await
    .unwrap();

    let clerk_audience = AgentAudience::of_account(db, clerk).await.unwrap();
    let keys: Vec<&str> = clerk_audience.keys().collect();
    for expected in [
        Rule::Everyone.key(),
        Rule::Department(finances).key(),
        Rule::Department(accounting).key(),
        Rule::Site(depot).key(),
        Rule::Role(Role::Agent).key(),
    ] {
        assert!(keys.contains(&expected.as_str()), "{expected} in {keys:?}");
    }
    // The keys read with a session (what the pages use) are the same as read on their own,
    // groups included.
    let group: i64 = beffroi::with_db!(db, pool => sqlx::query_scalar(
        "INSERT INTO groups (name, source, created_at) VALUES ('Élus', 'local', 0) RETURNING id"
    ).fetch_one(pool).await.unwrap());
    beffroi::with_db!(db, pool => sqlx::query(
        "INSERT INTO account_groups (account_id, group_id) VALUES ($1, $2)"
    ).bind(clerk).bind(group).execute(pool).await.map(|_| ()).unwrap());
    let clerk_audience = AgentAudience::of_account(db, clerk).await.unwrap();
    assert!(clerk_audience.matches([Rule::Group(group).key().as_str()]));
    let timeouts = app.server.state.timeouts;
    let mut tx = db.begin().await.unwrap();
    let (token, _) = beffroi::auth::session::create(&mut tx, clerk, "127.0.0.1", None, timeouts)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let session = beffroi::auth::session::load(db, &token, timeouts)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.audience, clerk_audience);
    let outsider_audience = AgentAudience::of_account(db, outsider).await.unwrap();
    assert!(!outsider_audience.matches([Rule::Department(finances).key().as_str()]));

    let finance_space = spaces::create_space(
        db,
        &NewSpace {
            slug: "finances",
            name: "Finances",
            description: "",
            visibility: Visibility::Public,
            approval_required: false,
            audience: &[Rule::Department(finances)],
        },
    )
    .await
    .unwrap();
    let project = spaces::create_space(
        db,
        &NewSpace {
            slug: "projet",
            name: "Projet",
            description: "",
            visibility: Visibility::Private,
            approval_required: false,
            audience: &[Rule::Everyone],
        },
    )
    .await
    .unwrap();
    let role = |space, account, audience| async move {
        spaces::role_of(db, space, account, audience).await.unwrap()
    };
    assert_eq!(
        role(finance_space, clerk, &clerk_audience).await,
        Some(SpaceRole::Reader)
    );
    assert_eq!(
        role(finance_space, outsider, &outsider_audience).await,
        None
    );
    // Private: the audience says everyone, yet only members get in.
    assert_eq!(role(project, clerk, &clerk_audience).await, None);
    spaces::set_member(db, project, outsider, SpaceRole::Editor)
        .await
        .unwrap();
    assert_eq!(
        role(project, outsider, &outsider_audience).await,
        Some(SpaceRole::Editor)
    );

    beffroi::with_db!(db, pool => sqlx::query("UPDATE accounts SET disabled = TRUE WHERE id = $1")
        .bind(clerk).execute(pool).await.map(|_| ()).unwrap());
    let disabled = AgentAudience::of_account(db, clerk).await.unwrap();
    assert!(disabled.is_empty());
    assert_eq!(role(finance_space, clerk, &disabled).await, None);
}

both_backends!(department_rules_reach_sub_departments_and_private_spaces_members_only);
