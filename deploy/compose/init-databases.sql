-- One database per service, each owned by its own login role (password = role name;
-- for local and test use only). Idempotent: safe to run again on an existing server.
-- Used by deploy/compose.yaml (first start of an empty volume) and by
-- deploy/local/postgres.sh (every start). Keep the list in step with SERVICES there.

-- Tests log in as the superuser over TCP to create throwaway databases.
ALTER ROLE postgres PASSWORD 'postgres';

DO $$
DECLARE
  service text;
BEGIN
  FOREACH service IN ARRAY ARRAY['order', 'inventory', 'fulfilment', 'returns', 'notification', 'operations'] LOOP
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'oms_' || service) THEN
      EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', 'oms_' || service, 'oms_' || service);
    ELSE
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', 'oms_' || service, 'oms_' || service);
    END IF;
  END LOOP;
END
$$;

-- CREATE DATABASE cannot run inside a DO block (a transaction), hence \gexec.
SELECT format('CREATE DATABASE %I OWNER %I', 'oms_' || service, 'oms_' || service)
FROM unnest(ARRAY['order', 'inventory', 'fulfilment', 'returns', 'notification', 'operations']) AS service
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'oms_' || service)
\gexec

-- A service reaches only its own database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', 'oms_' || service)
FROM unnest(ARRAY['order', 'inventory', 'fulfilment', 'returns', 'notification', 'operations']) AS service
\gexec
