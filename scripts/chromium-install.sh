#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver (chromedriver) for the status page's browser
# test, when missing. Idempotent; prints the two paths.
set -euo pipefail

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "chromium-install: installing Debian's chromium and chromium-driver" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium-install: run as root (or: sudo apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Concurrent installers (tests run in parallel) wait for each other on dpkg's lock.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium chromium-driver >/dev/null
fi
echo /usr/bin/chromium
echo /usr/bin/chromedriver
