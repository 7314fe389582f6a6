-- Page approval, alternative text of news images, and the built-in legal pages.

-- Page approval (src/spaces/approval.rs). In a space with approval_required, a page written
-- or edited by anyone below manager is saved as a 'pending' version; readers see the
-- published one (space_pages keeps its title, body, slug, parent and audience) until a manager
-- approves. A page that was never approved has no published version and is shown to nobody.
ALTER TABLE space_pages ADD COLUMN published_version BIGINT;
UPDATE space_pages SET published_version =
    (SELECT MAX(v.version) FROM page_versions v WHERE v.page_id = space_pages.id);

-- 'superseded': a later proposal for the same page replaced this one before a decision.
ALTER TABLE page_versions ADD COLUMN status TEXT NOT NULL DEFAULT 'published'
    CHECK (status IN ('published', 'pending', 'rejected', 'superseded'));
-- What a proposal would also change, applied on approval: the URL name, the parent page and
-- the page's audience (JSON array of audience keys).
ALTER TABLE page_versions ADD COLUMN slug TEXT;
ALTER TABLE page_versions ADD COLUMN parent_id BIGINT REFERENCES space_pages (id) ON DELETE SET NULL;
ALTER TABLE page_versions ADD COLUMN audience TEXT;
ALTER TABLE page_versions ADD COLUMN rejection_reason TEXT;
ALTER TABLE page_versions ADD COLUMN reviewed_by BIGINT REFERENCES accounts (id) ON DELETE SET NULL;
ALTER TABLE page_versions ADD COLUMN reviewed_at BIGINT;
CREATE INDEX page_versions_by_status ON page_versions (status, page_id);

-- RGAA 1.1: every news image has a text alternative. NULL: no image (or an image from before
-- this column, shown as decorative); '' : decorative, stated by the writer.
ALTER TABLE news_items ADD COLUMN image_alt TEXT;

-- Legal notice, accessibility statement and personal data: public pages (the footer's links,
-- reachable from every page and without signing in) whose Markdown the administrator edits in
-- /admin/branding/pages, one row per page and language (French is the default).
CREATE TABLE legal_pages (
    kind       TEXT    NOT NULL CHECK (kind IN ('legal-notice', 'accessibility', 'personal-data')),
    lang       TEXT    NOT NULL CHECK (lang IN ('fr', 'en')),
    body       TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, lang)
);
