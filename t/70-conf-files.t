#!/usr/bin/perl
# conf/: every example configuration passes "nginx -t" with the built module
# as an operator installs it (http-context files included from a main
# config, as Debian's nginx.conf includes conf.d/*.conf; full configs as
# they are), datadog.conf with every Datadog site, HAProxy's with
# "haproxy -c"; then datadog.conf's routing runs against local intakes: each
# Agent path reaches the right intake host with the right Host/SNI name,
# stream label and API key.
#
# Absolute paths and Datadog's host names are served by a sandbox (a private
# mount namespace: t/lib/RdxDeploy.pm), so nothing here touches the machine.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP ();
use Test::More;

use RdxTest qw(wait_for);
use RdxDeploy qw(slurp);

my $t = RdxTest->new;
my $dir = $t->dir;
my $repo = RdxDeploy::repo;
my $nginx = $t->binary;

# "nginx -t" passed: exit 0, both success lines, no warning.
sub nginx_t_ok {
    my ($conf, $name) = @_;
    my ($rc, $out) = $t->nginx_t(conf => $conf);
    subtest "nginx -t: $name" => sub {
        is($rc, 0, 'exit code 0') or diag($out);
        like($out, qr/syntax is ok/, 'syntax is ok');
        like($out, qr/test is successful/, 'test is successful');
        unlike($out, qr/\[(warn|emerg|alert|crit)\]/, 'no warning');
    };
    return $rc == 0;
}

my @confs = sort glob("$repo/conf/*.conf");
my @sites = sort glob("$repo/conf/datadog-sites/*.conf");
my %have = map { m{/([^/]+)$}; ($1 => 1) } @confs;

ok($have{$_}, "conf/$_ exists") for qw(datadog.conf lb.conf demo.conf);
ok(-f "$repo/conf/haproxy.cfg", 'conf/haproxy.cfg exists');
cmp_ok(scalar @sites, '>=', 7, 'a site file for every Datadog site');


# --- the sandbox -----------------------------------------------------------

# Relative paths in the conf files are relative to /etc/nginx, the
# directory of nginx.conf; here that is the test dir, where the wrapper
# configs are.
system('cp', '-a', "$repo/conf/datadog-sites", "$dir/datadog-sites") == 0
    or die "cp datadog-sites";
make_path("$dir/ssl");
RdxDeploy::self_signed("$dir/ssl", 'reductrai', 'reductrai.company.com');

my @hosts = RdxDeploy::upstream_hosts(@confs, @sites);
ok(scalar(grep { /^metrics\.agent\./ } @hosts) >= 7,
   'intake host names of every site collected') or diag("@hosts");

