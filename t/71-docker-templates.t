#!/usr/bin/perl
# The container image, without Docker: the Dockerfile builds the module the
# way the Makefile does and ships what it needs; its configuration
# (packaging/docker) is rendered the way the official image's entrypoint
# does it (our /docker-entrypoint.d scripts sourced in order, then envsubst
# over /etc/nginx/templates) for every STORAGE_COLD_TYPE, with plain and
# *_FILE secrets, and "nginx -t" runs on the result with the built module,
# in a sandbox laid out like the image (/etc/nginx, /usr/lib/nginx/modules,
# /run/secrets, /var/spool; t/lib/RdxDeploy.pm).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use JSON::PP ();
use Test::More;

use RdxTest;
use RdxDeploy qw(slurp);

my $t = RdxTest->new;
my $dir = $t->dir;
my $repo = RdxDeploy::repo;

my $df = slurp("$repo/Dockerfile");
(my $dfj = $df) =~ s/\\\n/ /g;                  # continuation lines joined
my @stages = split /^(?=FROM\s)/m, $dfj;
my $pre = shift @stages;


# --- the Dockerfile ---------------------------------------------------------

like($pre, qr/^ARG NGINX_VERSION(=\S+)?$/m, 'ARG NGINX_VERSION before FROM');
is(scalar @stages, 2, 'two stages');
like($stages[0], qr/^FROM nginx:\$\{NGINX_VERSION\} AS builder$/m,
     'builder FROM nginx:${NGINX_VERSION}');
like($stages[1], qr/^FROM nginx:\$\{NGINX_VERSION\}$/m,
     'final stage FROM nginx:${NGINX_VERSION}');
