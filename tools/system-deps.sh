#!/usr/bin/env bash
# System packages the book needs, installed where we can (root with apt: CI, Colab,
# containers): a CJK font so Chinese figure labels render, npm to fetch the offline
# JavaScript (MathJax, widgets), the venv module, and Chromium for the browser tests of
# the built site (any of chromium, chromium-browser, google-chrome already on PATH will
# do). Without root, say what to install.
set -u
missing=()
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing+=(fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
  || command -v google-chrome >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "warning: could not install ${missing[*]}" >&2
else
  echo "warning: please install these system packages: ${missing[*]}" \
       "(e.g. sudo apt-get install ${missing[*]})" >&2
fi
exit 0
