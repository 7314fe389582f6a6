//! The demo organisation for `beffroi demo`: the "Commune de Démo-sur-Loire", with its
//! directorates and services, six sites, about three hundred agents generated deterministically
//! from lists of common French first and last names (no real person), their titles, fictitious
//! phone numbers (ranges ARCEP keeps for fiction), skills, and a complete chain of managers from
//! the director general down. The demo accounts `camille` and `hugo` are placed in it too.
//!
//! Generated agents are single-sign-on accounts without a password: they cannot sign in. The
//! seed runs once: when the general directorate exists, only the demo accounts' placement is
//! checked.

use crate::db::{Database, DbError, Tx, now};
use crate::directory::structure::insert_department;
use crate::with_tx;

/// Sites, by the exact names other features look up.
pub const SITES: [(&str, &str); 6] = [
    (
        "Hôtel de ville",
        "1 place de la Mairie, 49000 Démo-sur-Loire",
    ),
    (
        "Centre technique municipal",
        "12 rue des Ateliers, 49000 Démo-sur-Loire",
    ),
    ("Médiathèque", "3 quai de Loire, 49000 Démo-sur-Loire"),
    (
        "Groupe scolaire des Tilleuls",
        "8 allée des Tilleuls, 49000 Démo-sur-Loire",
    ),
    ("Conservatoire", "5 rue des Musiciens, 49000 Démo-sur-Loire"),
    (
        "Poste de police municipale",
        "2 rue du Beffroi, 49000 Démo-sur-Loire",
    ),
];

/// The general directorate: its presence means the organisation was already seeded.
pub const TOP_DEPARTMENT: &str = "Direction générale des services";

struct Service {
    name: &'static str,
    head_title: &'static str,
    titles: &'static [&'static str],
    skills: &'static [&'static str],
    agents: usize,
}

struct Directorate {
    name: &'static str,
    director_title: &'static str,
    site: usize,
    services: &'static [Service],
}