like($stages[0], qr{https://nginx\.org/download/nginx-\$\{NGINX_VERSION\}\.tar\.gz},
     'builder downloads the nginx.org source of that version');
like($stages[0], qr/nginx -v .*nginx\/\$\{NGINX_VERSION\}/,
     "builder checks the image's nginx is that version");

# The Makefile's recipe for the module, with its variables expanded.
my $mk = slurp("$repo/Makefile");
my %var = $mk =~ /^(\w+)\s*[:?]?=\s*(\S+)\s*$/mg;
my ($recipe) = $mk =~ /^\$\(OBJS\)\/ngx_http_reductrai_module\.so:[^\n]*\n
                       (?:\t[^\n]*\n)*?\t(tools\/build-module\.sh[^\n]*)/mx;
ok($recipe, "the Makefile builds the module with tools/build-module.sh")
    or diag($mk);
my @mkargs = split ' ', $recipe // '';
shift @mkargs;
s/\$\((\w+)\)/$var{$1} \/\/ "\$($1)"/ge for @mkargs;
is($mkargs[0], '/usr/share/nginx/src', 'Makefile: NGINX_SRC (nginx-dev)');

my ($dkrun) = $stages[0] =~ /^RUN (tools\/build-module\.sh[^\n]*)$/m;
ok($dkrun, 'the Dockerfile builds the module with tools/build-module.sh');
my @dkargs = map { s/^"(.*)"$/$1/r } split ' ', $dkrun // '';
shift @dkargs;
is($dkargs[0], '/usr/src/nginx-${NGINX_VERSION}',
   'Dockerfile: the nginx.org tree it downloaded');
is_deeply([ @dkargs[1 .. $#dkargs] ], [ @mkargs[1 .. $#mkargs] ],
          "same build and output directories as the Makefile's "
          . "(@mkargs[1 .. $#mkargs])");
like($stages[0], qr{^COPY tools/build-module\.sh \./tools/build-module\.sh$}m,
     'the same script, copied from the repository');

my $bm = slurp("$repo/tools/build-module.sh");
like($bm, qr/flags=\(--with-compat --with-threads\)/,
     'build-module.sh: an nginx.org tree is configured --with-compat');
like($bm, qr/--add-dynamic-module=/, 'build-module.sh: --add-dynamic-module');
like($bm, qr/make .*\bmodules$/m, 'build-module.sh: make modules');

# Final stage: the module, its runtime libraries and nothing to build with.
my ($final) = ($stages[1]);
like($final, qr{^COPY --from=builder /src/objs/ngx_http_reductrai_module\.so\s+/usr/lib/nginx/modules/ngx_http_reductrai_module\.so$}m,
     'the .so goes to /usr/lib/nginx/modules');
my ($install) = $final =~ /apt-get install -y --no-install-recommends\s+([^;]*);/;
my %pkgs = map { $_ => 1 } split ' ', $install // '';
is_deeply([ sort keys %pkgs ],
          [ qw(libcurl4 libjansson4 libprotobuf-c1 libsnappy1v5 libzstd1
               zlib1g) ],
          'final stage installs exactly the runtime libraries');

# The tool, by the Makefile's own rule (cli/cli.mk), into /usr/bin.
like($stages[0], qr/^RUN make objs\/reductrai$/m,
     'the Dockerfile builds the reductrai tool with make objs/reductrai');
like(join('', map { slurp($_) } glob "$repo/*/*.mk"),
     qr/^\$\(OBJS\)\/reductrai:/m, 'a Makefile rule builds objs/reductrai');
like($final, qr{^COPY --from=builder /src/objs/reductrai /usr/bin/reductrai$}m,
     'the tool goes to /usr/bin/reductrai');

# Every library the module and the tool link is one of them or the base
# image's (nginx itself links libc and OpenSSL).
# (the release build, as the Dockerfile makes it, also under ASan runs)
for my $bin ("$repo/objs/ngx_http_reductrai_module.so", "$repo/objs/reductrai") {
    my ($rc, $out) = RdxDeploy::run('objdump', '-p', $bin);
    my @needed = $out =~ /^\s*NEEDED\s+(\S+)$/mg;
    ok(@needed >= 4, "$bin links: @needed") or diag($out);
    for my $lib (@needed) {
        my ($rc2, $owner) = RdxDeploy::run('dpkg', '-S', "*/$lib");
        my ($pkg) = $owner =~ /^([^:\s]+)(?::\w+)?:\s/;
        ok(defined $pkg && ($pkgs{$pkg} || $pkg =~ /^(libc6|libssl3)$/),
           "$lib: package " . ($pkg // '?') . ' is in the image');
    }
}

like($final, qr/^EXPOSE 8080\b/m, 'EXPOSE 8080');
like($final, qr{^HEALTHCHECK .*CMD curl -fsS .*http://127\.0\.0\.1:8080/health}m,
     'HEALTHCHECK on /health');
like($final, qr{^VOLUME \["/var/spool/nginx/reductrai"\]$}m, 'spool VOLUME');
like($final, qr/^USER 101:101$/m, 'runs as the image\'s nginx user (101)');
like($final, qr/^STOPSIGNAL SIGQUIT$/m, 'graceful stop (SIGQUIT)');
like($final, qr{rm -f /etc/nginx/conf\.d/default\.conf},
     'the default server on port 80 is removed');
for my $p ('/etc/nginx/conf.d', '/var/cache/nginx', '/var/spool/nginx') {
    like($final, qr/chown -R nginx:nginx[^;]*\Q$p\E/, "$p owned by nginx");
}

my $nc = slurp("$repo/packaging/docker/nginx.conf");
like($nc, qr{^load_module\s+/usr/lib/nginx/modules/ngx_http_reductrai_module\.so;}m,
     'nginx.conf: load_module');
unlike($nc, qr/^\s*user\s/m, 'nginx.conf: no user directive (non-root)');
like($nc, qr{^pid\s+/tmp/}m, 'nginx.conf: pid file writable by nginx');

# What the Dockerfile copies is in the build context (.dockerignore).
{
    my @allow = slurp("$repo/.dockerignore") =~ /^!(\S+)$/mg;
    my @copies = $dfj =~ /^COPY (?!--from)(\S+)/mg;
    cmp_ok(scalar @copies, '>=', 5, 'the Dockerfile copies from the context');
    for my $src (@copies) {
        (my $s = $src) =~ s{/$}{};
        ok((grep { $s eq $_ || index($s, "$_/") == 0 } @allow),
           ".dockerignore admits $src");
    }
}

my %env = ($stages[1] =~ /^ENV (.*)$/m ? $1 : '') =~ /(\w+)=(\S+)/g;
is($env{NGINX_ENTRYPOINT_LOCAL_RESOLVERS}, 1,
   'the official resolver script is on (NGINX_LOCAL_RESOLVERS)');


# --- the Datadog routing is conf/datadog.conf's -----------------------------

{
    my $re = qr/(    # >>> the Datadog routing.*?    # <<< the Datadog routing\n)/s;
    my ($a) = slurp("$repo/conf/datadog.conf") =~ $re;
    my ($b) = slurp("$repo/packaging/docker/templates/reductrai.conf.template")
              =~ $re;
    ok(defined $a && length $a > 1000, 'conf/datadog.conf has the routing');
    is($b, $a, 'the template routes exactly as conf/datadog.conf');
}


# --- the image, laid out in a sandbox ---------------------------------------

my $root = "$dir/image";
make_path("$root/etc-nginx/conf.d", "$root/etc-nginx/reductrai",
          "$root/modules", "$root/entrypoint.d");
system('cp', '-a', "$repo/packaging/docker/templates",
       "$root/etc-nginx/templates") == 0 or die 'cp templates';
system('cp', '-a', "$repo/conf/datadog-sites",
       "$root/etc-nginx/reductrai/datadog-sites") == 0 or die 'cp sites';
system('cp', "$repo/packaging/docker/nginx.conf", '/etc/nginx/mime.types',
       "$root/etc-nginx/") == 0 or die 'cp nginx.conf';
symlink($t->module_path, "$root/modules/ngx_http_reductrai_module.so")
    or die "symlink: $!";
for my $f (glob "$repo/packaging/docker/entrypoint/*") {
    system('cp', '-a', $f, "$root/entrypoint.d/") == 0 or die "cp $f";
    ok(-x $f, "$f is executable");
}
my @ours = map { m{/([^/]+)$} } glob "$repo/packaging/docker/entrypoint/*";
is_deeply([ sort @ours ],
          [ '14-reductrai-secrets.envsh', '16-reductrai-config.envsh' ],
          'entrypoint scripts: sourced (.envsh), the secrets before the '
          . 'official 15-local-resolvers, the config before '
          . '20-envsubst-on-templates');

# Stand-ins for the official image's 15-local-resolvers.envsh and
# 20-envsubst-on-templates.sh, and for the loop of its
# /docker-entrypoint.sh: the behaviour its README documents (.envsh files
# sourced and .sh files run in version order, in one pipeline subshell;
# every *.template rendered with envsubst of the variables that are
# defined, into /etc/nginx/conf.d, keeping subdirectories).
$t->write_file("$root/entrypoint.d/15-local-resolvers.envsh", <<'EOF');
[ "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ] || return 0
NGINX_LOCAL_RESOLVERS=$(awk '$1 == "nameserver" { printf "%s%s", s, $2; s = " " }' /etc/resolv.conf)
export NGINX_LOCAL_RESOLVERS
EOF
$t->write_file("$root/entrypoint.d/20-envsubst-on-templates.sh", <<'EOF');
#!/bin/sh
set -e
vars=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
cd /etc/nginx/templates
find . -type f -name '*.template' | while read -r f; do
    out=/etc/nginx/conf.d/${f#./}
    out=${out%.template}
    mkdir -p "$(dirname "$out")"
    envsubst "$vars" < "$f" > "$out"
done
EOF
chmod 0755, "$root/entrypoint.d/15-local-resolvers.envsh",
            "$root/entrypoint.d/20-envsubst-on-templates.sh";
$t->write_file("$root/docker-entrypoint.sh", <<EOF);
#!/bin/sh
set -e
rm -rf /etc/nginx/conf.d/*
find $root/entrypoint.d -type f | sort -V | while read -r f; do
    case "\$f" in
        *.envsh) . "\$f" ;;
        *.sh) "\$f" ;;
    esac
done
exec "\$@"
EOF
chmod 0755, "$root/docker-entrypoint.sh";

my $secrets = {
    '/run/secrets/datadog_api_key' => "0123456789abcdef0123456789abcdef\n",
    '/run/secrets/s3_access_key'   => "AKIAFILEEXAMPLE\n",
    '/run/secrets/s3_secret_key'   => "fileSecretKey/EXAMPLE+xyz\n",
    '/run/secrets/azure_key'       => "YXp1cmVrZXlmcm9tZmlsZQ==\n",
    '/run/secrets/gcs.json'        => gcs_credentials(),
};

# A service account key file as Google issues them, with a fresh RSA key.
sub gcs_credentials {
    my ($rc, $pem) = RdxDeploy::run('openssl', 'genpkey', '-algorithm', 'RSA',
                                    '-pkeyopt', 'rsa_keygen_bits:2048');
    die "openssl genpkey:\n$pem" if $rc != 0;
    return JSON::PP->new->canonical->encode({
        type => 'service_account', project_id => 'reductrai-test',
        private_key_id => '0123456789abcdef', private_key => $pem,
        client_email => 'reductrai@reductrai-test.iam.gserviceaccount.com',
        token_uri => 'https://oauth2.googleapis.com/token' });
}

my $sb = RdxDeploy::Sandbox->new(
    dir   => $dir,
    hosts => [ RdxDeploy::upstream_hosts(glob "$repo/conf/datadog-sites/*") ],
    tmpfs => [ '/var/spool', '/var/cache', '/var/log', '/run' ],
    overlay => [ '/usr/lib' ],
    binds => [ [ "$root/etc-nginx", '/etc/nginx' ],
               [ "$root/modules", '/usr/lib/nginx/modules' ] ],
    mkdir => [ '/usr/lib/nginx/modules', '/var/log/nginx', '/var/cache/nginx',
               '/var/spool/nginx/reductrai', '/var/spool/archive' ],
    files => $secrets);

my %base = (%env, HOSTNAME => 'reductrai-test-1',
            PATH => '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');

# Runs the entrypoint with this environment (only), then $cmd; returns
# (exit code, output, rendered reductrai.conf, storage include).
sub container {
    my ($vars, @cmd) = @_;
    my %e = (%base, %$vars);
    delete $e{$_} for grep { !defined $e{$_} } keys %e;
    my ($rc, $out) = $sb->run('env', '-i', map({ "$_=$e{$_}" } sort keys %e),
                              "$root/docker-entrypoint.sh", @cmd);
    my $conf = -f "$root/etc-nginx/conf.d/reductrai.conf"
        ? slurp("$root/etc-nginx/conf.d/reductrai.conf") : '';
    my $type = $e{STORAGE_COLD_TYPE} // '';
    my $st = -f "$root/etc-nginx/conf.d/reductrai/storage-$type.conf"
        ? slurp("$root/etc-nginx/conf.d/reductrai/storage-$type.conf") : '';
    return ($rc, $out, $conf, $st);
}

# under ASan (TEST_NGINX_ASAN) nginx needs the runtime preloaded; the
# entrypoint's own tools do not
my %asan = %{ $t->_nginx_env };
my @nginx_t = (%asan ? ('env', map { "$_=$asan{$_}" } sort keys %asan) : (),
               $t->binary, '-t', '-e', '/dev/stderr');

my @cases = (
    { name => 's3, keys in the environment',
      env => { STORAGE_COLD_TYPE => 's3', S3_BUCKET => 'reductrai-production',
               S3_REGION => 'eu-west-1', S3_ACCESS_KEY => 'AKIAENVEXAMPLE',
               S3_SECRET_KEY => 'envSecret/Key+EXAMPLE',
               DATADOG_API_KEY => 'fedcba9876543210fedcba9876543210' },
      storage => qr{^reductrai_storage\s+s3://reductrai-production\s+
                    region=eu-west-1\ access_key=AKIAENVEXAMPLE\ 
                    secret_key=envSecret/Key\+EXAMPLE;$}mx,
      key => 'fedcba9876543210fedcba9876543210' },

    { name => 's3 (MinIO), *_FILE secrets',
      env => { STORAGE_COLD_TYPE => 's3', S3_BUCKET => 'reductrai-production',
               S3_ENDPOINT => 'http://minio:9000', STORAGE_PREFIX => '/eu/',
               S3_ACCESS_KEY_FILE => '/run/secrets/s3_access_key',
               S3_SECRET_KEY_FILE => '/run/secrets/s3_secret_key',
               DATADOG_API_KEY_FILE => '/run/secrets/datadog_api_key' },
      storage => qr{^reductrai_storage\s+s3://reductrai-production/eu\s+
                    region=us-east-1\ endpoint=http://minio:9000\ style=path\ 
                    access_key=AKIAFILEEXAMPLE\ 
                    secret_key_file=/run/secrets/s3_secret_key;$}mx,
      key => '0123456789abcdef0123456789abcdef',
      secret => 'fileSecretKey/EXAMPLE+xyz' },

    { name => 'gcs',
      env => { STORAGE_COLD_TYPE => 'gcs', GCS_BUCKET => 'reductrai-gcs',
               GCS_CREDENTIALS_PATH => '/run/secrets/gcs.json',
               DD_SITE => 'datadoghq.eu' },
      storage => qr{^reductrai_storage\s+gs://reductrai-gcs\s+
                    credentials_file=/run/secrets/gcs\.json;$}mx,
      site => 'datadoghq.eu', key => '' },

    { name => 'azure, key in the environment',
      env => { STORAGE_COLD_TYPE => 'azure', AZURE_STORAGE_ACCOUNT => 'rdx',
               AZURE_CONTAINER => 'reductrai-cold',
               AZURE_STORAGE_KEY => 'ZW52a2V5ZXhhbXBsZQ==' },
      storage => qr{^reductrai_storage\s+azure://rdx/reductrai-cold\ 
                    key=ZW52a2V5ZXhhbXBsZQ==;$}mx, key => '' },

    { name => 'azure, AZURE_STORAGE_KEY_FILE',
      env => { STORAGE_COLD_TYPE => 'azure', AZURE_STORAGE_ACCOUNT => 'rdx',
               AZURE_CONTAINER => 'reductrai-cold',
               AZURE_STORAGE_KEY_FILE => '/run/secrets/azure_key' },
      storage => qr{^reductrai_storage\s+azure://rdx/reductrai-cold\ 
                    key_file=/run/secrets/azure_key;$}mx, key => '',
      secret => 'YXp1cmVrZXlmcm9tZmlsZQ==' },

    { name => 'local (NFS directory)',
      env => { STORAGE_COLD_TYPE => 'local',
               LOCAL_STORAGE_PATH => '/var/spool/archive',
               REDUCTRAI_SPOOL_MAX_SIZE => '2g',
               REDUCTRAI_WORKER_PROCESSES => 2 },
      storage => qr{^reductrai_storage\s+file:///var/spool/archive;$}m,
      key => '' },
);

my %types;
for my $c (@cases) {
    $types{ $c->{env}{STORAGE_COLD_TYPE} }++;
    subtest "STORAGE_COLD_TYPE=$c->{name}" => sub {
        my ($rc, $out, $conf, $st) = container($c->{env}, @nginx_t);

        like($st, $c->{storage}, 'the storage include') or diag($st);
        like($conf, qr{^include\s+/etc/nginx/conf\.d/reductrai/storage-\Q$c->{env}{STORAGE_COLD_TYPE}\E\.conf;}m,
             'reductrai.conf includes it');
        my $site = $c->{site} // 'datadoghq.com';
        like($conf, qr{^include\s+/etc/nginx/reductrai/datadog-sites/\Q$site\E\.conf;}m,
             "Datadog site $site");
        like($conf, qr/^\s*""\s+"\Q$c->{key}\E";/m,
             'the default API key: ' . ($c->{key} || 'none'));
        like($conf, qr/^reductrai_instance\s+reductrai-test-1;/m,
             'instance from HOSTNAME');
        like($conf, qr/^resolver\s+\S+/m, 'a resolver from resolv.conf');
        unlike($conf . $st, qr/\$\{\w+\}/, 'every ${VAR} was substituted');
        if (my $s = $c->{secret}) {
            my ($rc2, $all) = RdxDeploy::run('grep', '-rlF', $s,
                                             "$root/etc-nginx");
            is($all, '', 'the secret from the file is in no rendered file');
        }

        is($rc, 0, 'entrypoint + nginx -t: exit code 0') or diag($out);
        like($out, qr/test is successful/, 'nginx -t: test is successful');
        unlike($out, qr/\[(warn|emerg|alert|crit)\]/, 'no warning');
    };
}

is_deeply([ sort keys %types ], [ qw(azure gcs local s3) ],
          'every storage type was rendered and tested');

{
    my ($rc, $out) = container({ STORAGE_COLD_TYPE => 'local',
                                 REDUCTRAI_WORKER_PROCESSES => 3 }, 'true');
    is($rc, 0, 'local with defaults renders') or diag($out);
    like(slurp("$root/etc-nginx/conf.d/reductrai/storage-local.conf"),
         qr{file:///app/data;}, 'local storage defaults to /app/data');
    like(slurp("$root/etc-nginx/conf.d/reductrai.conf"),
         qr/max_size=1g;/, 'spool max_size defaults to 1g');
    like(slurp("$root/etc-nginx/conf.d/reductrai/main.conf"),
         qr/^worker_processes\s+3;/m, 'REDUCTRAI_WORKER_PROCESSES');
}


# --- mistakes stop the container with a message naming the variable --------

my @bad = (
    [ {}, qr/STORAGE_COLD_TYPE is not set/ ],
    [ { STORAGE_COLD_TYPE => 'ftp' }, qr/STORAGE_COLD_TYPE=ftp is not s3/ ],
    [ { STORAGE_COLD_TYPE => 's3' }, qr/S3_BUCKET is required/ ],
    [ { STORAGE_COLD_TYPE => 's3', S3_BUCKET => 'b', S3_ACCESS_KEY => 'a' },
      qr/S3_ACCESS_KEY is set without S3_SECRET_KEY/ ],
    [ { STORAGE_COLD_TYPE => 's3', S3_BUCKET => 'b', S3_SECRET_KEY => 'x',
        S3_SECRET_KEY_FILE => '/run/secrets/s3_secret_key' },
      qr/both S3_SECRET_KEY and S3_SECRET_KEY_FILE are set/ ],
    [ { STORAGE_COLD_TYPE => 's3', S3_BUCKET => 'b',
        DATADOG_API_KEY_FILE => '/run/secrets/missing' },
      qr/DATADOG_API_KEY_FILE: cannot read/ ],
    [ { STORAGE_COLD_TYPE => 'gcs', GCS_BUCKET => 'b' },
      qr/GCS_CREDENTIALS_PATH is required/ ],
    [ { STORAGE_COLD_TYPE => 'azure', AZURE_STORAGE_ACCOUNT => 'a',
        AZURE_CONTAINER => 'c' }, qr/needs AZURE_STORAGE_KEY/ ],
    [ { STORAGE_COLD_TYPE => 'local', DD_SITE => 'datadoghq.xx' },
      qr/DD_SITE=datadoghq\.xx is not a Datadog site.*datadoghq\.eu/ ],
    [ { STORAGE_COLD_TYPE => 'local', DATADOG_API_KEY => 'x"; evil' },
      qr/DATADOG_API_KEY is not a Datadog API key/ ],
    [ { STORAGE_COLD_TYPE => 's3', S3_BUCKET => 'b', S3_ACCESS_KEY => 'a',
        S3_SECRET_KEY => 'x y' }, qr/S3_SECRET_KEY holds a character/ ],
);

for my $b (@bad) {
    my ($vars, $re) = @$b;
    my ($rc, $out) = container($vars, 'echo', 'NGINX-STARTED');
    my $what = join(' ', map { "$_=$vars->{$_}" } sort keys %$vars) || '(none)';
    isnt($rc, 0, "refused: $what");
    like($out, $re, "message: $re") or diag($out);
    unlike($out, qr/NGINX-STARTED/, 'nginx is not started');
}

$t->check_error_log;
done_testing;
