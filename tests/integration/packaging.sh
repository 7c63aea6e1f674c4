#!/usr/bin/env bash
# The Debian packages and the install rules: cpack builds the four .deb files from this build
# tree; their contents are checked with dpkg-deb (binaries, unit, sysusers/tmpfiles entries,
# conffile, man pages, no server libraries in ota-sign, no fleet simulator); they are installed
# into a throw-away root with dpkg --root (maintainer scripts run with DPKG_ROOT, so the otad
# user and /var/lib/otad appear in that root only) and purged again; the machine's own dpkg
# database and users are compared before and after; `man -l` renders every page without a
# warning; lintian finds nothing but the tags explained in docs/operations.md; and
# `cmake --install` with DESTDIR installs the same files.
set -euo pipefail
: "${OTA_BUILD:?OTA_BUILD must name the build folder}"

T=$(mktemp -d "${TMPDIR:-/tmp}/ota-packaging.XXXXXX")
trap 'rm -rf "$T"' EXIT
FAILS=0
CHECKS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
expect() { if [ "$2" == "$3" ]; then ok; else fail "$1: expected [$2], got [$3]"; fi; }
has() { # WHAT LISTING PATH
	if grep -qE "^$3\$" <<<"$2"; then ok; else fail "$1: $3 missing"; fi
}

host_state() { cat /etc/passwd /etc/group /var/lib/dpkg/status 2>/dev/null | sha256sum; }
BEFORE=$(host_state)

# ---- build the packages ----
(cd "$T" && cpack -G DEB --config "$OTA_BUILD/CPackConfig.cmake" -B "$T/pkgs" >"$T/cpack.log" 2>&1) ||
	{ cat "$T/cpack.log"; fail "cpack failed"; exit 1; }
for p in otad ota-sign otactl ota-agent; do
	f=$(ls "$T/pkgs/${p}_"*.deb 2>/dev/null | head -1)
	[ -n "$f" ] && ok || { fail "no $p package"; continue; }
	eval "DEB_${p//-/_}=\$f"
done
[ "$FAILS" -eq 0 ] || exit 1
list() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./|/|'; }

L=$(list "$DEB_otad")
for f in /usr/sbin/otad /usr/lib/systemd/system/otad.service /usr/lib/sysusers.d/otad.conf \
	/usr/lib/tmpfiles.d/otad.conf /etc/otad/otad.conf /usr/share/man/man8/otad.8.gz \
	/usr/share/man/man5/otad.conf.5.gz /usr/share/doc/otad/copyright \
	/usr/share/doc/otad/changelog.Debian.gz /usr/share/doc/otad/operations.md; do
	has "otad package" "$L" "$f"
done
expect "otad conffiles" /etc/otad/otad.conf "$(dpkg-deb --ctrl-tarfile "$DEB_otad" | tar -xOf - ./conffiles)"
expect "otad postinst creates the user" 1 "$(dpkg-deb --ctrl-tarfile "$DEB_otad" | tar -xOf - ./postinst | grep -c 'systemd-sysusers')"
expect "otad depends on systemd" 1 "$(dpkg-deb -f "$DEB_otad" Depends | grep -c '^systemd, ')"
L=$(list "$DEB_ota_sign")
has "ota-sign package" "$L" /usr/bin/ota-sign
has "ota-sign package" "$L" /usr/share/man/man1/ota-sign.1.gz
D=$(dpkg-deb -f "$DEB_ota_sign" Depends)
if grep -qE 'microhttpd|sqlite|gnutls|curl|jansson|systemd' <<<"$D"; then
	fail "ota-sign depends on server libraries: $D"
else ok; fi
L=$(list "$DEB_otactl")
for f in /usr/bin/otactl /usr/bin/ota-audit-verify /usr/share/bash-completion/completions/otactl \
	/usr/share/man/man1/otactl.1.gz /usr/share/man/man1/ota-audit-verify.1.gz; do
	has "otactl package" "$L" "$f"