const DIRECTORATES: &[Directorate] = &[
    Directorate {
        name: TOP_DEPARTMENT,
        director_title: "Directeur général des services|Directrice générale des services",
        site: 0,
        services: &[
            Service {
                name: "Secrétariat général",
                head_title: "Responsable du secrétariat général",
                titles: &[
                    "Assistant de direction|Assistante de direction",
                    "Chargé des assemblées|Chargée des assemblées",
                    "Agent d’accueil",
                ],
                skills: &[
                    "Conseil municipal",
                    "Rédaction administrative",
                    "Accueil du public",
                    "Courrier",
                ],
                agents: 8,
            },
            Service {
                name: "Communication",
                head_title: "Responsable de la communication",
                titles: &[
                    "Chargé de communication|Chargée de communication",
                    "Graphiste",
                    "Community manager",
                ],
                skills: &["Réseaux sociaux", "PAO", "Relations presse", "Photographie"],
                agents: 6,
            },
            Service {
                name: "Affaires juridiques et marchés publics",
                head_title: "Responsable des affaires juridiques",
                titles: &[
                    "Juriste",
                    "Acheteur public|Acheteuse publique",
                    "Assistant marchés",
                ],
                skills: &[
                    "Marchés publics",
                    "Droit administratif",
                    "Contentieux",
                    "Assurances",
                ],
                agents: 6,
            },
        ],
    },
    Directorate {
        name: "Direction des ressources humaines",
        director_title: "Directeur des ressources humaines|Directrice des ressources humaines",
        site: 0,
        services: &[
            Service {
                name: "Carrières et paie",
                head_title: "Responsable carrières et paie",
                titles: &["Gestionnaire paie", "Gestionnaire carrières"],
                skills: &[
                    "Paie",
                    "Statut de la fonction publique territoriale",
                    "Retraites",
                    "CNRACL",
                ],
                agents: 9,
            },
            Service {
                name: "Formation et recrutement",
                head_title: "Responsable formation et recrutement",
                titles: &[
                    "Chargé de recrutement|Chargée de recrutement",
                    "Chargé de formation|Chargée de formation",
                    "Conseiller en prévention|Conseillère en prévention",
                ],
                skills: &[
                    "Recrutement",
                    "Plan de formation",
                    "CNFPT",
                    "Prévention des risques",
                ],
                agents: 7,
            },
        ],
    },
    Directorate {
        name: "Direction des finances",
        director_title: "Directeur des finances|Directrice des finances",
        site: 0,
        services: &[
            Service {
                name: "Comptabilité",
                head_title: "Responsable de la comptabilité",
                titles: &["Gestionnaire comptable", "Comptable"],
                skills: &["Comptabilité publique", "M57", "Mandatement", "Excel"],
                agents: 9,
            },
            Service {
                name: "Budget et contrôle de gestion",
                head_title: "Responsable du budget",
                titles: &[
                    "Contrôleur de gestion|Contrôleuse de gestion",
                    "Chargé du budget|Chargée du budget",
                ],
                skills: &["Prospective financière", "Budget", "Subventions", "Excel"],
                agents: 5,
            },
        ],
    },
    Directorate {
        name: "Direction des services techniques",
        director_title: "Directeur des services techniques|Directrice des services techniques",
        site: 1,
        services: &[
            Service {
                name: "Voirie et réseaux",
                head_title: "Responsable voirie et réseaux",
                titles: &[
                    "Agent de voirie",
                    "Chef d’équipe voirie|Cheffe d’équipe voirie",
                    "Technicien réseaux|Technicienne réseaux",
                ],
                skills: &["Signalisation", "Enrobés", "Éclairage public", "Permis C"],
                agents: 32,
            },
            Service {
                name: "Espaces verts",
                head_title: "Responsable des espaces verts",
                titles: &[
                    "Jardinier|Jardinière",
                    "Élagueur|Élagueuse",
                    "Chef d’équipe espaces verts|Cheffe d’équipe espaces verts",
                ],
                skills: &[
                    "Élagage",
                    "Gestion différenciée",
                    "Arrosage",
                    "Fleurissement",
                ],
                agents: 30,
            },
            Service {
                name: "Bâtiments",
                head_title: "Responsable des bâtiments",
                titles: &[
                    "Électricien|Électricienne",
                    "Plombier|Plombière",
                    "Menuisier|Menuisière",
                    "Peintre",
                ],
                skills: &[
                    "Habilitation électrique",
                    "Plomberie",
                    "Menuiserie",
                    "Accessibilité",
                ],
                agents: 22,
            },
            Service {
                name: "Garage municipal",
                head_title: "Responsable du garage",
                titles: &["Mécanicien|Mécanicienne", "Magasinier|Magasinière"],
                skills: &["Mécanique poids lourds", "Soudure", "Gestion de stock"],
                agents: 8,
            },
        ],
    },
    Directorate {
        name: "Direction de l’éducation et de l’enfance",
        director_title: "Directeur de l’éducation et de l’enfance|Directrice de l’éducation et de l’enfance",
        site: 3,
        services: &[
            Service {
                name: "Écoles et restauration scolaire",
                head_title: "Responsable des écoles",
                titles: &[
                    "ATSEM",
                    "Agent de restauration",
                    "Animateur périscolaire|Animatrice périscolaire",
                ],
                skills: &["Petite enfance", "HACCP", "Animation", "PSC1"],
                agents: 56,
            },
            Service {
                name: "Petite enfance",
                head_title: "Responsable petite enfance",
                titles: &[
                    "Auxiliaire de puériculture",
                    "Éducateur de jeunes enfants|Éducatrice de jeunes enfants",
                ],
                skills: &["Petite enfance", "Accueil des familles", "PSC1"],
                agents: 18,
            },
        ],
    },
    Directorate {
        name: "Direction de la culture",
        director_title: "Directeur de la culture|Directrice de la culture",
        site: 2,
        services: &[
            Service {
                name: "Lecture publique",
                head_title: "Responsable de la médiathèque",
                titles: &[
                    "Bibliothécaire",
                    "Assistant de conservation|Assistante de conservation",
                    "Médiateur numérique|Médiatrice numérique",
                ],
                skills: &[
                    "Catalogage",
                    "Médiation numérique",
                    "Animation lecture",
                    "Fonds patrimoniaux",
                ],
                agents: 14,
            },
            Service {
                name: "Conservatoire",
                head_title: "Directeur du conservatoire|Directrice du conservatoire",
                titles: &[
                    "Professeur de piano|Professeure de piano",
                    "Professeur de violon|Professeure de violon",
                    "Professeur de formation musicale|Professeure de formation musicale",
                ],
                skills: &["Piano", "Violon", "Pédagogie musicale", "Orchestre"],
                agents: 14,
            },
        ],
    },
    Directorate {
        name: "Police municipale",
        director_title: "Chef de la police municipale|Cheffe de la police municipale",
        site: 5,
        services: &[Service {
            name: "Brigade de jour",
            head_title: "Brigadier-chef principal|Brigadière-cheffe principale",
            titles: &[
                "Gardien-brigadier",
                "Agent de surveillance de la voie publique",
            ],
            skills: &["Sécurité routière", "Vidéoprotection", "Médiation", "PSC1"],
            agents: 12,
        }],
    },
    Directorate {
        name: "Direction de l’urbanisme",
        director_title: "Directeur de l’urbanisme|Directrice de l’urbanisme",
        site: 0,
        services: &[
            Service {
                name: "Droit des sols",
                head_title: "Responsable du droit des sols",
                titles: &[
                    "Instructeur des autorisations d’urbanisme|Instructrice des autorisations d’urbanisme",
                    "Agent d’accueil urbanisme",
                ],
                skills: &["Permis de construire", "PLU", "Cadastre"],
                agents: 7,
            },
            Service {
                name: "Aménagement",
                head_title: "Responsable de l’aménagement",
                titles: &[
                    "Chargé d’opérations|Chargée d’opérations",
                    "Dessinateur SIG|Dessinatrice SIG",
                ],
                skills: &["SIG", "Aménagement urbain", "Marchés publics", "AutoCAD"],
                agents: 5,
            },
        ],
    },
];

