-- Pages of a space (HR rules, procedures, project notes): a tree by parent page, Markdown
-- bodies rendered and sanitised at display time, an optional audience narrowing the space's,
-- every saved state kept in page_versions, and attachments referring to content-addressed
-- blobs (src/blobs) by SHA-256.

CREATE TABLE space_pages (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space_id   BIGINT  NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    -- A deleted parent leaves its children at the top of the tree.
    parent_id  BIGINT  REFERENCES space_pages (id) ON DELETE SET NULL,
    slug       TEXT    NOT NULL CHECK (length(slug) BETWEEN 1 AND 64),
    title      TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body       TEXT    NOT NULL,
    created_by BIGINT  REFERENCES accounts (id) ON DELETE SET NULL,
    created_at BIGINT  NOT NULL,
    updated_by BIGINT  REFERENCES accounts (id) ON DELETE SET NULL,
    updated_at BIGINT  NOT NULL,
    CHECK (parent_id IS NULL OR parent_id <> id),
    UNIQUE (space_id, slug)
);
CREATE INDEX space_pages_by_parent ON space_pages (parent_id);

-- Who a page is for, within its space's readers (keys as in src/audience.rs). A page with
-- no row here is for every reader of the space.
CREATE TABLE page_audience (
    page_id      BIGINT  NOT NULL REFERENCES space_pages (id) ON DELETE CASCADE,
    audience_key TEXT    NOT NULL,
    PRIMARY KEY (page_id, audience_key)
);
CREATE INDEX page_audience_by_key ON page_audience (audience_key, page_id);

-- Every saved state of a page, the current one included; version 1 is the creation.
CREATE TABLE page_versions (
    page_id        BIGINT  NOT NULL REFERENCES space_pages (id) ON DELETE CASCADE,
    version        BIGINT  NOT NULL CHECK (version >= 1),
    title          TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    edited_by      BIGINT  REFERENCES accounts (id) ON DELETE SET NULL,
    -- The editor's name at the time, kept when the account goes.
    edited_by_name TEXT    NOT NULL,
    edited_at      BIGINT  NOT NULL,
    PRIMARY KEY (page_id, version)
);

CREATE TABLE page_attachments (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    page_id     BIGINT  NOT NULL REFERENCES space_pages (id) ON DELETE CASCADE,
    sha256      TEXT    NOT NULL CHECK (length(sha256) = 64),
    -- As the browser sent it, shown and offered as the download name, never used as a path.
    file_name   TEXT    NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    size        BIGINT  NOT NULL CHECK (size >= 0),
    -- Sniffed from the bytes (crate::blobs::MediaType), never taken from the browser.
    media_type  TEXT    NOT NULL,
    uploaded_by BIGINT  REFERENCES accounts (id) ON DELETE SET NULL,
    uploaded_at BIGINT  NOT NULL
);
CREATE INDEX page_attachments_by_page ON page_attachments (page_id);
