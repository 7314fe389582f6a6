-- The organisation's name and colours, shown on every page (one row).
CREATE TABLE organisation (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    name            TEXT    NOT NULL,
    colour_primary  TEXT    NOT NULL,
    colour_on_primary TEXT  NOT NULL,
    updated_at      INTEGER NOT NULL
);
INSERT INTO organisation (id, name, colour_primary, colour_on_primary, updated_at)
VALUES (1, 'Beffroi', '#000091', '#ffffff', 0);
