#!/usr/bin/perl
# The Debian package: "make deb" builds libnginx-mod-http-reductrai with dh
# and dh_nginx (packaging/debian); it is installed with dpkg -i (purged
# first when a previous run left it installed, so the fresh-install path
# runs every time), enables the module through /etc/nginx/modules-enabled,
# and nginx loads it from there: "nginx -t" on Debian's own nginx.conf,
# then a server started with only the modules-enabled include archives a
# request that the installed reductrai tool reads back.  The package is
# purged at the end, which removes the link.  Root only (CI runs as root).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use RdxTest qw(wait_for);
use RdxDeploy qw(slurp);

my $t = RdxTest->new;
my $dir = $t->dir;
my $repo = RdxDeploy::repo;
my $pkg = 'libnginx-mod-http-reductrai';
my $avail = '/usr/share/nginx/modules-available/mod-http-reductrai.conf';
my $link = '/etc/nginx/modules-enabled/50-mod-http-reductrai.conf';

sub installed {
    my ($rc, $out) = RdxDeploy::run('dpkg-query', '-W', '-f=${Status}',
                                    $pkg);
    return $rc == 0 && $out =~ /install ok installed/;
}

is($>, 0, 'running as root (dpkg -i)') or BAIL_OUT('needs root');

my ($version) = slurp("$repo/ngx_http_reductrai_module/core/"
                      . "ngx_http_reductrai_core.h")
                =~ /NGX_HTTP_REDUCTRAI_VERSION\s+"([^"]+)"/;
like(slurp("$repo/packaging/debian/changelog"),
     qr/^\Q$pkg\E \(\Q$version\E\)/, "debian/changelog is at $version");
like(slurp("$repo/packaging/debian/rules"), qr/^\tdh \$@ --with nginx$/m,
     'debian/rules: dh with the nginx sequence');


# --- make deb -----------------------------------------------------------------

my ($rc, $out) = RdxDeploy::run({ cwd => $repo }, 'make', 'deb');
is($rc, 0, 'make deb') or diag(substr($out, -4000));
like($out, qr/dh_nginx/, 'dh_nginx ran');
like($out, qr/dh_auto_test --buildsystem=nginx_mod/,
     'the built module passed nginx -t in the build');

my ($deb) = grep { !/-dbgsym_/ } glob "$repo/objs/deb/${pkg}_*.deb";
ok($deb && -f $deb, 'objs/deb has the package') or BAIL_OUT('no package');
like($deb, qr/_\Q$version\E_\w+\.deb$/, "version $version");

my %f;
for my $field (qw(Package Version Depends Architecture)) {
    (undef, $f{$field}) = RdxDeploy::run('dpkg-deb', '-f', $deb, $field);
    chomp $f{$field};
}
is($f{Package}, $pkg, "Package: $pkg");

# dh_nginx ties the package to the ABI of the nginx it was built against.
my ($abi) = slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
            =~ /^nginx:abi=(\S+)/m;
like($f{Depends}, qr/(^|, )\Q$abi\E(,|$)/, "Depends: $abi (nginx ABI)");
for my $lib (qw(libzstd1 libcurl4 libjansson4 zlib1g libssl3)) {
    like($f{Depends}, qr/(^|, )\Q$lib\E\b/, "Depends: $lib (shlibs)");
}


# --- dpkg -i ------------------------------------------------------------------

if (installed()) {
    ($rc, $out) = RdxDeploy::run('dpkg', '--purge', $pkg);
    is($rc, 0, 'left installed by an earlier run: purged first')
        or diag($out);
}

($rc, $out) = RdxDeploy::run('dpkg', '-i', $deb);
is($rc, 0, 'dpkg -i') or diag($out);
ok(installed(), 'installed');

(undef, $out) = RdxDeploy::run('dpkg', '-L', $pkg);
my %files = map { $_ => 1 } split /\n/, $out;
for my $p ('/usr/lib/nginx/modules/ngx_http_reductrai_module.so', $avail,
           '/usr/bin/reductrai',
           "/usr/share/doc/$pkg/examples/datadog.conf",
           "/usr/share/doc/$pkg/examples/datadog-sites/datadoghq.com.conf")
{
    ok($files{$p}, "dpkg -L: $p");
    ok(-e $p, "$p exists");
}

is(slurp($avail), "load_module modules/ngx_http_reductrai_module.so;\n",
   'modules-available: load_module');
ok(-l $link, "enabled the Debian way: $link");
is(readlink($link) // '', $avail, 'the link points to modules-available');


# --- nginx loads it from modules-enabled ---------------------------------

like(slurp('/etc/nginx/nginx.conf'),
     qr{^include /etc/nginx/modules-enabled/\*\.conf;}m,
     "Debian's nginx.conf includes modules-enabled");
($rc, $out) = RdxDeploy::run('/usr/sbin/nginx', '-t');
is($rc, 0, "nginx -t (Debian's own configuration, module enabled)")
    or diag($out);
like($out, qr/test is successful/, 'nginx -t: test is successful');
unlike($out, qr/\[(emerg|alert|crit|warn)\]/, 'nginx -t: no warning')
    or diag($out);

# A server whose only module line is Debian's include.  Its prefix is the
# test dir, so "modules/" (relative to the prefix, as on Debian, whose
# /usr/share/nginx/modules links to /usr/lib/nginx/modules) links there too.
symlink('/usr/lib/nginx/modules', "$dir/modules") or die "symlink: $!";
$t->mkdir_worker('archive');
$t->mkdir_worker('spool');
$t->write_config(
    module => 0,
    main   => 'include /etc/nginx/modules-enabled/*.conf;',
    http   => <<'EOF');
    reductrai_storage      file://%%DIR%%/archive;
    reductrai_spool        %%DIR%%/spool;
    reductrai_segment_age  1s;

    server {
        listen  127.0.0.1:%%PORT_http%%;

        location / {
            reductrai          on;
            reductrai_stream   metrics;
            reductrai_forward  off;
        }

        location = /health {
            reductrai_health;
        }
    }
EOF
unlike(slurp($t->conf_path), qr/^load_module/m,
       'the test config loads no module itself');
$t->start;

my $r = $t->http(path => '/api/v2/series', body => '{"series":[1,2,3]}',
                 headers => [ 'Content-Type' => 'application/json' ]);
is($r->{status}, 202, 'the installed module answers (reductrai_ack)');
is($t->http(path => '/health')->{status}, 200, '/health 200');

my @objs;
ok(wait_for(sub { @objs = glob "$dir/archive/stream=metrics/dt=*/hour=*/*"; @objs },
            15, 'an archive object'), 'the request was archived');

($rc, $out) = RdxDeploy::run('/usr/bin/reductrai', 'cat', "file://$dir/archive");
is($rc, 0, 'the installed reductrai tool reads the archive') or diag($out);
like($out, qr/"body":\{"series":\[1,2,3\]\}/, 'reductrai cat: the record');

$t->stop;


# --- removal -------------------------------------------------------------------

($rc, $out) = RdxDeploy::run('dpkg', '--purge', $pkg);
is($rc, 0, 'dpkg --purge') or diag($out);
ok(!-e $link && !-l $link, 'the modules-enabled link is gone');
ok(!-e '/usr/lib/nginx/modules/ngx_http_reductrai_module.so', 'module gone');
($rc, $out) = RdxDeploy::run('/usr/sbin/nginx', '-t');
is($rc, 0, 'nginx -t after removal') or diag($out);

$t->check_error_log;
done_testing;