my $sb = RdxDeploy::Sandbox->new(
    dir   => $dir,
    hosts => \@hosts,
    tmpfs => [ '/var/spool', '/var/log', '/var/cache', '/etc/nginx' ],
    mkdir => [ '/var/log/nginx' ],
    files => { '/etc/nginx/reductrai/s3-secret-key' =>
                   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n" });

{
    my ($rc, $out) = $sb->run('sh', '-c',
        'getent hosts metrics.agent.datadoghq.com; ls /var/spool | wc -l');
    is($rc, 0, 'the sandbox works (unshare --mount, as root)') or diag($out);
    like($out, qr/^127\.0\.0\.1\s+metrics\.agent\.datadoghq\.com/m,
         'sandbox: Datadog host names resolve locally');
}

{
    local $ENV{TEST_NGINX_BINARY} = $sb->wrap($nginx);


    # --- every http-context conf file, as it is ----------------------------

    for my $conf (grep { slurp($_) !~ /^\s*events\s*\{/m } @confs) {
        my ($name) = $conf =~ m{/([^/]+)$};
        my $wrap = $t->write_config(http => "include $conf;",
                                    file => "wrap-$name");
        nginx_t_ok($wrap, "conf/$name");
    }


    # --- datadog.conf with every site (file:// storage, so that the routing
    # is checked while the cloud backends are being written) -------------

    my $dd = slurp("$repo/conf/datadog.conf");
    like($dd, qr{^include\s+datadog-sites/datadoghq\.com\.conf;}m,
         'datadog.conf names its site in one include');
    (my $code = $dd) =~ s/^\s*#.*\n//mg;
    is(scalar(() = $code =~ /datadoghq|ddog-gov/g), 1,
       'the site appears nowhere else in datadog.conf');

    for my $site (@sites) {
        my ($name) = $site =~ m{/([^/]+)\.conf$};
        (my $v = $dd) =~ s{^include\s+datadog-sites/\S+;}
                          {include datadog-sites/$name.conf;}m;
        $v =~ s{^reductrai_storage\s[^;]*;}
               {reductrai_storage file:///var/spool/reductrai-archive;}ms;
        my $f = $t->write_file("$dir/datadog-$name.conf", $v);
        my $wrap = $t->write_config(http => "include $f;",
                                    file => "wrap-datadog-$name.conf");
        nginx_t_ok($wrap, "datadog.conf, site $name, file:// storage");
    }
}


# --- site files differ only in the site ------------------------------------

{
    my $ref = slurp("$repo/conf/datadog-sites/datadoghq.com.conf");
    (my $norm = $ref) =~ s/\Qdatadoghq.com\E/SITE/g;

    for my $site (@sites) {
        my ($name) = $site =~ m{/([^/]+)\.conf$};
        (my $s = slurp($site)) =~ s/\Q$name\E/SITE/g;
        is($s, $norm, "datadog-sites/$name.conf: same as the others but "
                      . "for the site");
        for my $h (qw(metrics.agent api agent-http-intake.logs trace.agent
                      intake.profile)) {
            like(slurp($site), qr/^\s*server\s+\Q$h.$name\E:443;/m,
                 "$name: $h.$name:443");
        }
    }
}


# --- demo.conf: a full config, relative to the prefix ----------------------

{
    make_path(map { "$dir/$_" } qw(objs var/run var/log var/tmp var/archive
                                   var/spool));
    symlink($t->module_path, "$dir/objs/ngx_http_reductrai_module.so")
        or die "symlink: $!";
    nginx_t_ok("$repo/conf/demo.conf", 'conf/demo.conf');
}


# --- conf/haproxy.cfg -------------------------------------------------------

{
    my ($crt, $key) = ("$dir/ssl/reductrai.crt", "$dir/ssl/reductrai.key");
    my $pem = slurp($crt) . slurp($key);
    my $hsb = RdxDeploy::Sandbox->new(
        dir   => $dir,
        tmpfs => [ '/etc/haproxy' ],
        files => { '/etc/haproxy/certs/reductrai.pem' => $pem });

    my ($rc, $out) = $hsb->run('haproxy', '-c', '-f',
                               "$repo/conf/haproxy.cfg");
    is($rc, 0, 'haproxy -c -f conf/haproxy.cfg') or diag($out);
    like($out, qr/Configuration file is valid/, 'HAProxy: valid');
    unlike($out, qr/\[(WARNING|ALERT)\]/, 'HAProxy: no warning')
        or diag($out);

    my $cfg = slurp("$repo/conf/haproxy.cfg");
    like($cfg, qr/^\s*option httpchk GET \/health$/m, 'httpchk GET /health');
    like($cfg, qr/^\s*http-check expect status 200$/m, 'expects 200');
    like($cfg, qr/^\s*balance leastconn$/m, 'leastconn');
    is(scalar(() = $cfg =~ /^\s*server \S+ \S+:8080 check\b/mg), 3,
       'three checked instances');
}


# --- lb.conf: the seed's load balancer --------------------------------------

{
    my $lb = slurp("$repo/conf/lb.conf");
    like($lb, qr/^\s*least_conn;/m, 'lb: least_conn');
    is(scalar(() = $lb =~ /^\s*server\s+\S+:8080 max_fails=3 fail_timeout=30s;/mg),
       3, 'lb: three instances with max_fails and fail_timeout');
    like($lb, qr/proxy_next_upstream\s+error\ timeout\ http_503
                 \ non_idempotent;/x,
         'lb: POSTs are retried on the next instance (non_idempotent), '
         . 'not on the vendor\'s 502/504');
    like($lb, qr/error_page\s+502 504 = \@unavailable;/,
         'lb: no instance left is a 503 with Retry-After, not a 502');
    like($lb, qr/location = \/health \{/, 'lb: /health');
}


# --- datadog.conf routes each Agent path to its intake ---------------------

# The same file with the intakes on local ports: the site file's servers
# become 127.0.0.1 ports, https becomes http (the mocks speak plain HTTP;
# the TLS settings are checked by nginx -t above), the archive goes to
# file://, the server listens on a test port, and a default API key is set.

my %intake = (metrics => 'metrics.agent', api => 'api',
              logs => 'agent-http-intake.logs', traces => 'trace.agent',
              profiles => 'intake.profile');
my %up;
for my $n (sort keys %intake) {
    $up{$n} = $t->start_upstream(name => $n, status => 202,
                                 body => '{"status":"ok"}');
}

{
    (my $site = slurp("$repo/conf/datadog-sites/datadoghq.com.conf"))
        =~ s{server\s+(\S+):443;}{
            my $h = $1;
            my ($n) = grep { $h eq "$intake{$_}.datadoghq.com" } keys %intake;
            die "unknown intake $h" unless $n;
            'server 127.0.0.1:' . $t->port($n) . ';';
        }ge;
    $t->write_file("$dir/datadog-sites/local.conf", $site);

    my $v = slurp("$repo/conf/datadog.conf");
    $v =~ s{^include\s+datadog-sites/\S+;}{include datadog-sites/local.conf;}m;
    $v =~ s{^reductrai_storage\s[^;]*;}
           {reductrai_storage file://$dir/archive;}ms;
    $v =~ s{^reductrai_spool\s[^;]*;}{reductrai_spool $dir/spool;}m;
    $v =~ s{proxy_pass\s+https://datadog_}{proxy_pass http://datadog_}g;
    $v =~ s{access_log\s+/var/log/nginx/}{access_log $dir/}g;
    $v =~ s{listen\s+8080;}{listen 127.0.0.1:%%PORT_http%%;};
    $v =~ s{(""\s+)"";}{$1"0123456789abcdef0123456789abcdef";}
        or die 'no default key in datadog.conf';
    $v =~ s{resolver\s+\S+}{resolver 127.0.0.1};

    $t->mkdir_worker('archive');
    $t->mkdir_worker('spool');
    $t->write_config(http => $v);
    $t->start;
}

my $json = JSON::PP->new;
my @cases = (
    # method, path, intake, stream, has own key
    [ POST => '/api/v1/series',           metrics  => 'metrics',  1 ],
    [ POST => '/api/v2/series',           metrics  => 'metrics',  1 ],
    [ POST => '/api/beta/sketches',       metrics  => 'metrics',  1 ],
    [ POST => '/api/v1/check_run',        metrics  => 'checks',   1 ],
    [ POST => '/api/v2/service_checks',   metrics  => 'checks',   1 ],
    [ POST => '/intake/',                 metrics  => 'events',   1 ],
    [ POST => '/api/v2/events',           metrics  => 'events',   1 ],
    [ POST => '/api/v1/metadata',         metrics  => 'metadata', 1 ],
    [ POST => '/api/v2/host_metadata',    metrics  => 'metadata', 1 ],
    [ GET  => '/api/v1/validate',         api      => undef,      1 ],
    [ POST => '/api/v2/logs',             logs     => 'logs',     0 ],
    [ POST => '/api/v0.2/traces',         traces   => 'traces',   1 ],
    [ POST => '/api/v0.2/stats',          traces   => 'traces',   1 ],
    [ POST => '/api/v2/profile',          profiles => 'profiles', 1 ],
    [ POST => '/api/v1/unknown_endpoint', metrics  => 'other',    1 ],
);

my %streams;
for my $c (@cases) {
    my ($method, $path, $n, $stream, $own) = @$c;
    my $id = "route-$method-$path";
    my @h = ('X-Test-Id' => $id, 'Content-Type' => 'application/json');
    push @h, 'DD-API-KEY' => 'agentkey' if $own;

    my $r = $t->http(method => $method, path => $path, headers => \@h,
                     $method eq 'POST' ? (body => '{"path":"' . $path . '"}')
                                       : ());
    is($r->{status}, 202, "$method $path: answered by an intake")
        or diag(explain $r);

    my ($seen) = grep { ($_->{headers}{'x-test-id'} // '') eq $id }
                 $up{$n}->requests;
    ok($seen, "$method $path: reached the $n intake") or next;
    is($seen->{headers}{host}, "$intake{$n}.datadoghq.com",
       "$method $path: Host (and TLS name) $intake{$n}.datadoghq.com");
    is($seen->{headers}{'dd-api-key'},
       $own ? 'agentkey' : '0123456789abcdef0123456789abcdef',
       "$method $path: " . ($own ? "the agent's own key is kept"
                                 : 'the default key is added'));
    is($seen->{uri}, $path, "$method $path: URI unchanged");
    $streams{$stream}++ if defined $stream;
}

{
    my $r = $t->http(path => '/api/v1/validate?api_key=querykey',
                     headers => [ 'X-Test-Id' => 'validate-query' ]);
    my ($seen) = grep { ($_->{headers}{'x-test-id'} // '') eq 'validate-query' }
                 $up{api}->requests;
    ok($seen && !exists $seen->{headers}{'dd-api-key'},
       'a key in ?api_key= is not overridden by the default key');
}

my $m;
ok(wait_for(sub {
    $m = $t->http(path => '/metrics')->{body};
    for my $s (keys %streams) {
        return 0 unless $m =~ /^reductrai_requests_total\{stream="$s"\} \Q$streams{$s}\E$/m;
    }
    return 1;
}, 10), 'each path is archived under its stream: '
        . join(', ', map { "$_=$streams{$_}" } sort keys %streams))
    or diag($m);

{
    my $r = $t->http(path => '/health');
    is($r->{status}, 200, '/health 200');
    my $h = eval { $json->decode($r->{body}) } // {};
    is($h->{status} // '', 'ok', '/health status ok') or diag($r->{body});
    is($t->http(path => '/livez')->{status}, 200, '/livez 200');
}

$t->check_error_log;
done_testing;
