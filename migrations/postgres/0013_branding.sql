-- Branding: a secondary colour pair (the footer), footer links, and the logo and favicon.
ALTER TABLE organisation ADD COLUMN colour_secondary TEXT NOT NULL DEFAULT '#f4f4f6';
ALTER TABLE organisation ADD COLUMN colour_on_secondary TEXT NOT NULL DEFAULT '#1e1e1e';
-- The ordered footer links as a JSON array of {"label", "url"} (at most 8, checked on save):
-- read with the rest of the row in the one query every page's shell makes.
ALTER TABLE organisation ADD COLUMN footer_links TEXT NOT NULL DEFAULT '[]';

-- The uploaded logo and favicon, in the database so that every node serves them (see
-- src/branding/store.rs). No row: the built-in logo.
CREATE TABLE branding_images (
    kind        TEXT    PRIMARY KEY CHECK (kind IN ('logo', 'favicon')),
    sha256      TEXT    NOT NULL CHECK (length(sha256) = 64),
    media_type  TEXT    NOT NULL CHECK (media_type IN ('png', 'jpeg', 'webp')),
    bytes       BYTEA   NOT NULL,
    updated_at  BIGINT NOT NULL
);
