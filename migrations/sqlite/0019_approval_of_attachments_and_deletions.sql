-- In a space with approval_required, what a writer who cannot approve does to the files and
-- pages readers see waits for a manager, like their page texts (src/spaces/changes.rs):
-- an attachment they add is 'pending', shown to them and to the managers only, until approved;
-- removing a published attachment, or deleting a page, is a request a manager approves (then
-- it happens) or rejects (then the request is cleared). Rows from before stay published.

ALTER TABLE page_attachments ADD COLUMN status TEXT NOT NULL DEFAULT 'published'
    CHECK (status IN ('pending', 'published'));
ALTER TABLE page_attachments ADD COLUMN removal_requested_by INTEGER REFERENCES accounts (id) ON DELETE SET NULL;
ALTER TABLE page_attachments ADD COLUMN removal_requested_at INTEGER;

ALTER TABLE space_pages ADD COLUMN deletion_requested_by INTEGER REFERENCES accounts (id) ON DELETE SET NULL;
ALTER TABLE space_pages ADD COLUMN deletion_requested_at INTEGER;
