#!/bin/sh
# Run by the nginx image's entrypoint after the templates are rendered: GATEWAY_DOCS=on serves
# the three services' API docs at /docs/ (nginx/docs.conf); off (the image's default, and
# production's unless .env says otherwise) leaves /docs/ a 404 like any unknown path.
set -eu
out=/etc/nginx/gateway-docs
mkdir -p "$out"
rm -f "$out/docs.conf"
case "${GATEWAY_DOCS:-off}" in
  on)
    cp /etc/nginx/docs.conf "$out/docs.conf"
    echo "$0: API docs at /docs/ (GATEWAY_DOCS=on)"
    ;;
  off)
    echo "$0: no API docs (GATEWAY_DOCS=off)"
    ;;
  *)
    echo "$0: GATEWAY_DOCS must be on or off, not '$GATEWAY_DOCS'" >&2
    exit 1
    ;;
esac
