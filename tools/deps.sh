#!/bin/sh
# Installs the Debian packages a target needs, and only those missing.
# Usage: tools/deps.sh build|run|test|bench|deb ...

set -eu

build="gcc make nginx nginx-dev libzstd-dev libcurl4-openssl-dev libjansson-dev
       zlib1g-dev libssl-dev libpcre2-dev
       protobuf-c-compiler libprotobuf-c-dev libsnappy-dev"
run="$build zstd jq curl"
test="$run perl nghttp2-client strace faketime protobuf-compiler
      clang libclang-rt-14-dev cppcheck
      yamllint prometheus haproxy gettext-base openssl debhelper dpkg-dev fakeroot
      awscli"
bench="$test wrk hey nghttp2-client linux-perf valgrind"
deb="$build debhelper dpkg-dev fakeroot"

want=""
for target in "$@"; do
    eval "want=\"\$want \$$target\""
done

missing=""
for pkg in $want; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
         | grep -q "install ok installed"
    then
        missing="$missing $pkg"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages:$missing (run as root or install them)" >&2
        exit 1
    fi
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # the nginx package starts the system's server on port 80: stop it
    case " $missing " in
        *" nginx "*) service nginx stop >/dev/null 2>&1 || true ;;
    esac
    # so do prometheus and haproxy (the tests only run promtool, haproxy -c)
    for svc in prometheus haproxy; do
        case " $missing " in
            *" $svc "*) service "$svc" stop >/dev/null 2>&1 || true ;;
        esac
    done
fi
