-- The audit trail's hash chains (docs/PROTOCOL.md, "The tamper-evident audit
-- trail"): the head of each chain, `national` and `municipality:<code>`.
-- An append locks the heads it moves (national last, in name order), so
-- appends from every instance form one order; the link itself is computed
-- by the server.
CREATE TABLE audit_heads (
    chain    text COLLATE "C" PRIMARY KEY,
    n        bigint NOT NULL,
    hash     bytea NOT NULL,
    anchored boolean NOT NULL DEFAULT false
);

-- A dropped month's last national link is returned too: the drop's own
-- audit event records it, the anchor of the first event kept.
DROP FUNCTION potvrda_audit_drop_before(bigint);
CREATE FUNCTION potvrda_audit_drop_before(retain_from bigint)
RETURNS TABLE (month text, events bigint, last_link jsonb)
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
            EXECUTE format('SELECT event->''chain''->''national'' FROM %I ORDER BY seq DESC LIMIT 1',
                           part.name) INTO last_link;
            EXECUTE format('DROP TABLE %I', part.name);
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;

-- The month's advisory lock only when its partition is missing: appends are
-- ordered by the heads' row locks above, not by a lock on the whole month.
-- (After the lock, IF NOT EXISTS: the first look's answer may be stale.)
CREATE OR REPLACE FUNCTION potvrda_audit_month(at bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    first timestamp := date_trunc('month', to_timestamp(at) AT TIME ZONE 'UTC');
    name text := 'audit_' || to_char(first, 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(name));
    EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF audit FOR VALUES FROM (%s) TO (%s)',
            name,
            extract(epoch FROM first AT TIME ZONE 'UTC')::bigint,
            extract(epoch FROM (first + interval '1 month') AT TIME ZONE 'UTC')::bigint);
    RETURN name;
END $$;
