-- A one-time password (set by `beffroi recover-admin`) is refused after this time, Unix seconds
-- (UTC); NULL for a password the account chose itself, which does not expire.
ALTER TABLE accounts ADD COLUMN password_expires_at INTEGER;
