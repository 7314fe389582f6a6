//! The SCIM schemas Beffroi serves (RFC 7643 §4.1 User, §4.2 Group), as data: the attribute
//! table drives what `/Schemas` publishes, which attributes a filter, a PATCH path or an
//! `attributes` parameter may name, their types and case rules, and which are read-only.
//!
//! Only attributes Beffroi really stores are listed. Adding one here without handling it in
//! `resource/` would publish a promise the server does not keep: never do that.

use serde_json::{Map, Value, json};

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// RFC 7643 §4.3: the enterprise User extension. Beffroi keeps `department` and `manager` (in
/// the who's-who, see `crate::directory::provisioning`).
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
}

impl AttrType {
    fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Default,
}

/// One attribute and its characteristics (RFC 7643 §2.2, §7).
#[derive(Debug)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    /// "server" uniqueness (RFC 7643 §7); false means "none".
    pub unique: bool,
    pub description: &'static str,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
}

const fn attr(name: &'static str, kind: AttrType, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        required: false,
        // References are compared exactly (RFC 7643 §2.3.7); other strings are not unless said.
        case_exact: matches!(kind, AttrType::Reference),
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        description,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

impl Attribute {
    /// A sub-attribute by name, compared case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        find_in(self.sub_attributes, name)
    }

    /// The attribute a filter on a multi-valued complex attribute compares when it names no
    /// sub-attribute: its `value` (RFC 7644 §3.4.2.2).
    pub fn value_sub(&self) -> Option<&'static Attribute> {
        self.sub("value")
    }

    fn to_json(&self) -> Value {
        let mut a = Map::new();
        a.insert("name".into(), json!(self.name));
        a.insert("type".into(), json!(self.kind.as_str()));
        a.insert("multiValued".into(), json!(self.multi_valued));
        a.insert("description".into(), json!(self.description));
        a.insert("required".into(), json!(self.required));
        if matches!(
            self.kind,
            AttrType::String | AttrType::Reference | AttrType::DateTime
        ) {
            a.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            a.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if !self.reference_types.is_empty() {
            a.insert("referenceTypes".into(), json!(self.reference_types));
        }
        let mutability = match self.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
        };
        a.insert("mutability".into(), json!(mutability));
        let returned = match self.returned {
            Returned::Always => "always",
            Returned::Default => "default",
        };
        a.insert("returned".into(), json!(returned));
        a.insert(
            "uniqueness".into(),
            json!(if self.unique { "server" } else { "none" }),
        );
        if !self.sub_attributes.is_empty() {
            let subs: Vec<Value> = self.sub_attributes.iter().map(Attribute::to_json).collect();
            a.insert("subAttributes".into(), Value::Array(subs));
        }
        Value::Object(a)
    }
}

