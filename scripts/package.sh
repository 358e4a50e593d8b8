#!/usr/bin/env bash
# Builds drkit for installation, from a clean checkout, into dist/:
#   drkit_<version>_amd64.deb            /usr/bin/drkit, completions, man pages, manifests, runbooks, systemd units
#   drkit-<version>-linux-x86_64.tar.gz  the same binary, completions, man pages and manifests
#   SHA256SUMS
# The binary carries the Swift runtime (--static-swift-stdlib) and links the distribution's libpq,
# libcurl, OpenSSL, zstd, libdeflate and zlib; the .deb's Depends come from those libraries
# (dpkg-shlibdeps). The version is the VERSION file; the commit and the build date are stamped in.
# Needs: Swift 6 on PATH, dpkg-dev, lintian (run when present, or always with DRKIT_LINTIAN=required).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=$(tr -d ' \n' < VERSION)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([~+][0-9A-Za-z.~+]+)?$ ]] || { echo "package.sh: VERSION '$version' is not a Debian upstream version" >&2; exit 2; }
# DRKIT_BUILD_COMMIT for a build without the git history (the container's build stage).
if [ -n "${DRKIT_BUILD_COMMIT:-}" ]; then
    commit=$DRKIT_BUILD_COMMIT
else
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit-dirty"; fi
fi
# SOURCE_DATE_EPOCH (reproducible builds) wins over the clock.
build_date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
arch=amd64
[ "$(uname -m)" = x86_64 ] || { echo "package.sh: builds amd64 packages on x86_64 only (this is $(uname -m))" >&2; exit 2; }

