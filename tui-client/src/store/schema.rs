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
    // 2: sync (issue 4). Per-record sync state with the server's reason and missing
    // files; the pull cursor lives in `meta`; tus upload URLs survive a restart; records
    // pulled from the server wait in an inbox until what they refer to is here; a record
    // may now name an image that is not on the device yet (history recovered by pull,
    // images downloaded after), so `record_files` no longer requires a `files` row.
    r#"
ALTER TABLE records ADD COLUMN sync_reason TEXT;
ALTER TABLE records ADD COLUMN sync_missing TEXT NOT NULL DEFAULT '[]';
ALTER TABLE records ADD COLUMN sync_flags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE records ADD COLUMN synced_at TEXT;
CREATE INDEX records_by_sync_state ON records (sync_state, device_id, seq);

CREATE TABLE record_files_v2 (
    record_id TEXT NOT NULL REFERENCES records(id),
    sha256    TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('photo', 'household_signature')),
    PRIMARY KEY (record_id, sha256, role)
);
INSERT INTO record_files_v2 (record_id, sha256, role) SELECT record_id, sha256, role FROM record_files;
DROP TABLE record_files;
ALTER TABLE record_files_v2 RENAME TO record_files;
CREATE INDEX record_files_by_sha ON record_files (sha256);

-- tus uploads in progress: the server's upload URL per file, so a killed sync resumes
-- the same upload (HEAD for the offset) instead of starting another.
CREATE TABLE uploads (
    sha256     TEXT PRIMARY KEY NOT NULL,
    url        TEXT NOT NULL,
    length     INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- Records received by pull that cannot be stored yet (an amendment or void whose
-- original has not arrived): kept here and retried after every pull page.
CREATE TABLE pull_inbox (
    id          TEXT PRIMARY KEY NOT NULL,
    server_json TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"#,
    // 3: the second helper's quarterly attendance sheets (issue 5): the sheet as last
    // pulled per quarter, the remarks being written (drafts, per row), and the signed
    // submissions waiting for the next sync with what the server answered.
    r#"
CREATE TABLE sheets (
    quarter    TEXT PRIMARY KEY NOT NULL,
    sheet_json TEXT NOT NULL,
    pulled_at  TEXT NOT NULL
);

CREATE TABLE sheet_remarks (
    quarter      TEXT NOT NULL,
    household_id INTEGER NOT NULL,
    remark       TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (quarter, household_id)
);

-- A signed submission is never edited; only its state changes.
CREATE TABLE sheet_submissions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    quarter      TEXT NOT NULL,
    device_id    INTEGER NOT NULL,
    remarks_json TEXT NOT NULL,
    signature    TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'submitted', 'rejected')),
    version      INTEGER,
    reason       TEXT,
    created_at   TEXT NOT NULL,
    -- Set before the first POST: a submission sent whose answer was not stored (a sync
    -- killed mid-way) is checked against the server's latest version before it is sent
    -- again, so it is not frozen twice.
    attempted_at TEXT,
    answered_at  TEXT
);
CREATE INDEX sheet_submissions_by_state ON sheet_submissions (state, id);
CREATE TRIGGER sheet_submissions_no_edit BEFORE UPDATE ON sheet_submissions
WHEN NEW.remarks_json IS NOT OLD.remarks_json OR NEW.signature IS NOT OLD.signature
  OR NEW.quarter IS NOT OLD.quarter OR NEW.device_id IS NOT OLD.device_id
BEGIN SELECT RAISE(ABORT, 'signed submissions are never edited'); END;
"#,
    // 4: the id signed into each sheet submission: the server freezes one version per id,
    // so a submission whose answer was lost is simply sent again. Rows from before it
    // have none (and are checked against the server's latest version, as before).
    r#"
ALTER TABLE sheet_submissions ADD COLUMN submission_id TEXT;
DROP TRIGGER sheet_submissions_no_edit;
CREATE TRIGGER sheet_submissions_no_edit BEFORE UPDATE ON sheet_submissions
WHEN NEW.remarks_json IS NOT OLD.remarks_json OR NEW.signature IS NOT OLD.signature
  OR NEW.quarter IS NOT OLD.quarter OR NEW.device_id IS NOT OLD.device_id
  OR NEW.submission_id IS NOT OLD.submission_id
BEGIN SELECT RAISE(ABORT, 'signed submissions are never edited'); END;
"#,
    // 5: households whose pairing with this helper ended. The server lists only the
    // households the helper is paired with now; one that drops out of that list is kept
    // (its drafts are signed and its visits amended or voided offline, and its history
    // keeps its name), marked with the local date the device first found it missing.
    // NULL while the server's latest list has it.
    r#"
ALTER TABLE households ADD COLUMN unpaired_since TEXT;
"#,
    // 6: the server's stable code for why it refused a record (`Ack::reason_code`), kept
    // beside its English reason so the refusal is shown in the helper's language. NULL
    // for records refused before it, and by servers that send no code.
    r#"
ALTER TABLE records ADD COLUMN sync_reason_code TEXT;
"#,
    // 7: the town office's review note on a record ("has issues: …", `ServerRecord::
    // review`), as the last pull brought it; NULL when there is none.
    r#"
ALTER TABLE records ADD COLUMN review_note TEXT;
"#,
    // 8: when a sync last found an image unusable (missing or altered on the device, or
    // refused by the server); NULL once it uploads. A visit waiting for such an image
    // cannot reach the server whole, so the device does not count it.
    r#"
ALTER TABLE files ADD COLUMN unusable_since TEXT;
"#,
    // 9: the family changes a record proposed as the town office decided them, with its
    // note (`ServerRecord::family_changes`, a JSON array), as the last pull brought
    // them (QA s29b J4).
    r#"
ALTER TABLE records ADD COLUMN family_decisions TEXT NOT NULL DEFAULT '[]';
"#,
];
