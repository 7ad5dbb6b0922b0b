#!/usr/bin/env bash
# The database's files with real users: a member of group `greylisting` plants symbolic links and
# FIFOs in the shared 2770 directory, and root's grey_listing refuses them (exit 2) without
# creating anything at a link's target; the filter, run as that member, fails open on them. Root
# creating a new database directory gives root:greylisting 2770 and 0660 files under umask 077
# and 000, and the filter run as the member can then use the database.
# As root: creates the system group `greylisting` when missing (as the Debian package's postinst
# does) and a throwaway user in it, and removes what it created at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

E2E_NAME=files
source tests/e2e/lib.sh

require_root "it creates a group and a user and runs the filter as that user"
ensure_packages runuser:util-linux mkfifo:coreutils timeout:coreutils
build_debug_binaries

MEMBER=gl-e2e-files
W=$(mktemp -d /tmp/gl-e2e-files.XXXXXX)
# Traversable by the member (the binaries live under the repository, which must be too).
chmod 755 "$W"
CREATED_GROUP=
CREATED_USER=
cleanup() {
    rm -rf "$W"
    if [ -n "$CREATED_USER" ]; then userdel "$MEMBER" || true; fi
    if [ -n "$CREATED_GROUP" ]; then groupdel greylisting || true; fi
}
trap cleanup EXIT

if ! getent group greylisting >/dev/null; then
    groupadd --system greylisting
    CREATED_GROUP=1
fi
if ! getent passwd "$MEMBER" >/dev/null; then
    useradd --system --gid greylisting --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$MEMBER"
    CREATED_USER=1
fi
[ "$(id -gn "$MEMBER")" = greylisting ] || fail "$MEMBER is not in group greylisting"
runuser -u "$MEMBER" -- test -x "$BIN/greylisting-filter" ||
    fail "$MEMBER cannot run $BIN/greylisting-filter (is the repository traversable?)"

# gl ARGS...: root's grey_listing with no configuration file, bounded (a FIFO could block it).
gl() {
    env -i PATH=/usr/bin:/bin GREY_LISTING_CONF=/nonexistent/grey_listing.conf \
        timeout 60 "$BIN/grey_listing" "$@"
}
# member COMMAND...: runs a command as the group member.
member() { runuser -u "$MEMBER" -- "$@"; }
# filter DB: the filter as a Plesk mail handler, as the member; sets STATUS and writes its
# stderr (log lines, then the verdict) to $W/filter.err.
filter() {
    STATUS=0
    printf 'Received: from mx.sender.example (HELO mx) (203.0.113.9)\n  by mx with SMTP\nSubject: hi\n\nbody\n' |
        member env -i PATH=/usr/bin:/bin GREY_LISTING_LOG=stderr GREY_LISTING_DB="$1" \
            GREY_LISTING_CONF=/nonexistent/grey_listing.conf \
            timeout 60 "$BIN/greylisting-filter" ctx a@b.example u@local.example \
            2>"$W/filter.err" || STATUS=$?
}
# refused WHAT NEEDLE ARGS...: root's grey_listing ARGS must exit 2 naming NEEDLE.
refused() {
    local what=$1 needle=$2 status=0
    shift 2
    gl "$@" >"$W/out" 2>"$W/err" || status=$?
    [ "$status" = 2 ] || fail "$what: exit $status, want 2 ($(cat "$W/out" "$W/err"))"
    grep -qF -- "$needle" "$W/err" || fail "$what: the message does not name $needle: $(cat "$W/err")"
    grep -q '^An error occurred during ' "$W/err" || fail "$what: unclear message: $(cat "$W/err")"
}

# The shared directory, as the package sets it up.
D="$W/shared"
mkdir "$D"
chgrp greylisting "$D"
chmod 2770 "$D"
DB="$D/greylist.db"

say "a member's symbolic link for the database: refused, nothing created at its target"
member ln -s "$W/victim" "$DB"
refused "link to a missing file" "$DB" --db "$DB" -i
refused "link to a missing file" "symbolic link" --db "$DB" -u -status off
[ ! -e "$W/victim" ] || fail "root created the link's target $W/victim"
install -m 600 /dev/null "$W/root-empty"
member rm "$DB"
member ln -s "$W/root-empty" "$DB"
refused "link to root's empty file" "symbolic link" --db "$DB" -i
[ ! -s "$W/root-empty" ] || fail "root's empty file was turned into a database"
filter "$DB"
[ "$STATUS" = 1 ] && [ "$(tail -n1 "$W/filter.err")" = SKIP ] ||
    fail "filter on a planted link: exit $STATUS: $(cat "$W/filter.err")"
grep -q 'fail open' "$W/filter.err" || fail "filter did not log why it passed: $(cat "$W/filter.err")"
member rm "$DB"

say "a member's symbolic link for -wal, -shm or -journal: refused, nothing created"
for suffix in -wal -shm -journal; do
    member ln -s "$W/victim$suffix" "$DB$suffix"
    refused "planted $suffix" "$DB$suffix" --db "$DB" -i
    [ ! -e "$W/victim$suffix" ] || fail "root created $W/victim$suffix"
    [ ! -e "$DB" ] || fail "root created $DB beside a planted $suffix"
    member rm "$DB$suffix"
done

say "a member's FIFO for the database or its -wal: refused, no hang"
member mkfifo "$DB"
refused "FIFO database" "FIFO" --db "$DB" -i
member rm "$DB"
gl --db "$DB" -i >/dev/null || fail "root could not create $DB"
member rm -f "$DB-wal"
member mkfifo "$DB-wal"
refused "FIFO -wal" "$DB-wal" --db "$DB" -u -status off
member rm "$DB-wal"

say "root creates a new database directory: root:greylisting 2770, files 0660, whatever the umask"
for mask in 077 000; do
    top="$W/new$mask"
    new="$top/lib/greylist.db"
    (umask "$mask" && gl --db "$new" -u -status on) >/dev/null || fail "umask $mask: grey_listing failed"
    for dir in "$top" "$top/lib"; do
        [ "$(stat -c '%a %U %G' "$dir")" = "2770 root greylisting" ] ||
            fail "umask $mask: $dir is $(stat -c '%a %U %G' "$dir"), want 2770 root greylisting"
    done
    for file in "$new" "$new-wal" "$new-shm"; do
        [ "$(stat -c '%a %U %G' "$file")" = "660 root greylisting" ] ||
            fail "umask $mask: $file is $(stat -c '%a %U %G' "$file"), want 660 root greylisting"
    done
    world=$(find "$top" -perm -o+w | head -n1)
    [ -z "$world" ] || fail "umask $mask: $world is world-writable"
    # The member's filter can now open and write the database root created: a real decision.
    filter "$new"
    [ "$STATUS" = 2 ] && [ "$(tail -n1 "$W/filter.err")" = DEFER ] ||
        fail "umask $mask: the member's filter got exit $STATUS: $(cat "$W/filter.err")"
done

say "root's --backup: mode 0640, group greylisting"
gl --db "$W/new077/lib/greylist.db" --backup "$W/backup.db" >/dev/null || fail "--backup failed"
[ "$(stat -c '%a %U %G' "$W/backup.db")" = "640 root greylisting" ] ||
    fail "backup is $(stat -c '%a %U %G' "$W/backup.db"), want 640 root greylisting"

say "PASS"
