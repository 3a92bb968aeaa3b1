#!/usr/bin/perl
# When the tap itself fails (issue 13, item 8): a spool the workers can no
# longer write to makes requests follow reductrai_spool_full (reject: 503
# with Retry-After; bypass: forwarded and counted), and
# $reductrai_record_id names only records that were archived: it is empty
# for rejected requests and for bodies nginx refused (413, 400).

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest qw(wait_for);

my $t = RdxTest->new;
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
EOT
);
$t->start;

sub logged_id {
    my ($uri) = @_;
    my $line;
    wait_for(sub {
        ($line) = grep { index($_, "$uri ") == 0 }
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

$t->check_error_log(allow => [ qr/\[crit\].*reductrai.*(open|spool)/ ]);

done_testing;