/// First names, female then male: titles agree with the name they go with.
const FEMALE_NAMES: &[&str] = &[
    "Léa",
    "Nathalie",
    "Sophie",
    "Isabelle",
    "Sandrine",
    "Céline",
    "Julie",
    "Aurélie",
    "Émilie",
    "Claire",
    "Marion",
    "Chloé",
    "Manon",
    "Anne",
    "Valérie",
    "Christine",
    "Élodie",
    "Laure",
    "Agathe",
    "Inès",
    "Pauline",
    "Mathilde",
    "Hélène",
    "Lucie",
    "Margaux",
    "Yasmine",
    "Sarah",
    "Amandine",
    "Gaëlle",
    "Nadia",
];
const MALE_NAMES: &[&str] = &[
    "Nicolas",
    "Julien",
    "Thomas",
    "Sébastien",
    "Stéphane",
    "Christophe",
    "Laurent",
    "David",
    "Olivier",
    "Frédéric",
    "Antoine",
    "Maxime",
    "Romain",
    "Guillaume",
    "Pierre",
    "Vincent",
    "François",
    "Jérôme",
    "Mathieu",
    "Benoît",
    "Damien",
    "Arnaud",
    "Bruno",
    "Yannick",
    "Kevin",
    "Louis",
    "Théo",
    "Karim",
    "Mehdi",
    "Rémi",
    "Loïc",
];

const LAST_NAMES: &[&str] = &[
    "Dubois",
    "Durand",
    "Lefebvre",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
    "Morin",
    "Mathieu",
    "Clément",
    "Gauthier",
    "Dumont",
    "Lopez",
    "Fontaine",
    "Chevalier",
    "Robin",
    "Masson",
    "Sanchez",
    "Gérard",
    "Nguyen",
    "Boyer",
    "Denis",
    "Lemaire",
    "Duval",
    "Joly",
    "Gautier",
    "Roger",
    "Roche",
    "Roy",
    "Noël",
    "Meyer",
    "Lucas",
    "Meunier",
    "Jean",
    "Le Gall",
    "Brunet",
];

/// A small deterministic generator (xorshift64): the same organisation at every start.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        let len = u64::try_from(items.len()).unwrap_or(1).max(1);
        let i = usize::try_from(self.next() % len).unwrap_or(0);
        items.get(i).copied().unwrap_or_default()
    }
}

/// Lower-case ASCII for e-mail addresses ("Éloïse Le Gall" → "eloise.le-gall").
fn ascii_part(name: &str) -> String {
    crate::directory::vcard::file_name(name)
        .trim_end_matches(".vcf")
        .to_owned()
}

