#!/bin/sh
# Run by the nginx image's entrypoint before nginx starts. Only on nginx older than 1.27.3, whose
# upstream servers cannot re-resolve their names (15-gateway-upstreams.envsh): wait (bounded) until
# every upstream name resolves, as nginx needs at start, then watch the names in the background
# and reload nginx (gracefully, keeping open connections) when their addresses change, so a
# recreated or scaled API container is followed within a few seconds.
set -u
[ -z "${GATEWAY_UPSTREAM_RESOLVE:-}" ] || exit 0  # nginx re-resolves by itself
names=""
for upstream in "${USERS_UPSTREAM:-}" "${PROFILE_UPSTREAM:-}" "${EMAILS_UPSTREAM:-}" "${FLOWER_UPSTREAM:-}"; do
  host=${upstream%:*}
  case "$host" in
    "" | *[!0-9.]*) [ -z "$host" ] || names="$names $host" ;;  # a name, not an IPv4 address
  esac
done
[ -n "$names" ] || exit 0

addresses() {  # "name=addr addr ..." per name; fails while a name has no address
  for name in $names; do
    found=$( (getent ahostsv4 "$name" 2>/dev/null || getent hosts "$name") | awk '{ print $1 }' | sort -u | tr '\n' ' ')
    [ -n "$found" ] || return 1
    echo "$name=$found"
  done
}

waited=0
until current=$(addresses); do
  if [ "$waited" -ge 60 ]; then
    echo "$0: some of$names do not resolve after 60 s; starting nginx anyway" >&2
    break
  fi
  waited=$((waited + 1))
  sleep 1
done
echo "$0: following$names (nginx reloads when their addresses change)"
(
  last=$current
  while sleep "${GATEWAY_FOLLOW_INTERVAL_SECONDS:-2}"; do
    now=$(addresses) || continue  # a container being recreated has no address for a moment
    [ "$now" != "$last" ] || continue
    echo "$0: upstream addresses now $now: reloading nginx"
    nginx -s reload && last=$now
  done
) &
exit 0
