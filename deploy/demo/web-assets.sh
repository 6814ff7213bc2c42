#!/usr/bin/env bash
# deploy/demo/web-assets.sh BUILD_DIR — install the page's npm dependencies (web/package.json,
# web/package-lock.json: Apache ECharts) into BUILD_DIR/web with `npm ci`, once per lock, and
# copy echarts.min.js to BUILD_DIR/web-dist, which the gateway serves under /assets/ when
# ZHILI_WEB_ASSETS=BUILD_DIR/web-dist. Never writes into the source tree. Without npm or the
# registry it fails (exit 1) and the page runs without charts.
set -euo pipefail
BUILD_DIR="${1:?usage: web-assets.sh BUILD_DIR}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$BUILD_DIR/web" dist="$BUILD_DIR/web-dist"
mkdir -p "$dir" "$dist"
if ! cmp -s "$ROOT/web/package-lock.json" "$dir/node_modules/.zhili-lock" 2>/dev/null; then
    cp "$ROOT/web/package.json" "$ROOT/web/package-lock.json" "$dir/"
    npm ci --no-audit --no-fund --ignore-scripts --prefix "$dir" >&2
    cp "$ROOT/web/package-lock.json" "$dir/node_modules/.zhili-lock"
fi
cp "$dir/node_modules/echarts/dist/echarts.min.js" "$dist/echarts.min.js"
