-- `scanpay user disable NAME`: a disabled user cannot sign in and has no session.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
