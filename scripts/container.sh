#!/usr/bin/env bash
# Builds and runs drkit's container image (Containerfile) with podman on a machine with no registry:
# the Debian bookworm base images are made from Debian's packages by mmdebstrap and imported.
#
#   container.sh base                 localhost/debian:bookworm-slim (mmdebstrap minbase, slim's dpkg excludes)
#   container.sh build                localhost/drkit:<version> from dist/ (scripts/package.sh, run if needed)
#   container.sh build --from-source  the same, compiled in the Containerfile's build stage (a local
#                                     bookworm builder with this machine's Swift toolchain and packages mounted)
#   container.sh run ARGS...          podman run --rm --network host localhost/drkit:<version> ARGS...
#
# PODMAN_EXTRA_RUN_ARGS adds options to `run` (mounts, environment). Prints the image name on build.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(tr -d ' \n' < VERSION)
image=localhost/drkit:$version
base=localhost/debian:bookworm-slim
builder=localhost/drkit-swift-builder:6.3-bookworm

# podman's default limits for containers (1M open files, 4M processes) are above what this
# sandbox's processes may set (no CAP_SYS_RESOURCE, pid_max 32768), and crun refuses its hybrid
# cgroups; runc with limits inside the real ones runs. Harmless on an ordinary host.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
podman_flags=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=4096:4096")
if command -v runc > /dev/null; then podman_flags+=(--runtime "$(command -v runc)"); fi

debootstrap_image() {  # name, extra mmdebstrap arguments...
    local name=$1; shift
    mmdebstrap --variant=minbase --quiet --format=tar \
        --aptopt='APT::Install-Recommends "false"' \
        "$@" bookworm - http://deb.debian.org/debian \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main" \
        | podman import --change 'CMD ["/bin/bash"]' - "$name" > /dev/null
}

make_base() {
    echo "container: making $base with mmdebstrap" >&2
    # As debian:bookworm-slim: no manuals, documentation or translations.
    debootstrap_image "$base" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*'
}

make_builder() {
    echo "container: making $builder with mmdebstrap (the toolchain is mounted at build time)" >&2
    # What the Swift toolchain needs to run and link, as the official swift:6.3-bookworm image has it.
    # GitHub is not reachable: git reads the packages from the machine's copy, mounted at /opt/swift-packages.
    debootstrap_image "$builder" \
        --include=binutils,gcc,libc6-dev,libgcc-12-dev,libstdc++-12-dev,libcurl4,libxml2-dev,libedit2,libsqlite3-0,libncurses6,libpython3.11,tzdata,unzip,ca-certificates,git \
        --customize-hook='chroot "$1" git config --system url./opt/swift-packages/.insteadOf https://github.com/'
}

case "${1:-}" in
    base)
        make_base
        ;;
    build)
        podman image exists "$base" || make_base
        commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
        args=(--network host --build-arg "BASE_IMAGE=$base" --build-arg "DRKIT_BUILD_COMMIT=$commit")
        if [ "${2:-}" = --from-source ]; then
            podman image exists "$builder" || make_builder
            [ -d /opt/swift/usr/bin ] && [ -d /opt/swift-packages ] || { echo "container: --from-source needs /opt/swift and /opt/swift-packages" >&2; exit 2; }
            args+=(--build-arg "SWIFT_IMAGE=$builder" --build-arg PACKAGE_FROM=build
                   --volume /opt/swift:/opt/swift:ro --volume /opt/swift-packages:/opt/swift-packages:ro)
        else
            ls dist/drkit_"$version"_amd64.deb > /dev/null 2>&1 || bash scripts/package.sh > /dev/null
            args+=(--build-arg PACKAGE_FROM=prebuilt)
        fi
        podman build "${podman_flags[@]}" "${args[@]}" -f Containerfile -t "$image" . >&2
        echo "$image"
        ;;
    run)
        shift
        # shellcheck disable=SC2086  # PODMAN_EXTRA_RUN_ARGS is a list of options
        exec podman run --rm "${podman_flags[@]}" --network host ${PODMAN_EXTRA_RUN_ARGS:-} "$image" "$@"
        ;;
    *)
        echo "usage: container.sh base | build [--from-source] | run ARGS..." >&2
        exit 2
        ;;
esac
