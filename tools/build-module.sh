#!/bin/bash
# Builds objs/ngx_http_reductrai_module.so against an nginx source tree.
# Used by the Makefile and by the Dockerfile, so both build the same way.
#
#   tools/build-module.sh NGINX_SRC BUILD_DIR OUT_DIR [EXTRA_CC_OPT [LD_OPT]]
#
# NGINX_SRC is Debian's /usr/share/nginx/src (nginx-dev), whose conf_flags
# holds the flags the installed nginx was configured with, or an nginx.org
# tree, configured here --with-compat --with-threads so the module loads
# into any binary of that version built --with-compat.

set -euo pipefail

src=$1
build=$2
out=$3
extra_cc=${4:-}
ld_opt=${5:-}

top=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -x "$src/configure" ] && [ ! -x "$src/auto/configure" ]; then
    echo "no nginx source tree at $src (install nginx-dev or set NGINX_SRC)" >&2
    exit 1
fi

if [ -f "$src/conf_flags" ]; then
    mapfile -t flags < <(bash -c '. "$1/conf_flags"; \
                                  printf "%s\n" "${NGX_CONF_FLAGS[@]}"' _ "$src")
else
    flags=(--with-compat --with-threads)
fi

cc_opt="-O2 -g -Wextra -fstack-protector-strong -D_FORTIFY_SOURCE=2 $extra_cc"
stamp="$build/.reductrai-configured"
want="$cc_opt|$ld_opt|${flags[*]}|$(cat "$top/config")|$(ls "$top/ngx_http_reductrai_module" "$top/ngx_http_reductrai_module/core")|$(cat "$top"/ngx_http_reductrai_module/proto/*.proto | cksum)"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    rm -rf "$build"
    mkdir -p "$build"
    cp -a "$src/." "$build/"
    [ -x "$build/configure" ] || cp "$build/auto/configure" "$build/configure"
    echo "configuring nginx in $build"
    if ! (cd "$build" && ./configure "${flags[@]}" \
              --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
              --add-dynamic-module="$top" > configure.log 2>&1)
    then
        tail -30 "$build/configure.log" >&2
        exit 1
    fi
    printf '%s' "$want" > "$stamp"
fi

make -s -C "$build" -f objs/Makefile modules
mkdir -p "$out"

# a new file renamed into place: a running nginx keeps its mapping of the
# old one, which copying over it would change under its feet
cp "$build/objs/ngx_http_reductrai_module.so" "$out/.ngx_http_reductrai_module.so.$$"
mv -f "$out/.ngx_http_reductrai_module.so.$$" "$out/ngx_http_reductrai_module.so"
