#!/bin/sh
# Run by the postgres image on the first start of an empty data directory (it runs the files of
# /docker-entrypoint-initdb.d): one database per service, owned by the application's role.
set -eu
for db in ${SERVICE_DATABASES:-users profile emails}; do
  echo "creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
