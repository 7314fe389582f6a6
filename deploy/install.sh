#!/usr/bin/env bash
# Installs Beffroi on a systemd-based Linux distribution without the Debian package: the
# binary, the systemd units, the manual pages, the service account, /etc/beffroi (0750
# root:beffroi) with a default configuration (0600 beffroi:beffroi, never overwritten) and
# /var/lib/beffroi (0700 beffroi:beffroi). The same layout and modes as the .deb's postinst
# (deploy/debian/postinst). It does not start the service.
#
#   deploy/install.sh [--binary PATH]     install (PATH defaults to target/release/beffroi)
#   deploy/install.sh --uninstall         remove the binary, units and manual pages; keep the
#                                         configuration, the data and the account
#
# Environment: DESTDIR=/some/root stages the files under that root for a packager, without
# creating the account or touching systemd (and then runs without root). BINDIR (/usr/bin),
# UNITDIR (/etc/systemd/system) and MANDIR (/usr/share/man) move the installed files; the units
# run /usr/bin/beffroi, so a different BINDIR needs a drop-in overriding ExecStart.
set -euo pipefail

DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-/usr/bin}
UNITDIR=${UNITDIR:-/etc/systemd/system}
MANDIR=${MANDIR:-/usr/share/man}
UNITS=(beffroi.service beffroi-backup.service beffroi-backup.timer)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
binary="$repo/target/release/beffroi"
action=install

die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
    --binary=*) binary=${1#--binary=}; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

if [ -n "$DESTDIR" ]; then
  case "$DESTDIR" in /*) ;; *) die "DESTDIR must be an absolute path: $DESTDIR" ;; esac
  staging=1
else
  staging=""
  [ "$(id -u)" -eq 0 ] || die "must run as root (or with DESTDIR=... to stage files for a package)"
fi

systemd_running() { [ -z "$staging" ] && [ -d /run/systemd/system ]; }

uninstall() {
  if systemd_running; then
    systemctl stop beffroi-backup.timer beffroi-backup.service beffroi.service 2>/dev/null || true
    systemctl disable beffroi-backup.timer beffroi.service 2>/dev/null || true
  fi
  rm -f "$DESTDIR$BINDIR/beffroi"
  for unit in "${UNITS[@]}"; do rm -f "$DESTDIR$UNITDIR/$unit"; done
  rm -f "$DESTDIR$MANDIR"/man1/beffroi.1.gz "$DESTDIR$MANDIR"/man1/beffroi-*.1.gz
  if systemd_running; then systemctl daemon-reload; fi
  say "Removed $BINDIR/beffroi, the systemd units and the manual pages."
  say "KEPT: /etc/beffroi (configuration, keys), /var/lib/beffroi (database, audit signing key,"
  say "backups) and the beffroi account. Delete them yourself once you hold what you must keep."
}

install_files() {
  [ -x "$binary" ] || die "no binary at $binary: build it with 'cargo build --release --locked' or pass --binary PATH"
  "$binary" --version >/dev/null || die "$binary does not run"

  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $work is local to this function
  trap "rm -rf '$work'" EXIT

  install -d -m 0755 "$DESTDIR$BINDIR" "$DESTDIR$UNITDIR" "$DESTDIR$MANDIR/man1"
  install -m 0755 "$binary" "$DESTDIR$BINDIR/beffroi"
  for unit in "${UNITS[@]}"; do
    install -m 0644 "$repo/systemd/$unit" "$DESTDIR$UNITDIR/$unit"
  done

  "$binary" man --dir "$work/man" >/dev/null
  local page count=0
  for page in "$work"/man/beffroi*.1; do
    gzip -9n "$page"
    install -m 0644 "$page.gz" "$DESTDIR$MANDIR/man1/"
    count=$((count + 1))
  done
  [ "$count" -gt 0 ] || die "$binary man wrote no manual page"

  # Account and directories. With DESTDIR the account is the package's business: the staged
  # tree gets the modes, and root as owner.
  if [ -z "$staging" ]; then
    getent group beffroi >/dev/null || groupadd --system beffroi
    if ! getent passwd beffroi >/dev/null; then
      useradd --system --gid beffroi --home-dir /var/lib/beffroi --no-create-home \
        --shell "$(command -v nologin || echo /usr/sbin/nologin)" --comment "Beffroi intranet" beffroi
    fi
    local etc_owner=(-o root -g beffroi) svc_owner=(-o beffroi -g beffroi)
  else
    local etc_owner=() svc_owner=()
  fi
  install -d -m 0750 "${etc_owner[@]}" "$DESTDIR/etc/beffroi"
  chmod 0750 "$DESTDIR/etc/beffroi"
  if [ -d "$DESTDIR/var/lib/beffroi" ]; then
    chmod 0700 "$DESTDIR/var/lib/beffroi"
  else
    install -d -m 0755 "$DESTDIR/var/lib"
    install -d -m 0700 "${svc_owner[@]}" "$DESTDIR/var/lib/beffroi"
  fi

  local config="$DESTDIR/etc/beffroi/beffroi.toml"
  if [ -e "$config" ]; then
    say "Kept the existing configuration $config (not overwritten)."
  else
    "$binary" default-config >"$work/beffroi.toml"
    install -m 0600 "${svc_owner[@]}" "$work/beffroi.toml" "$config"
    say "Wrote the default configuration $config."
  fi

  if systemd_running; then systemctl daemon-reload; fi
  say "Installed $BINDIR/beffroi, ${#UNITS[@]} systemd units in $UNITDIR and $count manual pages."
  if [ -n "$staging" ]; then
    say "Staged under $DESTDIR: the beffroi account was not created and nothing was chowned."
  else
    say "Not started. Next: edit /etc/beffroi/beffroi.toml (at least [server] public_url), then"
    say "  runuser -u beffroi -- beffroi check-config && systemctl enable --now beffroi.service"
  fi
}

if [ "$action" = uninstall ]; then uninstall; else install_files; fi
