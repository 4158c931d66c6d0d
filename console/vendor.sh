#!/usr/bin/env bash
# Copies the console's front-end libraries from node_modules (pinned by package-lock.json) into
# static/vendor/, which is committed and embedded in the server binary: building and testing
# fleetgate never needs Node. `--check` (CI) installs the pinned packages and fails if the
# committed copies differ from them.
set -euo pipefail
cd "$(dirname "$0")"

files=(
  "node_modules/@xterm/xterm/lib/xterm.mjs:xterm.mjs"
  "node_modules/@xterm/xterm/css/xterm.css:xterm.css"
  "node_modules/@xterm/xterm/LICENSE:xterm.LICENSE"
  "node_modules/@xterm/addon-fit/lib/addon-fit.mjs:addon-fit.mjs"
  "node_modules/@xterm/addon-fit/LICENSE:addon-fit.LICENSE"
  "node_modules/uplot/dist/uPlot.esm.js:uPlot.esm.js"
  "node_modules/uplot/dist/uPlot.min.css:uPlot.min.css"
  "node_modules/uplot/LICENSE:uPlot.LICENSE"
)

if [[ "${1:-}" == "--check" ]]; then
  npm ci --no-audit --no-fund --silent
  status=0
  for entry in "${files[@]}"; do
    from="${entry%%:*}" to="static/vendor/${entry##*:}"
    if ! cmp -s "$from" "$to"; then
      echo "console/$to differs from $from: run console/vendor.sh and commit" >&2
      status=1
    fi
  done
  [[ $status == 0 ]] && echo "console/static/vendor matches package-lock.json"
  exit $status
fi

npm ci --no-audit --no-fund --silent
mkdir -p static/vendor
for entry in "${files[@]}"; do
  cp "${entry%%:*}" "static/vendor/${entry##*:}"
done
echo "vendored ${#files[@]} files into console/static/vendor"
