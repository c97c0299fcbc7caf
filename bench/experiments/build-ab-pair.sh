#!/bin/sh
# `bench/experiments/build-ab-pair.sh A_DIR B_DIR FILE...` (issue 20): one snapshot of the working tree,
# built twice: B_DIR as it is, A_DIR with FILE... put back to git HEAD (a file HEAD lacks is removed).
# With other work going on in the same tree, an A/B of the two (ab-commands.js A_DIR B_DIR) measures
# only the changes in FILE..., not whatever else changed between two builds.
set -e
[ $# -ge 3 ] || { echo "usage: $0 A_DIR B_DIR FILE..." >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/../.." && pwd)
A=$1; B=$2; shift 2
for D in "$A" "$B"; do
  rm -rf "$D"; mkdir -p "$D"
  cp -r "$REPO/src" "$REPO/bin" "$REPO/package.json" "$REPO/tsconfig.json" "$REPO/tsconfig.build.json" "$D/"
  [ -d "$REPO/dist" ] && cp -r "$REPO/dist" "$D/"
  ln -s "$REPO/node_modules" "$D/node_modules"
done
# The same sources in both: copy B's into A before putting FILE... back.
rm -rf "$A/src"; cp -r "$B/src" "$A/src"
for f in "$@"; do
  if git -C "$REPO" cat-file -e "HEAD:$f" 2>/dev/null; then git -C "$REPO" show "HEAD:$f" > "$A/$f"
  else rm -f "$A/$f" "$A/dist/$(echo "$f" | sed 's|^src/||; s|\.ts$|.js|')"; fi
done
# As `npm run build` does: tsc, then the client commands' bundle (scripts/bundle-cli.js), which bin/rxfer.js runs.
for D in "$A" "$B"; do (cd "$D" && "$REPO/node_modules/.bin/tsc" -p tsconfig.build.json && node "$REPO/scripts/bundle-cli.js" "$D" >/dev/null); done
