-- The who's-who: the contact details and skills an agent shows their colleagues, their photo,
-- and the administrator's policy saying who may see each optional field and whether the agent
-- may edit it themselves.

ALTER TABLE agent_profiles ADD COLUMN office_phone TEXT CHECK (length(office_phone) <= 40);
ALTER TABLE agent_profiles ADD COLUMN mobile_phone TEXT CHECK (length(mobile_phone) <= 40);
ALTER TABLE agent_profiles ADD COLUMN bio TEXT CHECK (length(bio) <= 4000);
-- The photo is a blob in the BlobStore (SHA-256 hex) with its sniffed type.
ALTER TABLE agent_profiles ADD COLUMN photo_sha256 TEXT;
ALTER TABLE agent_profiles ADD COLUMN photo_type TEXT CHECK (photo_type IN ('png', 'jpeg', 'webp'));

-- One row per skill, so that a search by skill is an indexed lookup. `skill_key` is the
-- lower-cased form without accents that searches match; `skill` is what the agent typed.
CREATE TABLE agent_skills (
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    position   BIGINT  NOT NULL,
    skill      TEXT    NOT NULL CHECK (length(skill) BETWEEN 1 AND 200),
    skill_key  TEXT    NOT NULL,
    PRIMARY KEY (account_id, position)
);
CREATE INDEX agent_skills_by_key ON agent_skills (skill_key);

-- Who may see each optional field: 'everyone', 'department' (the viewer's department and the
-- agent's are on one branch of the tree: one is the other or sits under it) or 'private' (the
-- agent and administrators). `self_edit`: the agent may change the field on their own page.
CREATE TABLE directory_field_policy (
    field      TEXT    PRIMARY KEY CHECK (field IN ('email', 'office_phone', 'mobile_phone',
                                                    'site', 'skills', 'bio', 'photo', 'manager')),
    visibility TEXT    NOT NULL CHECK (visibility IN ('everyone', 'department', 'private')),
    self_edit  BOOLEAN NOT NULL,
    updated_at BIGINT  NOT NULL
);
INSERT INTO directory_field_policy (field, visibility, self_edit, updated_at) VALUES
    ('email', 'everyone', FALSE, 0),
    ('office_phone', 'everyone', TRUE, 0),
    ('mobile_phone', 'department', TRUE, 0),
    ('site', 'everyone', FALSE, 0),
    ('skills', 'everyone', TRUE, 0),
    ('bio', 'everyone', TRUE, 0),
    ('photo', 'everyone', TRUE, 0),
    ('manager', 'everyone', FALSE, 0);
