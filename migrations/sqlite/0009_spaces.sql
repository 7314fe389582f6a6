-- Spaces: a directorate, a project or a site groups its pages, news and (later) wikis and
-- to-do lists in a space. A public space is open to every agent in its audience; a private
-- space only to its members. Members hold one role each: reader < contributor < editor < manager.

CREATE TABLE spaces (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- URL name: lower-case letters, digits and dashes.
    slug        TEXT    NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 64),
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT    NOT NULL DEFAULT '',
    visibility  TEXT    NOT NULL CHECK (visibility IN ('public', 'private')),
    -- Editors' news and pages wait for a manager's approval before publication.
    approval_required INTEGER NOT NULL DEFAULT 0 CHECK (approval_required IN (0, 1)),
    created_at  INTEGER  NOT NULL,
    updated_at  INTEGER  NOT NULL,
    archived_at INTEGER
);

CREATE TABLE space_members (
    space_id   INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('reader', 'contributor', 'editor', 'manager')),
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (space_id, account_id)
);
CREATE INDEX space_members_by_account ON space_members (account_id);

-- Who a public space is for (see src/audience.rs for the keys). A public space with no row
-- here is for nobody but its members: 'everyone' must be stated.
CREATE TABLE space_audience (
    space_id     INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    audience_key TEXT   NOT NULL,
    PRIMARY KEY (space_id, audience_key)
);
CREATE INDEX space_audience_by_key ON space_audience (audience_key, space_id);
