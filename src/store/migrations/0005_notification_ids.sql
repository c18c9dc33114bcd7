-- API v3 notifications carry an id. The first body seen with an id is kept
-- (as its SHA-256): the same id with the same body again is WeChat Pay's
-- retry, with another body a replay, refused — also after a restart.
CREATE TABLE notification_ids (
    id          TEXT PRIMARY KEY,
    body_sha256 BLOB NOT NULL,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX notification_ids_received_at ON notification_ids (received_at);
