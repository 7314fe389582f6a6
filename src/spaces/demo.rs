//! The demo's spaces: "Ressources humaines" (public, for everyone) with believable HR pages —
//! teleworking rules for everyone plus one page per site, narrowed to that site's agents —,
//! a private project space with a few members, and the depot's own space.
//!
//! Each space is created only when its slug is free, so restarting the demo changes nothing.
//! Departments and sites are looked up by name (the directory's demo may have made them) and
//! created when missing.

use crate::audience::Rule;
use crate::blobs::{BlobStore, MediaType};
use crate::db::{Database, DbError};
use crate::directory::structure;
use crate::with_db;

use super::pages::{self, Author, PageInput};
use super::{NewSpace, SpaceRole, Visibility};

const TOWN_HALL: &str = "Hôtel de ville";
const DEPOT: &str = "Centre technique municipal";
const TECHNICAL_SERVICES: &str = "Services techniques";

async fn site(db: &Database, name: &str) -> Result<i64, DbError> {
    let found: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM sites WHERE name = $1"
    ).bind(name).fetch_optional(pool).await?);
    match found {
        Some(id) => Ok(id),
        None => structure::create_site(db, name, None).await,
    }
}

async fn department(db: &Database, name: &str) -> Result<i64, DbError> {
    let found: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM departments WHERE name = $1 ORDER BY id LIMIT 1"
    ).bind(name).fetch_optional(pool).await?);
    match found {
        Some(id) => Ok(id),
        None => structure::create_department(db, name, None).await,
    }
}

async fn account(db: &Database, login: &str) -> Result<Option<i64>, DbError> {
    Ok(with_db!(db, pool => sqlx::query_scalar(
        "SELECT id FROM accounts WHERE username = $1"
    ).bind(login).fetch_optional(pool).await?))
}

async fn space_exists(db: &Database, slug: &str) -> Result<bool, DbError> {
    Ok(super::store::space_by_slug(db, slug).await?.is_some())
}

const HR: Author<'static> = Author {
    account_id: None,
    name: "Service des ressources humaines",
};

async fn page(
    db: &Database,
    space_id: i64,
    parent_id: Option<i64>,
    title: &str,
    body: &str,
    audience: &[Rule],
) -> Result<i64, DbError> {
    let input = PageInput {
        title: title.to_owned(),
        slug: super::slugify(title),
        body: body.to_owned(),
        parent_id,
        audience: audience.iter().map(Rule::key).collect(),
    };
    let mut tx = db.begin().await?;
    let id = pages::create_page(&mut tx, space_id, &input, &HR).await?;
    tx.commit().await?;
    Ok(id)
}

/// Seeds the demo's spaces; the demo accounts must exist already (for memberships).
pub async fn seed(db: &Database, blobs: &BlobStore) -> Result<(), String> {
    seed_spaces(db, blobs).await.map_err(|e| e.to_string())
}

async fn seed_spaces(db: &Database, blobs: &BlobStore) -> Result<(), DbError> {
    let town_hall = site(db, TOWN_HALL).await?;
    let depot = site(db, DEPOT).await?;
    let technical = department(db, TECHNICAL_SERVICES).await?;
    let camille = account(db, crate::demo::DEMO_AGENT).await?;
    let hugo = account(db, crate::demo::DEMO_EDITOR).await?;

    // Camille works at the depot unless the directory's demo placed her elsewhere.
    if let Some(camille) = camille {
        let placed: Option<i64> = with_db!(db, pool => sqlx::query_scalar(
            "SELECT account_id FROM agent_profiles WHERE account_id = $1"
        ).bind(camille).fetch_optional(pool).await?);
        if placed.is_none() {
            structure::place_agent(
                db,
                camille,
                &structure::Placement {
                    title: Some("Agente des espaces verts".into()),
                    department_id: Some(technical),
                    site_id: Some(depot),
                    manager_id: None,
                },
            )
            .await?;
        }
    }

    if !space_exists(db, "rh").await? {
        let rh = super::create_space(
            db,
            &NewSpace {
                slug: "rh",
                name: "Ressources humaines",
                description: "Règles, démarches et informations du service des ressources humaines.",
                visibility: Visibility::Public,
                approval_required: false,
                audience: &[Rule::Everyone],
            },
        )
        .await?;
        if let Some(hugo) = hugo {
            super::set_member(db, rh, hugo, SpaceRole::Editor).await?;
        }
        let telework = page(db, rh, None, "Télétravail", TELEWORK_GENERAL, &[]).await?;
        page(
            db,
            rh,
            Some(telework),
            "Télétravail au Centre technique municipal",
            TELEWORK_DEPOT,
            &[Rule::Site(depot)],
        )
        .await?;
        page(
            db,
            rh,
            Some(telework),
            "Télétravail à l’Hôtel de ville",
            TELEWORK_TOWN_HALL,
            &[Rule::Site(town_hall)],
        )
        .await?;
        page(db, rh, None, "Congés et RTT", LEAVE, &[]).await?;
        page(db, rh, None, "Formation", TRAINING, &[]).await?;
        page(db, rh, None, "Mutuelle et prévoyance", HEALTH_COVER, &[]).await?;
        let charter = blobs
            .put(CHARTER.as_bytes().to_vec(), MediaType::Text)
            .await
            .map_err(|e| DbError::Snapshot(e.to_string()))?;
        let mut tx = db.begin().await?;
        pages::add_attachment(
            &mut tx,
            telework,
            &charter,
            "charte-teletravail.txt",
            None,
            false,
        )
        .await?;
        tx.commit().await?;
    }

    if !space_exists(db, "projet-mediatheque").await? {
        let project = super::create_space(
            db,
            &NewSpace {
                slug: "projet-mediatheque",
                name: "Projet nouvelle médiathèque",
                description: "Suivi du chantier et des choix d’aménagement de la future médiathèque.",
                visibility: Visibility::Private,
                approval_required: false,
                audience: &[Rule::Everyone],
            },
        )
        .await?;
        if let Some(hugo) = hugo {
            super::set_member(db, project, hugo, SpaceRole::Manager).await?;
        }
        if let Some(camille) = camille {
            super::set_member(db, project, camille, SpaceRole::Contributor).await?;
        }
        page(
            db,
            project,
            None,
            "Calendrier du chantier",
            PROJECT_CALENDAR,
            &[],
        )
        .await?;
    }

    if !space_exists(db, "centre-technique").await? {
        let depot_space = super::create_space(
            db,
            &NewSpace {
                slug: "centre-technique",
                name: "Centre technique municipal",
                description: "L’espace des équipes du centre technique : consignes, astreintes, matériel.",
                visibility: Visibility::Public,
                approval_required: false,
                audience: &[Rule::Site(depot), Rule::Department(technical)],
            },
        )
        .await?;
        page(db, depot_space, None, "Astreintes", ON_CALL, &[]).await?;
    }
    Ok(())
}