struct NewAgent<'a> {
    name: (String, bool),
    title: &'a str,
    department: i64,
    site: i64,
    manager: Option<i64>,
    skills: Vec<&'a str>,
    mobile: bool,
    bio: Option<String>,
}

struct Seeder {
    seq: Sequence,
    used_names: std::collections::BTreeSet<String>,
    count: u32,
}

impl Seeder {
    /// A name not used yet, and whether it is a woman's (for the title's agreement).
    fn name(&mut self) -> (String, bool) {
        loop {
            let female = self.seq.next() % 2 == 0;
            let first = self
                .seq
                .pick(if female { FEMALE_NAMES } else { MALE_NAMES });
            let name = format!("{first} {}", self.seq.pick(LAST_NAMES));
            // The demo's sign-in accounts keep their names to themselves.
            if name != "Camille Martin"
                && name != "Hugo Bernard"
                && self.used_names.insert(name.clone())
            {
                return (name, female);
            }
        }
    }

    fn skills<'a>(&mut self, from: &'a [&'a str]) -> Vec<&'a str> {
        let count = 1 + usize::try_from(self.seq.next() % 3).unwrap_or(0);
        let mut out: Vec<&str> = Vec::new();
        for _ in 0..count {
            let s = self.seq.pick(from);
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    async fn insert(&mut self, tx: &mut Tx, agent: NewAgent<'_>) -> Result<i64, DbError> {
        self.count += 1;
        let n = self.count;
        let (name, female) = agent.name;
        let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
        // "Directeur des finances|Directrice des finances": the form that agrees with the name.
        let title = match agent.title.split_once('|') {
            Some((masculine, feminine)) => {
                if female {
                    feminine
                } else {
                    masculine
                }
            }
            None => agent.title,
        };
        let email = format!(
            "{}.{}@demo-sur-loire.example",
            ascii_part(first),
            ascii_part(last)
        );
        let office = format!("02 99 00 {:02} {:02}", n / 100 % 100, n % 100);
        let mobile = agent
            .mobile
            .then(|| format!("06 39 98 {:02} {:02}", n / 100 % 100, n % 100));
        let time = now();
        let id = with_tx!(tx, conn => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO accounts (kind, display_name, email, disabled, created_at, updated_at, \
                                       issuer, subject) \
                 VALUES ('oidc', $1, $2, FALSE, $3, $3, 'urn:beffroi:demo', $4) RETURNING id",
            )
            .bind(&name).bind(&email).bind(time).bind(format!("demo-agent-{n}"))
            .fetch_one(&mut *conn).await?;
            sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, 'agent')")
                .bind(id).execute(&mut *conn).await?;
            id
        });
        let profile = crate::directory::people::RawProfile {
            title: Some(title.to_owned()),
            department_id: Some(agent.department),
            site_id: Some(agent.site),
            manager_id: agent.manager,
            office_phone: Some(office),
            mobile_phone: mobile,
            bio: agent.bio,
            skills: agent.skills.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        crate::directory::people::save_profile(tx, id, &profile).await?;
        Ok(id)
    }
}

/// Seeds the organisation once, then places the demo accounts if they are not placed yet.
pub async fn seed(db: &Database) -> Result<(), String> {
    seed_inner(db).await.map_err(|e| e.to_string())
}

async fn seed_inner(db: &Database) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let seeded: Option<i64> = with_tx!(&mut tx, conn => sqlx::query_scalar(
        "SELECT id FROM departments WHERE name = $1 AND parent_id IS NULL"
    ).bind(TOP_DEPARTMENT).fetch_optional(conn).await?);
    if seeded.is_none() {
        generate(&mut tx).await?;
    }
    place_demo_accounts(&mut tx).await?;
    tx.commit().await
}

