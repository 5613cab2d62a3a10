-- Page sessions (issue 14): the pages' cookie carried the token's long-lived bearer secret, and
-- signing out only asked the browser to forget it, so a copied cookie stayed a key to the whole API
-- for the token's life (up to ten years). Now the cookie carries a random session id, stored here
-- as its SHA-256 like the tokens' secrets. A session ends at sign-out, at its expiry (a working day,
-- never past its token's), or when its token is revoked or expires; it opens pages, never the API.
CREATE TABLE page_sessions (
    id             bigserial PRIMARY KEY,
    hash           text NOT NULL UNIQUE,
    token_id       integer NOT NULL REFERENCES tokens (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    client_address text
);
CREATE INDEX page_sessions_token ON page_sessions (token_id) WHERE ended_at IS NULL;

-- Read before any scope exists, like tokens: no row-level security.
GRANT SELECT, INSERT ON page_sessions TO stockpile_app;
GRANT UPDATE (ended_at) ON page_sessions TO stockpile_app;
GRANT USAGE, SELECT ON SEQUENCE page_sessions_id_seq TO stockpile_app;
