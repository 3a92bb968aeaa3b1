# The official nginx image with ngx_http_reductrai_module baked in.
#
#   docker build -t reductrai/proxy:latest .
#   docker build --build-arg NGINX_VERSION=1.27.4 -t reductrai/proxy:1.27 .
#   docker run -p 8080:8080 -e STORAGE_COLD_TYPE=s3 -e S3_BUCKET=... \
#       reductrai/proxy:latest
#
# The module is built against the nginx.org source of exactly the nginx in
# the base image (--with-compat), by tools/build-module.sh, the script the
# Makefile's "module" target runs.  Configuration: /etc/nginx/templates/
# (packaging/docker/templates), rendered at start from the environment;
# docs/DEPLOY.md lists the variables.

ARG NGINX_VERSION=1.26.3


FROM nginx:${NGINX_VERSION} AS builder

ARG NGINX_VERSION
# optional: the sha256 of nginx-${NGINX_VERSION}.tar.gz, checked when set
ARG NGINX_SHA256=

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates curl gcc libc6-dev make \
        libpcre2-dev zlib1g-dev libssl-dev \
        libzstd-dev libcurl4-openssl-dev libjansson-dev \
        protobuf-c-compiler libprotobuf-c-dev libsnappy-dev; \
    rm -rf /var/lib/apt/lists/*

RUN set -eux; \
    mkdir -p /usr/src; \
    cd /usr/src; \
    curl -fsSL -o nginx.tar.gz \
        "https://nginx.org/download/nginx-${NGINX_VERSION}.tar.gz"; \
    if [ -n "$NGINX_SHA256" ]; then \
        echo "$NGINX_SHA256  nginx.tar.gz" | sha256sum -c -; \
    fi; \
    tar -xzf nginx.tar.gz; \
    rm nginx.tar.gz; \
    test "$(nginx -v 2>&1)" = "nginx version: nginx/${NGINX_VERSION}"

WORKDIR /src
COPY config ./config
COPY ngx_http_reductrai_module ./ngx_http_reductrai_module
COPY tools/build-module.sh ./tools/build-module.sh

# the Makefile's recipe: tools/build-module.sh $(NGINX_SRC) $(BUILD)/nginx
# $(OBJS), with NGINX_SRC the nginx.org tree (configure --with-compat
# --with-threads --add-dynamic-module=/src, make modules)
RUN tools/build-module.sh "/usr/src/nginx-${NGINX_VERSION}" build/nginx objs

# the reductrai tool (list, verify, query, replay the archive), by the
# Makefile's own rule
COPY Makefile ./Makefile
COPY cli ./cli
RUN make objs/reductrai


FROM nginx:${NGINX_VERSION}

# the runtime libraries of the module and the tool (libcurl4 and zlib1g
# come with the image)
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        libzstd1 libcurl4 libjansson4 zlib1g libprotobuf-c1 libsnappy1v5; \
    rm -rf /var/lib/apt/lists/*

COPY --from=builder /src/objs/ngx_http_reductrai_module.so \
     /usr/lib/nginx/modules/ngx_http_reductrai_module.so
COPY --from=builder /src/objs/reductrai /usr/bin/reductrai
COPY packaging/docker/nginx.conf /etc/nginx/nginx.conf
COPY packaging/docker/templates/ /etc/nginx/templates/
COPY conf/datadog-sites/ /etc/nginx/reductrai/datadog-sites/
COPY packaging/docker/entrypoint/ /docker-entrypoint.d/

# Unprivileged: nginx runs as the image's "nginx" user (uid 101), which
# owns what it writes: the rendered configuration (/etc/nginx/conf.d), the
# temporary files (/var/cache/nginx), the spool and the local archive.
RUN set -eux; \
    rm -f /etc/nginx/conf.d/default.conf; \
    chmod 0755 /docker-entrypoint.d/*-reductrai-*.envsh; \
    mkdir -p /var/spool/nginx/reductrai /var/cache/nginx /app/data; \
    chown -R nginx:nginx /etc/nginx/conf.d /var/cache/nginx \
                         /var/spool/nginx /app/data; \
    chmod 0700 /var/spool/nginx/reductrai; \
    nginx -V 2>&1 | grep -q -- '--with-compat'; \
    reductrai --help > /dev/null

ENV DD_SITE=datadoghq.com \
    NGINX_ENTRYPOINT_LOCAL_RESOLVERS=1

# open and sealed-but-unshipped segments: give each container its own
VOLUME ["/var/spool/nginx/reductrai"]

USER 101:101

# 8080: agents, /health and /livez; 9145: /metrics for Prometheus
EXPOSE 8080 9145

HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/health || exit 1

# graceful stop: workers seal and ship their segments before exiting
STOPSIGNAL SIGQUIT

CMD ["nginx", "-g", "daemon off;"]