const TELEWORK_GENERAL: &str = "\
Le télétravail est ouvert aux agents dont les missions le permettent, après accord écrit de \
leur responsable.

## Principes

- **Deux jours** par semaine au plus, fixés avec votre responsable ;
- une présence sur site d’au moins **trois jours** par semaine ;
- le droit à la déconnexion s’applique : pas de sollicitation en dehors des plages horaires.

## Démarche

1. Remplissez la demande dans le portail RH ;
2. votre responsable donne son avis sous quinze jours ;
3. une convention individuelle est signée pour un an.

Les règles propres à votre site figurent dans les pages ci-dessous. La charte complète est \
jointe à cette page.
";

const TELEWORK_DEPOT: &str = "\
Au **Centre technique municipal**, les missions de terrain (voirie, espaces verts, bâtiments) \
ne sont pas télétravaillables.

- Les agents administratifs du centre peuvent télétravailler **un jour** par semaine ;
- le jour choisi ne peut pas être un jour d’astreinte ;
- le matériel informatique est retiré et rendu à l’accueil du centre.
";

const TELEWORK_TOWN_HALL: &str = "\
À l’**Hôtel de ville**, le télétravail s’organise par service pour garantir l’accueil du public.

- Jusqu’à **deux jours** par semaine ;
- le mardi matin est réservé aux réunions de service, sur site ;
- les postes de l’accueil et de l’état civil suivent un planning tournant.
";

const LEAVE: &str = "\
## Congés annuels

Chaque agent à temps plein dispose de **25 jours** de congés annuels, plus les jours de \
fractionnement le cas échéant.

## RTT

Le nombre de jours de RTT dépend de votre cycle de travail (de 6 à 23 jours par an). Les \
demandes se font dans le portail RH au moins une semaine à l’avance.
";

const TRAINING: &str = "\
Le plan de formation de la commune est publié chaque année en janvier.

- Les formations obligatoires (hygiène et sécurité, habilitations) sont prioritaires ;
- votre compte personnel de formation (CPF) peut financer un projet personnel ;
- les demandes passent par votre responsable puis par le service formation.
";

const HEALTH_COVER: &str = "\
La commune participe à votre **complémentaire santé** labellisée et à votre **prévoyance** \
(maintien de salaire).

La participation est versée chaque mois sur votre fiche de paie, sur présentation de \
l’attestation de votre organisme.
";

const PROJECT_CALENDAR: &str = "\
| Étape | Date prévue |
|---|---|
| Choix de l’architecte | mars |
| Permis de construire | septembre |
| Début des travaux | janvier de l’année suivante |
";

const ON_CALL: &str = "\
Le planning des astreintes est affiché à l’accueil du centre. En cas d’empêchement, prévenez \
votre chef d’équipe au plus tôt et proposez un remplaçant.
";

const CHARTER: &str = "\
Charte du télétravail — Commune de Démo-sur-Loire

1. Le télétravail repose sur le volontariat et la confiance.
2. L'agent en télétravail est joignable aux horaires habituels.
3. Les données de la commune restent sur les outils de la commune.
4. Le télétravail peut être suspendu pour les nécessités du service.
";
