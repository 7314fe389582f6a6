//! The demo's news: a `communication` space (public, for everyone, approval required) with
//! `hugo` as editor and the break-glass `admin` as manager, and about fifteen items for various
//! audiences — one pinned, one important, one scheduled, one expired and one mandatory read.
//! Runs at every start of `beffroi demo`: memberships are re-asserted, items written once.

use serde_json::json;

use crate::audience::Rule;
use crate::db::{Database, DbError};
use crate::news::service::sha256_hex;
use crate::news::store::{self, ItemFields};
use crate::security_events::{Actor, record};
use crate::spaces::{self, NewSpace, SpaceRole, Visibility};
use crate::with_db;

const DAY: i64 = 86_400;

/// (title, category, body, audience, days from now it was published, days it lasts, flags)
struct DemoItem {
    title: &'static str,
    category: &'static str,
    body: &'static str,
    audience: Audience,
    published_days_ago: i64,
    lasts_days: Option<i64>,
    pinned: bool,
    important: bool,
    mandatory: bool,
}

#[derive(Clone, Copy)]
enum Audience {
    Everyone,
    TechnicalServices,
    Depot,
    Editors,
}

const ITEMS: &[DemoItem] = &[
    DemoItem {
        title: "Bienvenue sur le nouvel intranet de la commune",
        category: "collectivite",
        body: "Le nouvel intranet remplace l'ancien portail. Vous y trouverez les actualités de la commune, l'annuaire des agents et les espaces des services.\n\nBonne découverte !",
        audience: Audience::Everyone,
        published_days_ago: 20,
        lasts_days: None,
        pinned: true,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Mise à jour du règlement intérieur : lecture obligatoire",
        category: "rh",
        body: "Le règlement intérieur a été mis à jour après l'avis du comité social territorial.\n\n- nouveaux horaires d'ouverture de la mairie ;\n- modalités du télétravail ;\n- règles d'usage des véhicules de service.\n\nMerci de le lire et de confirmer votre lecture.",
        audience: Audience::Everyone,
        published_days_ago: 2,
        lasts_days: None,
        pinned: false,
        important: true,
        mandatory: true,
    },
    DemoItem {
        title: "Alerte : coupure du réseau informatique samedi matin",
        category: "numerique",
        body: "Le réseau sera coupé **samedi de 7 h à 12 h** pour le remplacement des commutateurs de la mairie. Pensez à enregistrer vos documents vendredi soir.",
        audience: Audience::Everyone,
        published_days_ago: 1,
        lasts_days: Some(10),
        pinned: false,
        important: true,
        mandatory: false,
    },
    DemoItem {
        title: "Campagne de vaccination contre la grippe",
        category: "prevention",
        body: "Le service de médecine préventive propose la vaccination antigrippale aux agents volontaires, sur rendez-vous, du 1er au 15 décembre.",
        audience: Audience::Everyone,
        published_days_ago: 3,
        lasts_days: Some(40),
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Arbre de Noël des enfants du personnel",
        category: "evenements",
        body: "L'amicale du personnel organise l'arbre de Noël le mercredi 17 décembre à la salle des fêtes. Inscriptions auprès du secrétariat.",
        audience: Audience::Everyone,
        published_days_ago: 4,
        lasts_days: Some(30),
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Nouvelle balayeuse pour la voirie",
        category: "travaux",
        body: "Une balayeuse électrique rejoint le parc des services techniques. Une formation à sa conduite est prévue la semaine prochaine.",
        audience: Audience::TechnicalServices,
        published_days_ago: 5,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Horaires d'hiver du centre technique municipal",
        category: "travaux",
        body: "À partir du 1er décembre, le centre technique ouvre de 7 h 30 à 16 h 30. Les astreintes de déneigement commencent le même jour.",
        audience: Audience::Depot,
        published_days_ago: 6,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Entretiens professionnels annuels",
        category: "rh",
        body: "La campagne des entretiens professionnels s'ouvre. Votre responsable vous proposera un créneau avant la fin du mois de janvier.",
        audience: Audience::Everyone,
        published_days_ago: 7,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Chèques-vacances : ouverture des demandes",
        category: "action-sociale",
        body: "Les demandes de chèques-vacances sont ouvertes auprès du comité d'action sociale jusqu'au 31 janvier.",
        audience: Audience::Everyone,
        published_days_ago: 8,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Travaux de rénovation de la salle du conseil",
        category: "travaux",
        body: "La salle du conseil municipal est fermée pour travaux jusqu'à la fin de l'année. Les réunions ont lieu dans la salle polyvalente.",
        audience: Audience::Everyone,
        published_days_ago: 10,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Conseils pour la rédaction des actualités",
        category: "numerique",
        body: "Un titre court, une première phrase qui dit l'essentiel, une image légère : quelques conseils pour des actualités lisibles sur téléphone.",
        audience: Audience::Editors,
        published_days_ago: 11,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Collecte de jouets au profit du Secours populaire",
        category: "action-sociale",
        body: "Un carton de collecte est installé à l'accueil de la mairie jusqu'au 19 décembre.",
        audience: Audience::Everyone,
        published_days_ago: 12,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Exercice d'évacuation incendie",
        category: "prevention",
        body: "Un exercice d'évacuation aura lieu dans les bâtiments administratifs ce mois-ci. Repérez dès maintenant votre point de rassemblement.",
        audience: Audience::Everyone,
        published_days_ago: 14,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Vœux du maire au personnel",
        category: "evenements",
        body: "Le maire présentera ses vœux au personnel communal le vendredi 9 janvier à 17 h, salle des fêtes.",
        audience: Audience::Everyone,
        // Scheduled: appears in three days.
        published_days_ago: -3,
        lasts_days: None,
        pinned: false,
        important: false,
        mandatory: false,
    },
    DemoItem {
        title: "Fermeture estivale de la médiathèque",
        category: "collectivite",
        body: "La médiathèque était fermée du 1er au 15 août.",
        audience: Audience::Everyone,
        // Expired: no longer on any wall.
        published_days_ago: 120,
        lasts_days: Some(30),
        pinned: false,
        important: false,
        mandatory: false,
    },
];

