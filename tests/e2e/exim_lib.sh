# A real Exim 4 without installing it, shared by tests/e2e/exim.sh and tests/e2e/guides.sh
# (sourced after lib.sh). Debian's exim4-daemon-light conflicts with Postfix's
# mail-transport-agent, so its packages are downloaded and unpacked into a directory instead;
# Exim then runs host-checking sessions (`exim4 -C <config> -bh <ip>`: a full SMTP dialogue on
# stdin/stdout, ACLs and their ${readsocket} for real, nothing delivered) inside a private mount
# namespace whose /etc/resolv.conf points at tests/e2e/stub_dns.py, so a client's host name is
# looked up and verified as on a real server.

# wait_apt_idle: waits (bounded) until no apt or dpkg holds the package system's front-end lock,
# so a download does not read package lists another apt is rewriting.
wait_apt_idle() {
    local lock=/var/lib/dpkg/lock-frontend
    [ -e "$lock" ] || return 0
    for _ in $(seq 600); do
        # apt takes an fcntl lock on the file: test it the same way (and let it go at once).
        python3 -c 'import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)' "$lock" 2>/dev/null && return 0
        sleep 1
    done
    fail "another apt or dpkg has held $lock for 10 minutes"
}

# exim_unpack DIR: downloads Debian's exim4-base, exim4-daemon-light and exim4-config into DIR,
# unpacks them into DIR/root, makes sure every library the binary needs is there (libidn12 is
# the one a Postfix machine lacks) and creates Exim's system user. Sets EXIM to the binary and
# EXIM_ROOT to the unpacked tree.
exim_unpack() {
    local dir=$1 deb missing
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
        fail "apt-get and dpkg-deb are needed to fetch Exim"
    command -v unshare >/dev/null && command -v mount >/dev/null ||
        fail "unshare and mount (util-linux) are needed for Exim's private /etc/resolv.conf"
    mkdir -p "$dir/debs" "$dir/root"
    wait_apt_idle
    (cd "$dir/debs" && apt-get download -q exim4-base exim4-daemon-light exim4-config >"$dir/download.log" 2>&1) ||
        { cat "$dir/download.log"; fail "apt-get download of Exim's packages failed"; }
    for deb in "$dir"/debs/*.deb; do
        dpkg-deb -x "$deb" "$dir/root" || fail "dpkg-deb -x $deb failed"
    done
    EXIM_ROOT="$dir/root"
    EXIM="$EXIM_ROOT/usr/sbin/exim4"
    [ -x "$EXIM" ] || fail "no exim4 binary in the unpacked packages"
    # ldd's output is read whole first: `ldd | grep -q` under pipefail fails whenever grep stops
    # at its match before ldd has written the rest (SIGPIPE), which skipped the install.
    libs=$(ldd "$EXIM") || fail "ldd $EXIM failed"
    if grep -q 'libidn\.so\.12 => not found' <<<"$libs"; then
        wait_apt_idle
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libidn12 >/dev/null ||
            fail "apt-get install libidn12 (needed by exim4) failed"
    fi
    missing=$(ldd "$EXIM" | sed -n 's/^[[:space:]]*\([^ ]*\) => not found$/\1/p')
    [ -z "$missing" ] || fail "exim4 needs libraries that are not installed: $(echo $missing)"
    # Debian's user (adduser refuses the capital letter); kept for the next run.
    getent group Debian-exim >/dev/null || groupadd --system Debian-exim ||
        fail "cannot create the group Debian-exim"
    getent passwd Debian-exim >/dev/null ||
        useradd --system -g Debian-exim -d /var/spool/exim4 -M -s /usr/sbin/nologin Debian-exim ||
        fail "cannot create the user Debian-exim"
    "$EXIM" -C /dev/null -bV >"$dir/version.log" 2>&1 || { cat "$dir/version.log"; fail "exim4 -bV failed"; }
    grep -q '^Exim version 4\.' "$dir/version.log" || fail "not an Exim 4: $(head -n1 "$dir/version.log")"
}

# exim_resolver DIR DNS_IP: writes DIR/resolv.conf pointing only at the stub DNS server on
# DNS_IP (sessions mount it over /etc/resolv.conf).
exim_resolver() {
    printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$2" >"$1/resolv.conf"
}

# exim_namespace DIR COMMAND...: runs COMMAND (at most 60 s) in a private mount namespace where
# DIR/resolv.conf is /etc/resolv.conf and, when DIR/aliases exists, it is /etc/aliases.
EXIM_NAMESPACE='mount --bind "$1/resolv.conf" /etc/resolv.conf || exit 97
if [ -f "$1/aliases" ]; then mount --bind "$1/aliases" /etc/aliases || exit 97; fi
shift
exec "$@"'
exim_namespace() {
    local dir=$1
    shift
    timeout 60 unshare --mount sh -c "$EXIM_NAMESPACE" sh "$dir" "$@"
}

# exim_session DIR IP SMTP [EXIM_ARGS...]: one host-checking session of the Exim configured in
# DIR/exim.conf as if from IP, the SMTP lines (printf format) on stdin; prints Exim's output.
exim_session() {
    local dir=$1 ip=$2 smtp=$3
    shift 3
    # shellcheck disable=SC2059
    printf "$smtp" | exim_namespace "$dir" "$EXIM" -C "$dir/exim.conf" "$@" -bh "$ip" 2>&1
}

# exim_guide_acl PORT: the ACL file of docs/integration/exim.md (its `exim-acl` block), asking
# the policy server on 127.0.0.1:PORT instead of the guide's 10023.
exim_guide_acl() {
    local text
    text=$(awk '
        $0 == "<!-- tested: exim-acl -->" { state = 1; next }
        state == 1 && /^```/ { state = 2; next }
        state == 1 { exit }
        state == 2 && /^```/ { exit }
        state == 2 { print }' docs/integration/exim.md)
    grep -q 'inet:127\.0\.0\.1:10023' <<<"$text" ||
        fail "docs/integration/exim.md: the exim-acl block does not ask inet:127.0.0.1:10023"
    sed "s#inet:127\.0\.0\.1:10023#inet:127.0.0.1:$1#" <<<"$text"
}
