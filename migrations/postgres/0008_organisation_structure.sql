-- Where agents sit in the organisation: departments (a tree: directorate > service > office),
-- sites (town hall, depot, hospital wing…) and each agent's placement and manager. The
-- who's-who, the org chart and audiences (news, pages, spaces) are built on these tables.

CREATE TABLE departments (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- NULL for a top-level directorate. A department cannot be deleted while it has children.
    parent_id  BIGINT  REFERENCES departments (id) ON DELETE RESTRICT,
    created_at BIGINT  NOT NULL,
    CHECK (parent_id IS NULL OR parent_id <> id)
);
-- Names are unique among siblings (two "Accueil" under different directorates are fine).
CREATE UNIQUE INDEX departments_by_parent_name ON departments (COALESCE(parent_id, 0), name);

CREATE TABLE sites (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    address    TEXT,
    created_at BIGINT  NOT NULL
);

-- One row per agent who has been placed; an account without a row is simply unplaced.
CREATE TABLE agent_profiles (
    account_id    BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    title         TEXT,
    department_id BIGINT REFERENCES departments (id) ON DELETE SET NULL,
    site_id       BIGINT REFERENCES sites (id) ON DELETE SET NULL,
    manager_id    BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
    updated_at    BIGINT NOT NULL,
    CHECK (manager_id IS NULL OR manager_id <> account_id)
);
CREATE INDEX agent_profiles_by_department ON agent_profiles (department_id);
CREATE INDEX agent_profiles_by_site ON agent_profiles (site_id);
CREATE INDEX agent_profiles_by_manager ON agent_profiles (manager_id);