scratch=${DRKIT_PACKAGE_SCRATCH:-$root/.build-release}
dist=$root/dist
work=$(mktemp -d "${TMPDIR:-/tmp}/drkit-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== building drkit $version ($commit, $build_date): release, Swift runtime linked in" >&2
# The stamp is a header in the build folder (Sources/CBuildInfo includes it when found): the flag
# stays the same from build to build, so only that one C file recompiles.
mkdir -p "$scratch/stamp"
printf '#define DRKIT_BUILD_COMMIT "%s"\n#define DRKIT_BUILD_DATE "%s"\n' "$commit" "$build_date" > "$scratch/stamp/drkit_build_stamp.h.new"
cmp -s "$scratch/stamp/drkit_build_stamp.h.new" "$scratch/stamp/drkit_build_stamp.h" || mv "$scratch/stamp/drkit_build_stamp.h.new" "$scratch/stamp/drkit_build_stamp.h"
rm -f "$scratch/stamp/drkit_build_stamp.h.new"
stamp_flags=(-Xcc "-I$scratch/stamp")
# Removed first: SwiftPM can keep a binary linked earlier against the shared Swift runtime.
rm -f "$scratch/release/drkit"
swift build -c release --static-swift-stdlib --scratch-path "$scratch" "${stamp_flags[@]}" --product drkit >&2
binary="$scratch/release/drkit"
"$binary" --version | grep -qF "$version (commit $commit" || { echo "package.sh: the built binary does not report $version ($commit)" >&2; exit 1; }
if ldd "$binary" | grep -q 'libswift'; then echo "package.sh: the binary still links the Swift runtime dynamically" >&2; exit 1; fi

stage=$work/deb
install -D -m 0755 "$binary" "$stage/usr/bin/drkit"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/drkit"

echo "== man pages (argument-parser's manual generator) and completions" >&2
# The plugin builds the package and runs the tool's --experimental-dump-help; one page per subcommand.
# A debug build in the usual .build folder (what the tests already built; the pages depend only on
# the command-line interface) costs seconds, where a release build without --static-swift-stdlib
# (which only `swift build` takes) would compile everything again.
swift package plugin generate-manual --configuration debug --multi-page \
    --date "${build_date%%T*}" --section 1 --authors "the drkit authors" >&2
manual="$root/.build/plugins/GenerateManual/outputs/drkit"
ls "$manual"/drkit.1 "$manual"/drkit.backup.1 > /dev/null
"$stage/usr/bin/drkit" --generate-completion-script bash | sed "1{/^#!/d}" | install -D -m 0644 /dev/stdin "$stage/usr/share/bash-completion/completions/drkit"
"$stage/usr/bin/drkit" --generate-completion-script zsh  | install -D -m 0644 /dev/stdin "$stage/usr/share/zsh/vendor-completions/_drkit"
"$stage/usr/bin/drkit" --generate-completion-script fish | install -D -m 0644 /dev/stdin "$stage/usr/share/fish/vendor_completions.d/drkit.fish"
install -d -m 0755 "$stage/usr/share/man/man1"
# The generator names pages drkit.key.rotate.1; man pages of subcommands are drkit-key-rotate(1), as git's are:
# NAME says drkit-key-rotate (what whatis and apropos index; "drkit key rotate" is no entry lexgrog can
# read), SYNOPSIS the command as it is typed.
for page in "$manual"/*.1; do
    name=$(basename "$page" .1)
    [ "$name" != drkit.help ] || continue
    sed -e '/^\.Dt /{s/\./-/g;s/^-Dt/.Dt/}' -e '/^\.Xr drkit\.help /d' -e '/^\.Xr drkit\./{s/\./-/g;s/^-Xr/.Xr/}' \
        -e "/^\\.Sh NAME/{n;s/^\\.Nm .*/.Nm ${name//./-}/}" -e "/^\\.Sh SYNOPSIS/{n;s/^\\.Nm\$/.Nm \"${name//./ }\"/}" "$page" \
        | gzip -9n > "$stage/usr/share/man/man1/${name//./-}.1.gz"
done
install -d -m 0755 "$stage/usr/share/drkit" "$stage/usr/share/doc/drkit" "$stage/usr/lib/systemd/system"
cp -r manifests cutover-checklists "$stage/usr/share/drkit/"
cp -r docs/runbooks "$stage/usr/share/doc/drkit/"
cp README.md docs/FORMAT.md docs/ARCHITECTURE.md docs/monitoring.md "$stage/usr/share/doc/drkit/"
cp manifests/schedules/systemd/* "$stage/usr/lib/systemd/system/"
# Debian keeps documentation over 4 KiB compressed.
find "$stage/usr/share/doc/drkit" -type f -name '*.md' -size +4k -exec gzip -9n {} +
sed "s/@YEAR@/$(date -u -d "$build_date" +%Y)/" scripts/packaging/copyright > "$stage/usr/share/doc/drkit/copyright"
{
    echo "drkit ($version) unstable; urgency=medium"
    echo
    echo "  * Release $version, built from commit $commit."
    echo
    echo " -- drkit maintainers <drkit@example.org>  $(date -u -R -d "$build_date")"
} | gzip -9n > "$stage/usr/share/doc/drkit/changelog.gz"
install -D -m 0644 scripts/packaging/lintian-overrides "$stage/usr/share/lintian/overrides/drkit"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f ! -path "$stage/usr/bin/*" -exec chmod 0644 {} +

# Depends from the binary's real shared libraries: dpkg-shlibdeps maps each NEEDED library to the
# package providing it, with the version its symbols need.
mkdir -p "$work/shlibs/debian"
printf 'Source: drkit\n\nPackage: drkit\nArchitecture: any\n' > "$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e "$stage/usr/bin/drkit" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
install -d -m 0755 "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<EOF
Package: drkit
Version: $version
Architecture: $arch
Maintainer: drkit maintainers <drkit@example.org>
Installed-Size: $installed_size
Depends: $depends
Recommends: postgresql-client
Section: admin
Priority: optional
Homepage: https://github.com/drkit/drkit
Description: PostgreSQL backup, restore and disaster-recovery rehearsal
 drkit takes consistent, compressed, encrypted backups of PostgreSQL databases
 into a directory or any S3-compatible storage, verifies and restores them in
 parallel, archives committed transactions for point-in-time recovery, and runs
 disaster-recovery drills and promotion gates that leave signed-off evidence:
 RTO, RPO, row-count parity and an audit trail.
 .
 pg_dump (postgresql-client) of the server's major version is used for DDL.
EOF
(cd "$stage" && find usr -type f -exec md5sum {} + | sort -k2) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

rm -rf "$dist"
mkdir -p "$dist"
deb="drkit_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$dist/$deb" >&2

tarname="drkit-$version-linux-x86_64"
tarstage=$work/$tarname
install -D -m 0755 "$stage/usr/bin/drkit" "$tarstage/bin/drkit"
cp -r "$stage/usr/share/bash-completion/completions" "$tarstage/completions-bash"
mkdir -p "$tarstage/completions" "$tarstage/man/man1"
mv "$tarstage/completions-bash/drkit" "$tarstage/completions/drkit.bash"
rmdir "$tarstage/completions-bash"
cp "$stage/usr/share/zsh/vendor-completions/_drkit" "$stage/usr/share/fish/vendor_completions.d/drkit.fish" "$tarstage/completions/"
cp "$stage"/usr/share/man/man1/*.gz "$tarstage/man/man1/"
cp -r manifests cutover-checklists README.md "$tarstage/"
mkdir -p "$tarstage/docs"
cp -r docs/runbooks docs/FORMAT.md docs/ARCHITECTURE.md docs/monitoring.md "$tarstage/docs/"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$build_date" -C "$work" -czf "$dist/$tarname.tar.gz" "$tarname"
(cd "$dist" && sha256sum "$deb" "$tarname.tar.gz" > SHA256SUMS)

if command -v lintian > /dev/null; then
    echo "== lintian" >&2
    lintian --fail-on error --tag-display-limit 0 "$dist/$deb" >&2
elif [ "${DRKIT_LINTIAN:-}" = required ]; then
    echo "package.sh: lintian is not installed" >&2; exit 1
fi
echo "== dist/" >&2
ls -l "$dist" >&2
echo "$dist/$deb"
