#!/bin/sh
# Makes a fresh Debian or Ubuntu instance ready to run deferred's jobs. deferred runs it over
# SSH once per host and version of this file (it keeps a marker in ~/.deferred/bootstrap/);
# every step checks before it acts, so running it again changes nothing.
set -eu

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# What a job's life on the host needs: git, setsid and flock (util-linux), a POSIX sh.
missing=""
command -v git >/dev/null 2>&1 || missing="$missing git"
command -v setsid >/dev/null 2>&1 || missing="$missing util-linux"
command -v flock >/dev/null 2>&1 || missing="$missing util-linux"
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  else
    echo "bootstrap: install$missing on this image (no apt-get here)" >&2
    exit 1
  fi
fi

# deferred's folders on the host.
[ -d "$HOME/.deferred/jobs" ] || mkdir -p "$HOME/.deferred/jobs"
[ -d "$HOME/.deferred/cache" ] || mkdir -p "$HOME/.deferred/cache"
echo "bootstrap: ready"
