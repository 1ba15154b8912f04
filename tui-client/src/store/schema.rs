//! The local store's schema, as embedded DDL applied in order on open.
//!
//! `PRAGMA user_version` records how many steps were applied; each step runs in one
//! transaction with the version bump, so a crash mid-migration leaves the old schema.
//! A shipped step is never edited: changes are new steps.

/// Migration steps; step `i` brings the store from version `i` to `i + 1`.
pub const STEPS: &[&str] = &[
    // 1: households from the snapshot, signed records, their projection, files, drafts.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- The helper's households as last downloaded (HouseholdDetail as JSON, plus what lists sort by).
CREATE TABLE households (
    id          INTEGER PRIMARY KEY NOT NULL,
    head_name   TEXT NOT NULL,
    village     TEXT NOT NULL,
    detail_json TEXT NOT NULL
);

-- Signed records: append-only. The envelope is stored as its canonical JSON.
CREATE TABLE records (
    id            TEXT PRIMARY KEY NOT NULL,
    device_id     INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    record_type   TEXT NOT NULL CHECK (record_type IN ('visit', 'amendment', 'void')),
    household_id  INTEGER NOT NULL,
    target_id     TEXT REFERENCES records(id),
    sha256        TEXT NOT NULL UNIQUE,
    prev_sha256   TEXT NOT NULL,
    envelope_json TEXT NOT NULL,
    signature     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    -- 'local' until sync (issue 4) has the server acknowledge it.
    sync_state    TEXT NOT NULL DEFAULT 'local',
    UNIQUE (device_id, seq)
);
CREATE INDEX records_target ON records (target_id);

-- Immutability is the store's rule too, not only the code's.
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'signed records are never deleted'); END;
CREATE TRIGGER records_no_edit BEFORE UPDATE ON records
WHEN NEW.envelope_json IS NOT OLD.envelope_json OR NEW.signature IS NOT OLD.signature
  OR NEW.id IS NOT OLD.id OR NEW.sha256 IS NOT OLD.sha256 OR NEW.seq IS NOT OLD.seq
BEGIN SELECT RAISE(ABORT, 'signed records are never edited'); END;

-- Projection: the current state of each original visit (after amendments and voids),
-- written in the same transaction as the record that changes it.
CREATE TABLE visits (
    visit_id         TEXT PRIMARY KEY NOT NULL REFERENCES records(id),
    household_id     INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    at               TEXT NOT NULL,
    latest_record_id TEXT NOT NULL REFERENCES records(id),
    amendments       INTEGER NOT NULL DEFAULT 0,
    voided           INTEGER NOT NULL DEFAULT 0,
    void_reason      TEXT
);
CREATE INDEX visits_by_household ON visits (household_id, voided, kind, at);

-- Images in the content-addressed store, and which records use them.
CREATE TABLE files (
    sha256     TEXT PRIMARY KEY NOT NULL,
    media_type TEXT NOT NULL,
    bytes      INTEGER NOT NULL,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    added_at   TEXT NOT NULL
);
CREATE TABLE record_files (
    record_id TEXT NOT NULL REFERENCES records(id),
    sha256    TEXT NOT NULL REFERENCES files(sha256),
    role      TEXT NOT NULL CHECK (role IN ('photo', 'household_signature')),
    PRIMARY KEY (record_id, sha256, role)
);

-- Unfinished forms: kept across restarts, replaced on every save, removed when signed.
CREATE TABLE drafts (
    id           TEXT PRIMARY KEY NOT NULL,
    household_id INTEGER NOT NULL,
    form_json    TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
"#,
];
