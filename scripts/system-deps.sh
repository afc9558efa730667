#!/usr/bin/env bash
# Installs the system programs bcast needs (Debian packages) when they are missing.
# As root it runs apt-get; otherwise it says what to install and fails.
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || need+=(mosquitto)
{ command -v mosquitto_sub >/dev/null 2>&1; } || need+=(mosquitto-clients)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# The tests also open the quarterly report in LibreOffice (`scripts/system-deps.sh test`).
if [ "${1:-}" = "test" ]; then
  command -v soffice >/dev/null 2>&1 || need+=(libreoffice-calc)
  # The console's end-to-end test drives Debian's Chromium through Playwright (no browser download).
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# shellcheck disable=SC2207
need=($(printf '%s\n' "${need[@]}" | sort -u))
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Cài đặt gói hệ thống còn thiếu: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "Thiếu gói hệ thống: ${need[*]}" >&2
  echo "Hãy cài bằng: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