async fn generate(tx: &mut Tx) -> Result<(), DbError> {
    let mut site_ids = Vec::new();
    for (name, address) in SITES {
        let id: i64 = with_tx!(&mut *tx, conn => sqlx::query_scalar(
            "INSERT INTO sites (name, address, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
        ).bind(name).bind(address).bind(now()).fetch_one(conn).await?);
        site_ids.push(id);
    }
    let site = |i: usize| {
        site_ids
            .get(i)
            .or(site_ids.first())
            .copied()
            .unwrap_or_default()
    };
    let mut seeder = Seeder {
        seq: Sequence(0x5eed_d3e0_2026_u64),
        used_names: Default::default(),
        count: 0,
    };
    let mut dgs: Option<i64> = None;
    for (d, directorate) in DIRECTORATES.iter().enumerate() {
        let top = insert_department(tx, directorate.name, None).await?;
        let director_name = seeder.name();
        let director = seeder
            .insert(
                tx,
                NewAgent {
                    bio: Some(format!(
                        "Je dirige « {} ». Mon équipe et moi sommes à votre écoute.",
                        directorate.name
                    )),
                    name: director_name,
                    title: directorate.director_title,
                    department: top,
                    site: site(directorate.site),
                    manager: dgs,
                    skills: vec!["Management", "Conduite de projet"],
                    mobile: true,
                },
            )
            .await?;
        if d == 0 {
            dgs = Some(director);
        }
        for service in directorate.services {
            let dept = insert_department(tx, service.name, Some(top)).await?;
            // Culture and education services sit on their own sites.
            let service_site = match service.name {
                "Conservatoire" => site(4),
                _ => site(directorate.site),
            };
            let head_name = seeder.name();
            let head_skills = seeder.skills(service.skills);
            let head = seeder
                .insert(
                    tx,
                    NewAgent {
                        bio: Some(format!("Je coordonne le service {}.", service.name)),
                        name: head_name,
                        title: service.head_title,
                        department: dept,
                        site: service_site,
                        manager: Some(director),
                        skills: head_skills,
                        mobile: true,
                    },
                )
                .await?;
            for i in 0..service.agents {
                let name = seeder.name();
                let skills = seeder.skills(service.skills);
                let title = seeder.seq.pick(service.titles);
                seeder
                    .insert(
                        tx,
                        NewAgent {
                            name,
                            title,
                            department: dept,
                            site: service_site,
                            manager: Some(head),
                            skills,
                            mobile: i % 3 == 0,
                            bio: None,
                        },
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Camille (an accountant) and Hugo (communication officer), under their service heads.
async fn place_demo_accounts(tx: &mut Tx) -> Result<(), DbError> {
    let placements = [
        (
            crate::demo::DEMO_AGENT,
            "Comptabilité",
            "Gestionnaire comptable",
            "camille.martin",
            &["Comptabilité publique", "M57", "Excel"][..],
        ),
        (
            crate::demo::DEMO_EDITOR,
            "Communication",
            "Chargé de communication",
            "hugo.bernard",
            &["Réseaux sociaux", "Relations presse", "Rédaction web"][..],
        ),
    ];
    for (login, service, title, mail, skills) in placements {
        let account: Option<i64> = with_tx!(&mut *tx, conn => sqlx::query_scalar(
            "SELECT a.id FROM accounts a WHERE a.kind = 'local' AND a.username = $1 \
               AND NOT EXISTS (SELECT 1 FROM agent_profiles p WHERE p.account_id = a.id)"
        ).bind(login).fetch_optional(conn).await?);
        let Some(account) = account else { continue };
        // The service's head is the agent placed there who manages the others.
        let found: Option<(i64, i64, Option<i64>)> = with_tx!(&mut *tx, conn => sqlx::query_as(
            "SELECT d.id, p.account_id, p.site_id FROM departments d \
             JOIN agent_profiles p ON p.department_id = d.id \
             WHERE d.name = $1 AND EXISTS (SELECT 1 FROM agent_profiles r WHERE r.manager_id = p.account_id) \
             ORDER BY p.account_id LIMIT 1"
        ).bind(service).fetch_optional(conn).await?);
        let Some((department, head, site)) = found else {
            continue;
        };
        with_tx!(&mut *tx, conn => sqlx::query("UPDATE accounts SET email = $1 WHERE id = $2")
            .bind(format!("{mail}@demo-sur-loire.example")).bind(account)
            .execute(conn).await.map(|_| ())?);
        let profile = crate::directory::people::RawProfile {
            title: Some(title.to_owned()),
            department_id: Some(department),
            site_id: site,
            manager_id: Some(head),
            office_phone: Some(format!("02 99 00 09 {:02}", account % 100)),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        crate::directory::people::save_profile(tx, account, &profile).await?;
    }
    Ok(())
}
