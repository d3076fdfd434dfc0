#!/bin/sh
# One database per service, owned by that service's own role: no superuser, and (CONNECT revoked
# from PUBLIC) no other service's role may connect to it. The service owns its tables, so its
# migrations run as itself. The superuser runs only this script.
#
# Run by the postgres image on the first start of an empty data directory (the files of
# /docker-entrypoint-initdb.d, as POSTGRES_USER), and by scripts/devstack.py at every start: it
# is idempotent, and moves what an older layout left to the superuser over to the service's role.
# A role's password comes from <SERVICE>_DB_PASSWORD (none: the role has no password, for a
# server that trusts local connections, as the devstack's does).
set -eu
for service in ${SERVICE_DATABASES:-users profile emails}; do
  role="${service}_svc"
  password=$(printenv "$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD" || true)
  echo "database $service, owned by role $role"
  psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v db="$service" -v role="$role" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %s',
              :'role', CASE WHEN :'password' = '' THEN 'NULL' ELSE quote_literal(:'password') END) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
\connect :db
SELECT format('ALTER TABLE public.%I OWNER TO %I', c.relname, :'role')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) <> :'role' \gexec
SELECT format('ALTER TYPE public.%I OWNER TO %I', t.typname, :'role')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd') AND pg_get_userbyid(t.typowner) <> :'role' \gexec
SQL
done
