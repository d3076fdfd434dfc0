#!/bin/sh
# Fills every empty secret of a production env file with a new random value:
#     scripts/generate-secrets.sh [ENV_FILE]     (default .env beside the compose files; made
#                                                from .env.example if missing)
# Each value is `openssl rand -hex 32` (Python's secrets module where openssl is missing): 64 hex
# characters, safe in the URLs they go into. Values already set are kept.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:-$root/.env}
[ -f "$env_file" ] || cp "$root/.env.example" "$env_file"
chmod 600 "$env_file"
random() {
  openssl rand -hex 32 2>/dev/null || python3 -c "import secrets; print(secrets.token_hex(32))"
}
for name in JWT_SIGNING_KEY POSTGRES_PASSWORD USERS_DB_PASSWORD PROFILE_DB_PASSWORD EMAILS_DB_PASSWORD REDIS_PASSWORD FLOWER_PASSWORD; do
  if grep -q "^$name=." "$env_file"; then
    echo "$name: kept"
  elif grep -q "^$name=$" "$env_file"; then
    sed "s/^$name=$/$name=$(random)/" "$env_file" >"$env_file.new" && cat "$env_file.new" >"$env_file" && rm "$env_file.new"
    echo "$name: generated"
  else
    echo "$name=$(random)" >>"$env_file"
    echo "$name: generated"
  fi
done
