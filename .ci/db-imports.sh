#!/usr/bin/env bash
# Fails when a database crate (rusqlite, postgres, tokio_postgres, redis) is named outside the
# storage layer (src/store/): every database handle, its settings and its SQL live there.
# Usage: bash .ci/db-imports.sh [ROOT]   (ROOT defaults to the repository). Tests (tests/)
# may open the files themselves to check what was stored; shipped code may not.
set -euo pipefail
root="${1:-$(dirname "$0")/..}"
cd "$root"
crates='rusqlite|postgres|tokio_postgres|redis'
# A path into the crate (`rusqlite::Connection`), a `use` of it, or an `extern crate`;
# comment lines (`//`, `//!`, `///`) are prose, not imports.
pattern="(^|[^A-Za-z0-9_])(${crates})::|^[[:space:]]*(pub(\([a-z]+\))?[[:space:]]+)?use[[:space:]]+(${crates})\b|extern[[:space:]]+crate[[:space:]]+(${crates})\b"
dirs=()
for d in src callguard-sim/src benches examples; do [ -d "$d" ] && dirs+=("$d"); done
found="$(grep -rnE --include='*.rs' "$pattern" "${dirs[@]}" \
    | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' \
    | grep -vE '^src/store(/|\.rs:)' || true)"
if [ -n "$found" ]; then
    echo "database crates used outside the storage layer (src/store/):"
    echo "$found"
    exit 1
fi
echo "database crates: only under src/store/"