fn find_in(list: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    list.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Attributes every resource has (RFC 7643 §3.1). They are not part of a schema's published
/// attribute list, but filters and `attributes` may name them.
static COMMON: &[Attribute] = &[
    Attribute {
        mutability: Mutability::ReadOnly,
        returned: Returned::Always,
        case_exact: true,
        unique: true,
        ..attr("id", AttrType::String, "Identifier assigned by Beffroi.")
    },
    Attribute {
        case_exact: true,
        ..attr(
            "externalId",
            AttrType::String,
            "Identifier assigned by the provisioning client.",
        )
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        sub_attributes: &[
            Attribute {
                mutability: Mutability::ReadOnly,
                case_exact: true,
                ..attr("resourceType", AttrType::String, "User or Group.")
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                ..attr(
                    "created",
                    AttrType::DateTime,
                    "When the resource was created.",
                )
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                ..attr(
                    "lastModified",
                    AttrType::DateTime,
                    "When the resource last changed.",
                )
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                reference_types: &["uri"],
                ..attr("location", AttrType::Reference, "URI of the resource.")
            },
        ],
        ..attr("meta", AttrType::Complex, "Resource metadata.")
    },
];

static USER_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        required: true,
        unique: true,
        ..attr(
            "userName",
            AttrType::String,
            "Unique identifier of the agent, compared case-insensitively. With \
             scim.subject_attribute = \"userName\" it is the agent's OpenID Connect subject.",
        )
    },
    Attribute {
        sub_attributes: &[
            attr(
                "formatted",
                AttrType::String,
                "Full name, formatted for display.",
            ),
            attr("familyName", AttrType::String, "Family name."),
            attr("givenName", AttrType::String, "Given name."),
        ],
        ..attr("name", AttrType::Complex, "The agent's name.")
    },
    attr(
        "displayName",
        AttrType::String,
        "Name shown in the intranet; when absent, the formatted or given and family name.",
    ),
    attr(
        "title",
        AttrType::String,
        "Job title, shown in the who's-who (200 characters at most).",
    ),
    Attribute {
        multi_valued: true,
        sub_attributes: &[
            attr("value", AttrType::String, "E-mail address."),
            Attribute {
                canonical_values: &["work", "home", "other"],
                ..attr("type", AttrType::String, "Kind of address.")
            },
            attr(
                "primary",
                AttrType::Boolean,
                "The address Beffroi uses; at most one.",
            ),
        ],
        ..attr("emails", AttrType::Complex, "E-mail addresses.")
    },
    attr(
        "active",
        AttrType::Boolean,
        "False disables the account and ends its sessions at once.",
    ),
    Attribute {
        multi_valued: true,
        mutability: Mutability::ReadOnly,
        sub_attributes: &[
            Attribute {
                mutability: Mutability::ReadOnly,
                case_exact: true,
                ..attr("value", AttrType::String, "Group id.")
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                reference_types: &["Group"],
                ..attr("$ref", AttrType::Reference, "URI of the group.")
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                ..attr("display", AttrType::String, "Group name.")
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                canonical_values: &["direct"],
                ..attr("type", AttrType::String, "Always direct.")
            },
        ],
        ..attr(
            "groups",
            AttrType::Complex,
            "Groups the agent belongs to (set through Group members).",
        )
    },
];

static GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        required: true,
        unique: true,
        ..attr(
            "displayName",
            AttrType::String,
            "Group name, unique among Beffroi groups; used as an audience.",
        )
    },
    Attribute {
        multi_valued: true,
        sub_attributes: &[
            Attribute {
                mutability: Mutability::Immutable,
                case_exact: true,
                ..attr("value", AttrType::String, "Id of a member User.")
            },
            Attribute {
                mutability: Mutability::Immutable,
                reference_types: &["User"],
                ..attr("$ref", AttrType::Reference, "URI of the member.")
            },
            Attribute {
                mutability: Mutability::Immutable,
                canonical_values: &["User"],
                ..attr("type", AttrType::String, "Always User: groups do not nest.")
            },
        ],
        ..attr("members", AttrType::Complex, "Members of the group.")
    },
];

/// `manager` is accepted and returned (when it names a known User, without a loop) but not
/// published: Beffroi cannot keep a manager id that names no User, and publishing it would
/// promise that it does (scim2-tester checks exactly that).
static ENTERPRISE_USER_ATTRIBUTES: &[Attribute] = &[attr(
    "department",
    AttrType::String,
    "Department of the agent in the who's-who, by name; an unknown name creates it.",
)];

/// A resource type and its schema.
#[derive(Debug)]
pub struct ResourceSchema {
    pub resource_type: &'static str,
    pub endpoint: &'static str,
    pub urn: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
    /// Schema extensions of the resource type (RFC 7643 §6 `schemaExtensions`).
    pub extensions: &'static [&'static str],
}

pub static USER: ResourceSchema = ResourceSchema {
    resource_type: "User",
    endpoint: "/Users",
    urn: USER_URN,
    name: "User",
    description: "An agent: an account that signs in by single sign-on.",
    attributes: USER_ATTRIBUTES,
    extensions: &[ENTERPRISE_USER_URN],
};

pub static GROUP: ResourceSchema = ResourceSchema {
    resource_type: "Group",
    endpoint: "/Groups",
    urn: GROUP_URN,
    name: "Group",
    description: "A group of agents, usable as an audience.",
    attributes: GROUP_ATTRIBUTES,
    extensions: &[],
};

/// Published by `/Schemas` only: an extension is not a resource type of its own.
pub static ENTERPRISE_USER: ResourceSchema = ResourceSchema {
    resource_type: "User",
    endpoint: "/Users",
    urn: ENTERPRISE_USER_URN,
    name: "EnterpriseUser",
    description: "Enterprise User extension: the agent's department and manager.",
    attributes: ENTERPRISE_USER_ATTRIBUTES,
    extensions: &[],
};

