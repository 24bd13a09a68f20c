#!/bin/sh
# Runs once, when the db volume is empty, as the superuser (the official
# postgres image's init hook). Creates the role that owns Shopfloor's
# database: it runs the migrations, the worker and the watchers. It is not a
# superuser; CREATEROLE lets the migrations create the shopfloor_* roles and
# set the password of the API's login roles (shopfloor_api_*).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v owner_password="$SHOPFLOOR_DB_PASSWORD" <<'SQL'
create role shopfloor login createrole password :'owner_password';
create database shopfloor owner shopfloor;
revoke all on database shopfloor from public;
grant connect on database shopfloor to public;
SQL