done
L=$(list "$DEB_ota_agent")
has "ota-agent package" "$L" /usr/bin/ota-agent
has "ota-agent package" "$L" /usr/share/man/man1/ota-agent.1.gz
ALL=$(for f in "$T"/pkgs/*.deb; do list "$f"; done)
expect "no bench tool is packaged" 0 "$(grep -c 'fleet-sim\|loadgen' <<<"$ALL" || true)"

# ---- install into a throw-away root, run, purge ----
R=$T/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/log"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
DPKG=(dpkg --root="$R" --log="$T/dpkg.log" --force-not-root --force-script-chrootless
	--force-depends --force-unsafe-io)
"${DPKG[@]}" -i "$T"/pkgs/*.deb >"$T/dpkg.out" 2>&1 || { cat "$T/dpkg.out"; fail "dpkg -i failed"; }
expect "installed in the root" "install ok installed" "$(dpkg-query --root="$R" -W -f='${Status}' otad)"
expect "conffile registered" "/etc/otad/otad.conf" "$(dpkg-query --root="$R" -W -f='${Conffiles}' otad | awk '{print $1}')"
expect "the otad user exists in the root" 1 "$(grep -c '^otad:' "$R/etc/passwd" || true)"
OTAD_UID=$(awk -F: '$1 == "otad" {print $3}' "$R/etc/passwd")
expect "/var/lib/otad in the root, owned by the root's otad" "750 $OTAD_UID" "$(stat -c '%a %u' "$R/var/lib/otad" 2>/dev/null || true)"
expect "the installed otad runs" 0 "$("$R/usr/sbin/otad" --help >/dev/null 2>&1; echo $?)"
expect_v=$("$R/usr/bin/otactl" --version 2>&1 || true)
[[ $expect_v =~ ^otactl\ [0-9] ]] && ok || fail "installed otactl --version: $expect_v"
expect "the installed otad accepts the packaged config" 0 \
	"$("$R/usr/sbin/otad" --check-config --config "$R/etc/otad/otad.conf" >/dev/null 2>&1; echo $?)"

bash -n "$R/usr/share/bash-completion/completions/otactl" && ok || fail "the bash completion does not parse"
# The completion offers the commands and a group's subcommands (a minimal _init_completion).
C=$(bash -c '_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
	_filedir() { :; }
	. "$1"
	COMP_WORDS=(otactl rollouts w); COMP_CWORD=2; _otactl; echo "${COMPREPLY[*]}"
	COMP_WORDS=(otactl de); COMP_CWORD=1; _otactl; echo "${COMPREPLY[*]}"' _ "$R/usr/share/bash-completion/completions/otactl")
expect "bash completion" "watch
devices deltas deploy deployments" "$C"

# man -l renders each page without warnings.
for m in man8/otad.8 man5/otad.conf.5 man1/ota-sign.1 man1/otactl.1 man1/ota-audit-verify.1 man1/ota-agent.1; do
	page=$R/usr/share/man/$m.gz
	W=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >"$T/page.txt" || echo "man failed")
	expect "man -l $m: no warnings" "" "$W"
	grep -q '^NAME' "$T/page.txt" && ok || fail "man -l $m: no NAME section"
done

"${DPKG[@]}" --purge otad ota-sign otactl ota-agent >"$T/dpkg.out" 2>&1 || { cat "$T/dpkg.out"; fail "dpkg --purge failed"; }
expect "purged: the conffile is gone" no "$([ -e "$R/etc/otad/otad.conf" ] && echo yes || echo no)"
expect "purged: no binaries left" "" "$(find "$R/usr" -type f 2>/dev/null)"

# ---- lintian: nothing but the explained tags (docs/operations.md, "Packages") ----
if command -v lintian >/dev/null; then
	LT=$(lintian --tag-display-limit 0 --suppress-tags initial-upload-closes-no-bugs \
		"$T"/pkgs/*.deb 2>&1 | grep -v 'running with root privileges' || true)
	expect "lintian" "" "$LT"
else
	fail "lintian is not installed (scripts/install-deps.sh installs it)"
fi

# ---- cmake --install into a DESTDIR ----
DESTDIR=$T/inst cmake --install "$OTA_BUILD" --prefix /usr >/dev/null
for f in /usr/sbin/otad /usr/bin/ota-sign /usr/bin/otactl /usr/bin/ota-agent /usr/bin/ota-audit-verify \
	/usr/lib/systemd/system/otad.service /etc/otad/otad.conf /usr/share/man/man1/otactl.1.gz; do
	[ -e "$T/inst$f" ] && ok || fail "cmake --install: $f missing"
done
[ ! -e "$T/inst/usr/bin/ota-fleet-sim" ] && ok || fail "cmake --install installs the fleet simulator"

expect "the machine's users and dpkg database are untouched" "$BEFORE" "$(host_state)"
echo "packaging.sh: $CHECKS checks passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