async fn account_id(db: &Database, login: &str) -> Result<Option<i64>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM accounts WHERE kind = 'local' AND username = $1"
    ).bind(login).fetch_optional(pool).await?))
}

async fn department(db: &Database, name: &str) -> Result<i64, DbError> {
    let found: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM departments WHERE name = $1 ORDER BY id LIMIT 1"
    ).bind(name).fetch_optional(pool).await?);
    match found {
        Some(id) => Ok(id),
        None => crate::directory::structure::create_department(db, name, None).await,
    }
}

async fn site(db: &Database, name: &str) -> Result<i64, DbError> {
    let found: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM sites WHERE name = $1"
    ).bind(name).fetch_optional(pool).await?);
    match found {
        Some(id) => Ok(id),
        None => crate::directory::structure::create_site(db, name, None).await,
    }
}

/// Seeds the demo's news (needs the demo accounts: call it after they exist).
pub async fn seed(db: &Database) -> Result<(), String> {
    seed_inner(db).await.map_err(|e| e.to_string())
}

async fn seed_inner(db: &Database) -> Result<(), DbError> {
    let space = match store::space_id_by_slug(db, "communication").await? {
        Some(id) => id,
        None => {
            spaces::create_space(
                db,
                &NewSpace {
                    slug: "communication",
                    name: "Communication interne",
                    description: "Les actualités de la commune pour tous les agents.",
                    visibility: Visibility::Public,
                    approval_required: true,
                    audience: &[Rule::Everyone],
                },
            )
            .await?
        }
    };
    let hugo = account_id(db, crate::demo::DEMO_EDITOR).await?;
    if let Some(hugo) = hugo {
        spaces::set_member(db, space, hugo, SpaceRole::Editor).await?;
    }
    if let Some(admin) = account_id(db, "admin").await? {
        spaces::set_member(db, space, admin, SpaceRole::Manager).await?;
    }
    let existing: i64 = with_db!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM news_items WHERE space_id = $1"
    ).bind(space).fetch_one(pool).await?);
    if existing > 0 {
        return Ok(());
    }
    let technical = department(db, "Services techniques").await?;
    let depot = site(db, "Centre technique municipal").await?;
    let Some(author) = hugo else {
        return Ok(());
    };
    let now = crate::db::now();
    let actor = Actor::console();
    let mut tx = db.begin().await?;
    // Oldest first, so that ids follow publication order like real use.
    for item in ITEMS.iter().rev() {
        let publish_at = now - item.published_days_ago * DAY;
        let fields = ItemFields {
            title: item.title.to_owned(),
            body: item.body.to_owned(),
            body_sha256: sha256_hex(item.body),
            summary: crate::news::summary_of(item.body),
            category: item.category.to_owned(),
            important: item.important,
            pinned: item.pinned,
            publish_at,
            expire_at: item.lasts_days.map(|d| publish_at + d * DAY),
            ack_required: item.mandatory,
            ack_deadline: item.mandatory.then_some(now + 14 * DAY),
        };
        let id = store::insert_item(&mut tx, space, author, &fields, "published", now).await?;
        let version = store::insert_version(
            &mut tx,
            id,
            &fields,
            (author, "Hugo Bernard"),
            "create",
            now,
        )
        .await?;
        let key = match item.audience {
            Audience::Everyone => Rule::Everyone.key(),
            Audience::TechnicalServices => Rule::Department(technical).key(),
            Audience::Depot => Rule::Site(depot).key(),
            Audience::Editors => Rule::Role(crate::accounts::Role::Editor).key(),
        };
        store::set_audience(&mut tx, id, std::slice::from_ref(&key)).await?;
        record(
            &mut tx,
            &actor,
            "news.create",
            Some(format!("news:{id}")),
            "success",
            json!({ "space_id": space, "title": item.title, "status": "published",
                    "version_id": version, "body_sha256": fields.body_sha256,
                    "audience": [key], "publish_at": publish_at,
                    "ack_required": item.mandatory, "demo": true }),
        )
        .await?;
    }
    tx.commit().await
}
