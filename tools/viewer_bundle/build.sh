#!/usr/bin/env bash
# Rebuild src/kinepose/viz/_vendor/three_bundle.min.js (and its license) from the versions pinned in
# package-lock.json. Needs Node.js >= 18 and npm; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
out=../../src/kinepose/viz/_vendor
npm ci --no-audit --no-fund
npx --no-install esbuild entry.js --bundle --minify --format=iife --target=es2020 --legal-comments=none \
  --outfile="$out/three_bundle.min.js"
cp node_modules/three/LICENSE "$out/LICENSE-three.txt"
ls -l "$out/three_bundle.min.js"