pub static RESOURCE_SCHEMAS: [&ResourceSchema; 2] = [&USER, &GROUP];

/// Every schema `/Schemas` describes: the resources' and their extensions'.
pub static ALL_SCHEMAS: [&ResourceSchema; 3] = [&USER, &GROUP, &ENTERPRISE_USER];

impl ResourceSchema {
    /// A top-level attribute (schema or common) by name, case-insensitively.
    pub fn attribute(&'static self, name: &str) -> Option<&'static Attribute> {
        find_in(self.attributes, name).or_else(|| find_in(COMMON, name))
    }

    /// Removes this schema's URN from a fully qualified attribute path
    /// (`urn:…:core:2.0:User:name.givenName` → `name.givenName`; RFC 7644 §3.10). A path
    /// qualified by any other URN names nothing here: `None`.
    pub fn strip_urn<'a>(&self, path: &'a str) -> Option<&'a str> {
        if !path
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            return Some(path);
        }
        let prefix_len = self.urn.len() + 1;
        let head = path.get(..prefix_len)?;
        // `head` ends on a character boundary, but the URN's length may fall inside a
        // multi-byte character of the client's text: no match, rather than a panic.
        let (urn, colon) = head.split_at_checked(self.urn.len())?;
        (urn.eq_ignore_ascii_case(self.urn) && colon == ":").then(|| &path[prefix_len..])
    }

    /// Resolves `attr` or `attr.sub` (optionally URN-qualified) to its attributes.
    pub fn resolve(
        &'static self,
        path: &str,
    ) -> Option<(&'static Attribute, Option<&'static Attribute>)> {
        let path = self.strip_urn(path)?;
        let (head, sub) = match path.split_once('.') {
            Some((h, s)) => (h, Some(s)),
            None => (path, None),
        };
        let attribute = self.attribute(head)?;
        match sub {
            None => Some((attribute, None)),
            Some(s) => Some((attribute, Some(attribute.sub(s)?))),
        }
    }

    /// The `/Schemas/{id}` representation (RFC 7643 §7).
    pub fn schema_json(&self, base: &str) -> Value {
        let attributes: Vec<Value> = self.attributes.iter().map(Attribute::to_json).collect();
        json!({
            "schemas": [SCHEMA_URN],
            "id": self.urn,
            "name": self.name,
            "description": self.description,
            "attributes": attributes,
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base}/Schemas/{}", self.urn),
            },
        })
    }

    /// The `/ResourceTypes/{id}` representation (RFC 7643 §6).
    pub fn resource_type_json(&self, base: &str) -> Value {
        json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": self.resource_type,
            "name": self.resource_type,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.urn,
            "schemaExtensions": self
                .extensions
                .iter()
                .map(|urn| json!({ "schema": urn, "required": false }))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{}", self.resource_type),
            },
        })
    }
}

/// Largest page a list or search returns (`filter.maxResults`, RFC 7643 §5).
pub const MAX_RESULTS: usize = 500;

/// `/ServiceProviderConfig` (RFC 7643 §5): exactly what this server does, nothing more.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_URN],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A static bearer token (RFC 6750 header) configured in scim.token_file.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_case_insensitively_with_or_without_urn() {
        let (a, s) = USER.resolve("NAME.givenname").unwrap();
        assert_eq!((a.name, s.map(|s| s.name)), ("name", Some("givenName")));
        let (a, _) = USER
            .resolve("urn:ietf:params:scim:schemas:core:2.0:User:userName")
            .unwrap();
        assert_eq!(a.name, "userName");
        assert!(
            USER.resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .is_none()
        );
        assert!(USER.resolve("meta.lastModified").is_some());
        assert!(USER.resolve("password").is_none());
        assert!(GROUP.resolve("userName").is_none());
    }

    #[test]
    fn published_schema_lists_only_implemented_attributes() {
        let names: Vec<String> = USER.schema_json("x")["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "userName",
                "name",
                "displayName",
                "title",
                "emails",
                "active",
                "groups"
            ]
        );
    }
}
