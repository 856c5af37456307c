#!/bin/sh
# Installs the Debian packages imagesd needs, only when a check shows one missing.
# usage: mk/deps.sh build|test
# "build" covers compiling and running the server; "test" adds the test tooling.
set -eu
want=${1:-build}
missing=""

need_pc() { # pkg-config module, package
    pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"
}
need_file() { # path, package
    [ -e "$1" ] || missing="$missing $2"
}
need_cmd() { # command, package
    command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}

need_cmd cc gcc
need_cmd pkg-config pkg-config
if command -v pkg-config >/dev/null 2>&1; then
    need_pc libmicrohttpd libmicrohttpd-dev
    need_pc jansson libjansson-dev
    need_pc libpng libpng-dev
    need_pc libjpeg libjpeg62-turbo-dev
    need_pc libwebp libwebp-dev
    need_pc sqlite3 libsqlite3-dev
    need_pc libcrypto libssl-dev
    need_pc freetype2 libfreetype-dev
    need_pc openblas libopenblas-dev
    need_pc libcurl libcurl4-openssl-dev
    need_pc libpcre2-8 libpcre2-dev
    need_pc inih libinih-dev
    need_pc zlib zlib1g-dev
else
    missing="$missing libmicrohttpd-dev libjansson-dev libpng-dev libjpeg62-turbo-dev libwebp-dev \
libsqlite3-dev libssl-dev libfreetype-dev libopenblas-dev libcurl4-openssl-dev libpcre2-dev libinih-dev \
zlib1g-dev"
fi
need_file /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core

if [ "$want" = test ]; then
    if command -v pkg-config >/dev/null 2>&1; then
        need_pc cmocka libcmocka-dev
    else
        missing="$missing libcmocka-dev"
    fi
    need_cmd node nodejs
    need_cmd npm npm
    need_cmd curl curl
    need_cmd dwebp webp
    need_cmd python3 python3
fi

[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: not root; run: apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
