#!/usr/bin/env bash
# First start of the compose PostgreSQL: one database and one owner per service, nothing shared.
# Passwords come from POSTGRES_<SERVICE>_PASSWORD; no service can read another's tables.
set -euo pipefail

for service in approval license notify; do
  var="POSTGRES_${service^^}_PASSWORD"
  password="${!var:?$var is not set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=role="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
\connect :"role"
ALTER SCHEMA public OWNER TO :"role";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
done
