-- Potvrda's system of record (issue 19): accounts, devices, activation
-- codes, the lasting records (clients, grants, sessions, consents, recovery
-- codes, sealed offline secrets, municipalities, the token keyring), the
-- stored keys and the audit trail. What is fleeting (logins, challenges,
-- rate counters, short-lived codes and spent nonces) stays in Redis.
--
-- Records keep the JSON the other stores keep (jsonb), with the columns the
-- server looks them up by beside it; `username` sorts bytewise (COLLATE "C"),
-- as the embedded store does, so a prefix search is an index range scan.

CREATE TABLE users (
    id           text PRIMARY KEY,
    username     text COLLATE "C" NOT NULL UNIQUE,
    municipality text,
    record       jsonb NOT NULL
);
CREATE INDEX users_municipality ON users (municipality);

CREATE TABLE activations (
    code_hash  text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at bigint NOT NULL
);
CREATE INDEX activations_user ON activations (user_id);

CREATE TABLE devices (
    id      text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    record  jsonb NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

-- Lasting typed records (docs/ARCHITECTURE.md, `records::Kind::lasting`):
-- the value is the domain's encoding; expires_at 0 is never.
CREATE TABLE records (
    key        text COLLATE "C" PRIMARY KEY,
    value      bytea NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX records_expiry ON records (expires_at) WHERE expires_at <> 0;

CREATE TABLE keys (
    name     text PRIMARY KEY,
    material bytea NOT NULL
);

-- The audit trail, one partition per calendar month (UTC) of `at`: retention
-- drops whole months, the only deletion there is (and it is itself audited).
CREATE SEQUENCE audit_seq AS bigint;
CREATE TABLE audit (
    seq          bigint NOT NULL DEFAULT nextval('audit_seq'),
    at           bigint NOT NULL,
    at_ms        bigint NOT NULL,
    user_id      text,
    actor_id     text,
    municipality text,
    event        jsonb NOT NULL,
    PRIMARY KEY (at, seq)
) PARTITION BY RANGE (at);
CREATE INDEX audit_by_seq ON audit (seq);
CREATE INDEX audit_by_user ON audit (user_id, seq) WHERE user_id IS NOT NULL;
CREATE INDEX audit_by_actor ON audit (actor_id, seq) WHERE actor_id IS NOT NULL;

-- The partition holding `at` (Unix seconds), created on first use. Racing
-- instances serialise on an advisory lock named after the month.
CREATE FUNCTION potvrda_audit_month(at bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first timestamp := date_trunc('month', to_timestamp(at) AT TIME ZONE 'UTC');
    name text := 'audit_' || to_char(first, 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(name));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF audit FOR VALUES FROM (%s) TO (%s)',
            name,
            extract(epoch FROM first AT TIME ZONE 'UTC')::bigint,
            extract(epoch FROM (first + interval '1 month') AT TIME ZONE 'UTC')::bigint);
    END IF;
    RETURN name;
END $$;

-- Drop every month that ended at or before `retain_from` (Unix seconds);
-- returns each month dropped and how many events it held, for the trail.
CREATE FUNCTION potvrda_audit_drop_before(retain_from bigint)
RETURNS TABLE (month text, events bigint)
LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname AS name
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit'::regclass
        ORDER BY c.relname
    LOOP
        IF extract(epoch FROM (to_date(substr(part.name, 7), 'YYYY_MM')::timestamp
                               + interval '1 month') AT TIME ZONE 'UTC') <= retain_from THEN
            month := replace(substr(part.name, 7), '_', '-');
            EXECUTE format('SELECT count(*) FROM %I', part.name) INTO events;
            EXECUTE format('DROP TABLE %I', part.name);
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;
