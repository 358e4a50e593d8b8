#!/usr/bin/env bash
# drkit as a user installs it, tested end to end (scripts/test.sh runs it after the suites, with the
# test services up):
#   1. scripts/package.sh builds dist/ (lintian must report no error);
#   2. the .deb is installed with apt-get, and the installed /usr/bin/drkit runs with no Swift toolchain
#      on PATH or LD_LIBRARY_PATH: --version, key generate, backup -> verify -> restore -> parity
#      against the test cluster, man pages and completions;
#   3. `apt-get purge` leaves none of its files behind;
#   4. the Containerfile passes hadolint and the Kubernetes manifests name this version's image; the container image (scripts/container.sh) backs up to a mounted folder and to the S3 test
#      server, restores both, and parity compares them with the source.
# Needs root (apt-get, podman) and the environment scripts/test.sh exports.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
: "${DRKIT_TEST_PGHOST:?run through scripts/test.sh (it starts PostgreSQL and S3 and exports their settings)}"
: "${DRKIT_TEST_S3_ENDPOINT:?run through scripts/test.sh}"
version=$(tr -d ' \n' < VERSION)
commit=$(git rev-parse --short=12 HEAD)

work=$(mktemp -d "${TMPDIR:-/tmp}/drkit-package-test.XXXXXX")
chmod 0755 "$work"
databases=(pkgtest_source pkgtest_deb pkgtest_image_dir pkgtest_image_s3)
export PGHOST=$DRKIT_TEST_PGHOST PGPORT=$DRKIT_TEST_PGPORT PGUSER=$DRKIT_TEST_PGUSER PGPASSWORD=$DRKIT_TEST_PGPASSWORD
sql() { psql -X -q -v ON_ERROR_STOP=1 -d "${2:-postgres}" -c "$1"; }
cleanup() {
    for db in "${databases[@]}"; do sql "DROP DATABASE IF EXISTS $db" > /dev/null 2>&1 || true; done
    if dpkg-query -W -f='${Status}' drkit 2>/dev/null | grep -q installed; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq drkit > /dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
step() { echo "== package-test: $*" >&2; }

if dpkg-query -W -f='${Status}' drkit 2>/dev/null | grep -q installed; then
    fail "a drkit package is already installed on this machine; remove it first (apt-get purge drkit)"
fi

step "Containerfile lint and the manifests' image"
hadolint Containerfile || fail "hadolint Containerfile"
for manifest in manifests/schedules/kubernetes/*.yaml; do
    grep -q "image: registry.example.com/drkit:$version " "$manifest" || fail "$manifest does not name the image drkit:$version"
done

step "building the packages"
deb=$(DRKIT_LINTIAN=required bash scripts/package.sh)
[ -f "$deb" ] && [ -f dist/SHA256SUMS ] && [ -f "dist/drkit-$version-linux-x86_64.tar.gz" ] || fail "dist/ is incomplete"
(cd dist && sha256sum --check --quiet SHA256SUMS) || fail "SHA256SUMS does not match dist/"
tar -tzf "dist/drkit-$version-linux-x86_64.tar.gz" > "$work/tarball.txt"
grep -qx "drkit-$version-linux-x86_64/bin/drkit" "$work/tarball.txt" || fail "the tarball has no bin/drkit"
[ "$(basename "$deb")" = "drkit_${version}_amd64.deb" ] || fail "package name $(basename "$deb") does not carry VERSION $version"

step "installing $(basename "$deb") with apt-get"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install"; }
installed_files=$(dpkg-query -L drkit)

# The installed program, as a user's shell runs it: no Swift anywhere, only the password in PG*.
mkdir -p "$work/home"
plain() {
    env -i HOME="$work/home" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" PGPASSWORD="$PGPASSWORD" "$@"
}
if ldd /usr/bin/drkit | grep -E 'libswift|libFoundation|/opt/swift|not found' >&2; then fail "/usr/bin/drkit needs the Swift runtime or a missing library"; fi
plain drkit --version | tee "$work/version" >&2
grep -qF "$version (commit $commit" "$work/version" || fail "--version does not name $version and commit $commit"

step "backup -> verify -> restore -> parity with the installed drkit"
sql "CREATE DATABASE pkgtest_source"
sql "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], doc jsonb);
     INSERT INTO items SELECT g, 'item ' || g, g * 1.25, ARRAY['a' || g % 7], jsonb_build_object('n', g) FROM generate_series(1, 20000) g;
     CREATE TABLE events (id bigserial PRIMARY KEY, item bigint REFERENCES items, at timestamptz DEFAULT now());
     INSERT INTO events (item) SELECT g % 20000 + 1 FROM generate_series(1, 5000) g;" pkgtest_source
plain drkit key generate --out "$work/home/drkit.key" >&2
plain drkit backup --db "dbname=pkgtest_source" --repo "$work/repo" --key-file "$work/home/drkit.key" >&2
plain drkit verify latest --repo "$work/repo" --key-file "$work/home/drkit.key" >&2
sql "CREATE DATABASE pkgtest_deb"
plain drkit restore latest --repo "$work/repo" --key-file "$work/home/drkit.key" --target "dbname=pkgtest_deb" >&2
plain drkit parity --source "dbname=pkgtest_source" --target "dbname=pkgtest_deb" --checksum --csv "$work/rowcount.csv" >&2 || fail "parity after the round trip"

step "man pages and completions"
for page in drkit drkit-backup drkit-key-rotate drkit-stream-run; do
    man -w "$page" > /dev/null 2>&1 || fail "no man page $page"
done
plain env MANPAGER=cat MANWIDTH=100 man drkit-backup > "$work/man.txt" 2> "$work/man.err" || { cat "$work/man.err" >&2; fail "man drkit-backup"; }
grep -q -- "--repo" "$work/man.txt" && grep -qi "backup" "$work/man.txt" || fail "man drkit-backup does not render the options"
[ ! -s "$work/man.err" ] || { cat "$work/man.err" >&2; fail "man drkit-backup printed warnings"; }
plain bash -c '. /usr/share/bash-completion/completions/drkit && complete -p drkit' > /dev/null || fail "the bash completion does not load"
if command -v zsh > /dev/null; then plain zsh -n /usr/share/zsh/vendor-completions/_drkit || fail "zsh completion syntax"; fi
if command -v fish > /dev/null; then plain fish -n /usr/share/fish/vendor_completions.d/drkit.fish || fail "fish completion syntax"; fi

step "apt-get purge leaves nothing behind"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq drkit > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get purge"; }
! dpkg-query -W -f='${Status}' drkit 2>/dev/null | grep -q installed || fail "drkit is still installed"
left=()
while IFS= read -r path; do
    # Folders the package shares with others (/usr, /usr/share/man/man1, ...) stay.
    if [ -e "$path" ] && ! [ -d "$path" ]; then left+=("$path"); fi
    case "$path" in /usr/share/drkit*|/usr/share/doc/drkit*) [ ! -e "$path" ] || left+=("$path") ;; esac
done <<< "$installed_files"
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"

step "the container image"
bash scripts/container.sh build > "$work/image"
mkdir -p "$work/image-repo"
install -m 0400 "$work/home/drkit.key" "$work/image.key"
chown 10001:10001 "$work/image-repo" "$work/image.key"
in_image() {
    PODMAN_EXTRA_RUN_ARGS="-v $work/image-repo:/repo -v $work/image.key:/keys/drkit.key:ro -e PGHOST -e PGPORT -e PGUSER -e PGPASSWORD -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION" \
    AWS_ACCESS_KEY_ID=$DRKIT_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$DRKIT_TEST_S3_SECRET_KEY AWS_REGION=us-east-1 \
        bash scripts/container.sh run "$@"
}
[[ "$(in_image --version)" == "$version (commit $commit"* ]] || fail "the image's drkit does not name $version and commit $commit"
[ "$(PODMAN_EXTRA_RUN_ARGS="--entrypoint id" bash scripts/container.sh run -u)" = 10001 ] || fail "the image does not run as uid 10001"
s3repo="s3://$DRKIT_TEST_S3_BUCKET/package-test-$(date +%s)-$$?endpoint=$DRKIT_TEST_S3_ENDPOINT"
for repo in /repo "$s3repo"; do
    target=pkgtest_image_dir
    [ "$repo" = /repo ] || target=pkgtest_image_s3
    in_image backup --db "dbname=pkgtest_source" --repo "$repo" --key-file /keys/drkit.key --quiet >&2
    in_image verify latest --repo "$repo" --key-file /keys/drkit.key --quiet >&2
    sql "CREATE DATABASE $target"
    in_image restore latest --repo "$repo" --key-file /keys/drkit.key --target "dbname=$target" --quiet >&2
    in_image parity --source "dbname=pkgtest_source" --target "dbname=$target" --checksum --csv /repo/rowcount.csv >&2 || fail "parity after the image's round trip through $repo"
done
[ -n "$(ls -A "$work/image-repo")" ] || fail "the image wrote nothing into the mounted folder"
step "passed"
