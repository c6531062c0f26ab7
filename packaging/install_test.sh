#!/usr/bin/env bash
# Installs the build into a scratch DESTDIR and checks what a packager gets: the binary, the
# config (and that `gatehouse check` passes it), the systemd unit's commands, the man page, the
# license and docs. Registered with CTest as install_test (packaging/CMakeLists.txt).
#   install_test.sh BUILD_DIR BINDIR SYSCONFDIR UNITDIR MANDIR DOCDIR PREFIX MANPAGE(0|1)
set -euo pipefail
build=$1 bindir=$2 sysconfdir=$3 unitdir=$4 mandir=$5 docdir=$6 prefix=$7 manpage=$8
[[ $unitdir == /* ]] || unitdir="$prefix/$unitdir"

dest=$(mktemp -d "${TMPDIR:-/tmp}/gh-install-XXXXXX")
trap 'rm -rf "$dest"' EXIT
failures=0
fail() { echo "install_test: FAIL: $*" >&2; failures=$((failures + 1)); }
need_file() { [[ -f "$dest$1" && -s "$dest$1" ]] || fail "$1 is not installed (or empty)"; }
need_line() {  # FILE LINE: the exact line is in the installed file
  grep -qxF -- "$2" "$dest$1" || fail "$1 lacks the line: $2"
}

DESTDIR="$dest" cmake --install "$build" > "$dest.log" 2>&1 || { cat "$dest.log" >&2; rm -f "$dest.log"; exit 1; }
rm -f "$dest.log"

bin="$bindir/gatehouse" config="$sysconfdir/gatehouse/gatehouse.yaml" unit="$unitdir/gatehouse.service"
[[ -x "$dest$bin" ]] || fail "$bin is not installed as an executable"
need_file "$config"
need_file "$unit"
need_file "$docdir/LICENSE"
need_file "$docdir/README.md"
for doc in configuration wire operations; do need_file "$docdir/$doc.md"; done
need_file "$docdir/examples/seed.yaml"
grep -q "Apache License" "$dest$docdir/LICENSE" || fail "$docdir/LICENSE is not the Apache License"

if [[ -x "$dest$bin" ]]; then
  version=$("$dest$bin" --version) || fail "$bin --version failed"
  [[ $version == "gatehouse "* ]] || fail "$bin --version printed: $version"
  if [[ -f "$dest$config" ]]; then
    # The installed config passes check with its secret set, and names the variable without it.
    out=$(JWT_SECRET=install-test "$dest$bin" check -c "$dest$config" 2>&1) || fail "check of $config failed: $out"
    if out=$(env -u JWT_SECRET "$dest$bin" check -c "$dest$config" 2>&1); then
      fail "check of $config passed without JWT_SECRET"
    elif [[ $out != *JWT_SECRET* ]]; then
      fail "check of $config without JWT_SECRET does not name it: $out"
    fi
  fi
fi

if [[ -f "$dest$unit" ]]; then
  need_line "$unit" "ExecStartPre=$bin check -c $config"
  need_line "$unit" "ExecStart=$bin run -c $config"
  need_line "$unit" 'ExecReload=/bin/kill -HUP $MAINPID'
  need_line "$unit" "KillSignal=SIGTERM"
  need_line "$unit" "Restart=on-failure"
  need_line "$unit" "NoNewPrivileges=yes"
  need_line "$unit" "ProtectSystem=strict"
  need_line "$unit" "WantedBy=multi-user.target"
  ! grep -n "@[A-Z]*@" "$dest$unit" >&2 || fail "$unit has unreplaced @VARIABLES@"
fi

if [[ $manpage == 1 ]]; then
  page="$mandir/man1/gatehouse.1"
  need_file "$page"
  if [[ -f "$dest$page" ]]; then
    head -1 "$dest$page" | grep -q '^\.TH GATEHOUSE 1 .*"gatehouse [0-9]' || fail "$page: no .TH line with the version"
    # Every subcommand of --help has its own section, with its own options.
    for cmd in run check demo route token; do
      grep -qx "\.SS gatehouse $cmd" "$dest$page" || fail "$page has no section for gatehouse $cmd"
    done
    grep -qF -- '\-\-secret' "$dest$page" || fail "$page lacks the token command's --secret"
    grep -qF "$config" "$dest$page" || fail "$page does not name $config"
    ! grep -n "@[A-Z]*@" "$dest$page" >&2 || fail "$page has unreplaced @VARIABLES@"
    # groff reads it without a warning (-ww: all warnings; -z: no output).
    warnings=$(groff -man -ww -z "$dest$page" 2>&1) || fail "groff failed on $page: $warnings"
    [[ -z $warnings ]] || fail "groff warns on $page: $warnings"
  fi
fi

if ((failures > 0)); then
  echo "install_test: $failures failure(s); installed files:" >&2
  (cd "$dest" && find . -type f | sort) >&2
  exit 1
fi
echo "install_test: ok ($(cd "$dest" && find . -type f | wc -l) files installed)"
