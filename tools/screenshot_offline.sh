#!/usr/bin/env bash
# Screenshot pages of the built book in headless Chromium with the network cut, to see
# that maths, figures, widgets and buttons work offline. Needs root (unshare -n) and
# Debian's chromium package.
# Usage: tools/screenshot_offline.sh [HTML_DIR] [OUT_DIR] [PAGE ...]
#   e.g. tools/screenshot_offline.sh _build/html /tmp/shots book/notation
set -euo pipefail
html=$(realpath "${1:-_build/html}"); out=${2:-/tmp/llmbook-shots}; shift $(( $# > 2 ? 2 : $# ))
pages=("$@"); [ ${#pages[@]} -gt 0 ] || pages=(book/intro book/notation)
command -v chromium >/dev/null || { echo "install chromium (apt-get install chromium)" >&2; exit 1; }
mkdir -p "$out"; profile=$(mktemp -d)
for page in "${pages[@]}"; do
  shot="$out/$(echo "$page" | tr / _).png"
  timeout 120 unshare -n chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1280,2000 --virtual-time-budget=10000 \
    --screenshot="$shot" "file://$html/$page.html" 2>/dev/null
  echo "$shot"
done
rm -rf "$profile"
