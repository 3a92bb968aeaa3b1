#!/usr/bin/perl
# When the tap itself fails (issue 13, item 8): a spool the workers can no
# longer write to makes requests follow reductrai_spool_full (reject: 503
# with Retry-After; bypass: forwarded and counted), and
# $reductrai_record_id names only records that were archived: it is empty
# for rejected requests and for bodies nginx refused (413, 400).  A tap
# that cannot allocate its state or a variable's value follows
# reductrai_spool_full too, never a 500: a malloc() of one size made to
# fail (an LD_PRELOAD shim) fails $arg_s of that length in reductrai_stream.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use RdxTest qw(wait_for shim);

# malloc() of RDX_FAIL_SIZE bytes fails (t/shim/failmalloc.c)
my $FAIL_SIZE = 5555;
my $shim = shim('failmalloc', tempdir(CLEANUP => 1));

# under ASan its own malloc comes first: the shim is never asked
my $shimmed = !$ENV{TEST_NGINX_ASAN};

my $t = RdxTest->new(env => $shimmed
                     ? { LD_PRELOAD => $shim, RDX_FAIL_SIZE => $FAIL_SIZE }
                     : {});
my $up = $t->start_upstream(name => 'vendor', status => 202);

$t->reductrai_config(
    http => <<'EOT',
    log_format ids '$request_uri $status "$reductrai_record_id"';
EOT
    server => <<'EOT',
        access_log %%DIR%%/ids.log ids;
        client_max_body_size 1k;

        location /reject/ {
            reductrai on;
            reductrai_stream failing;
            reductrai_spool_full reject;
            proxy_pass http://vendor;
        }

        location /bypass/ {
            reductrai on;
            reductrai_stream failing;
            reductrai_spool_full bypass;
            proxy_pass http://vendor;
        }

        location /var-reject/ {
            reductrai on;
            reductrai_stream $arg_s;
            reductrai_spool_full reject;
            proxy_pass http://vendor;
        }

        location /var-bypass/ {
            reductrai on;
            reductrai_stream $arg_s;
            reductrai_spool_full bypass;
            proxy_pass http://vendor;
        }

        location /var-local/ {
            reductrai on;
            reductrai_stream $arg_s;
            reductrai_forward off;
            reductrai_spool_full bypass;
        }

        location /var-auto/ {
            reductrai on;
            reductrai_stream $arg_s;
            reductrai_forward off;
        }
EOT
);
$t->start;

sub logged_id {
    my ($uri) = @_;
    my $line;
    wait_for(sub {
        ($line) = grep { index($_, "$uri ") == 0 || index($_, "$uri?") == 0 }
                  split /\n/, $t->read_file('ids.log') // '';
        return defined $line;
    }, 10, "the access log line of $uri");
    return defined $line && $line =~ /"([^"]*)"$/ ? $1 : undef;
}

# --- a working spool: archived requests have an id, refused bodies none

my $r = $t->http(path => '/ok', body => '{"x":1}');
is($r->{status}, 202, 'archived and forwarded');
like(logged_id('/ok'), qr/^\S+-\d+-\d+-\d+$/, 'with a record id');

$r = $t->http(path => '/too-big', body => 'x' x 4096);
is($r->{status}, 413, 'a body over client_max_body_size: 413');
is(logged_id('/too-big'), '-', '413: no record id');

$r = $t->http(raw => "POST /bad-chunk HTTP/1.1\r\nHost: x\r\n"
                     . "Transfer-Encoding: chunked\r\n\r\nzz\r\n");
is($r->{status}, 400, 'a broken chunked body: 400');
is(logged_id('/bad-chunk'), '-', '400: no record id');

# --- the tap's own allocation fails: $arg_s of $FAIL_SIZE bytes

