-- Sessions ended by signing out (auth/ended_sessions.ts). A session is a signed cookie that
-- holds until its expiry on its own; signing out records its id here, so a copy of the cookie
-- kept elsewhere stops working too, on every backend of the database. A row is needed only until
-- the session would have expired, and goes with the next sign-out after that.
CREATE TABLE session_ended (
  session_id text PRIMARY KEY,
  ended_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX session_ended_expires_idx ON session_ended (expires_at);