SKIP: {
    skip 'the malloc shim does not work under ASan', 15 unless $shimmed;

    my $long = 's=' . ('a' x $FAIL_SIZE);
    my $dropped0 = $t->metric('reductrai_archive_dropped_total');
    my $errors0 = $t->metric('reductrai_requests_errors_total{stream="other"}');

    $r = $t->http(path => '/var-reject/ok?s=fine', body => '{"v":1}');
    is($r->{status}, 202, 'a short $arg_s: archived and forwarded');

    $r = $t->http(path => "/var-reject/x?$long", body => '{"v":2}');
    is($r->{status}, 503, 'no memory for the stream name + reject: 503');
    is($r->{headers}{'retry-after'}, '5', '... with Retry-After');
    is(logged_id('/var-reject/x'), '-', '... and no record id');

    $r = $t->http(path => "/var-bypass/x?$long", body => '{"v":3}');
    is($r->{status}, 202, 'no memory + bypass: forwarded');
    ok((grep { $_->{uri} =~ m{^/var-bypass/x\?} && $_->{body} eq '{"v":3}' }
        $up->requests), '... with its body');
    is(logged_id('/var-bypass/x'), '-', '... and no record id');

    $r = $t->http(path => "/var-local/x?$long", body => '{"v":4}');
    is($r->{status}, 202, 'no memory + bypass, answered locally: the ack');
    is($r->{body}, '{}', '... its body');

    $r = $t->http(path => "/var-auto/x?$long", body => '{"v":5}');
    is($r->{status}, 503, 'no memory + auto, answered locally: 503');

    # keepalive: the discarded body leaves the connection usable
    my @p = $t->pipeline(requests => [
        { path => "/var-auto/y?$long", body => '{"v":6}' },
        { path => '/var-reject/after', body => '{"v":7}' } ]);
    is($p[0]{status}, 503, 'pipelined: the failed one 503');
    is($p[1]{status}, 202, '... the next one on the connection archived');

    is($t->metric('reductrai_archive_dropped_total') - $dropped0, 2,
       'two bypassed requests counted as dropped');
    is($t->metric('reductrai_requests_errors_total{stream="other"}')
       - $errors0, 3, 'three rejected requests counted as errors');

    my @ids;
    wait_for(sub {
        @ids = grep { defined } map { $_->{body}{v} }
               $t->archive_records($t->archive_dir);
        return @ids >= 2;
    }, 10, 'the archived records');
    sleep 1.5;
    @ids = grep { defined } map { $_->{body}{v} }
           $t->archive_records($t->archive_dir);
    is(join(',', sort @ids), '1,7', 'only the requests the tap did not fail '
       . 'are archived') or diag "@ids";
}

# --- the spool becomes unwritable: the tap fails on its own when it opens
# the first segment of the stream "failing"

my $spool = $t->path('spool');
chown 0, 0, $spool or die "chown $spool: $!";
chmod 0755, $spool or die "chmod $spool: $!";

my $dropped = $t->metric('reductrai_archive_dropped_total');

for my $i (1 .. 3) {
    $r = $t->http(path => "/reject/unwritable-$i", body => '{"x":1}');
    is($r->{status}, 503, "unwritable spool + reject: 503 ($i)");
    is($r->{headers}{'retry-after'}, '5', '... with Retry-After');
    is(logged_id("/reject/unwritable-$i"), '-', '... and no record id');

    $r = $t->http(path => "/bypass/unwritable-$i", body => '{"x":1}');
    is($r->{status}, 202, "unwritable spool + bypass: forwarded ($i)");
    is(logged_id("/bypass/unwritable-$i"), '-', '... without a record id');
}

ok((grep { $_->{uri} eq '/bypass/unwritable-3' } $up->requests),
   'the bypassed request reached the vendor');
is($t->metric('reductrai_archive_dropped_total') - $dropped, 3,
   'three bypassed records counted');

$t->check_error_log(allow => [ qr/\[crit\].*reductrai.*(open|spool)/,
                               qr/\[emerg\].*malloc\($FAIL_SIZE\) failed/ ]);

done_testing;
