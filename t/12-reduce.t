#!/usr/bin/perl
# Reduction: reductrai_forward off answers locally with reductrai_ack once
# the record is committed; a variable decides per request (split_clients
# for sampling, map for content rules); every request is archived either
# way, and the record says which way it went.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

$t->reductrai_config(
    http => <<'EOT',
    split_clients "$http_x_request_id" $sampled {
        30%     1;
        *       0;
    }

    map $http_x_level $by_level {
        error   1;
        default "";
    }
EOT
    server => <<'EOT',
        location /store-only/ {
            reductrai on;
            reductrai_forward off;
        }

        location /custom-ack/ {
            reductrai on;
            reductrai_forward off;
            reductrai_ack 200 '{"status":"ok"}';
        }

        location /sampled/ {
            reductrai on;
            reductrai_forward $sampled;
            proxy_pass http://vendor;
        }

        location /redirect/ {
            reductrai on;
            proxy_pass http://vendor;
            proxy_intercept_errors on;
            error_page 502 503 = @store;
        }

        location @store {
            reductrai on;
            reductrai_forward off;
            reductrai_ack 202 '{"stored":true}';
        }

        location /by-level/ {
            reductrai on;
            reductrai_forward $by_level;
            reductrai_ack 204;
            proxy_pass http://vendor;
        }
EOT
);
$t->start;

my $r = $t->http(path => '/store-only/x', body => '{"a":1}');
is($r->{status}, 202, 'store only: default ack status 202');
is($r->{body}, '{}', 'store only: default ack body {}');
is($r->{headers}{'content-type'}, 'application/json', 'ack is JSON');

$r = $t->http(path => '/custom-ack/x', body => '{"a":1}');
is($r->{status}, 200, 'custom ack status');
is($r->{body}, '{"status":"ok"}', 'custom ack body');

my $n = 200;
my %status;
for my $i (1 .. $n) {
    $r = $t->http(path => "/sampled/$i", body => qq{{"i":$i}},
                  headers => [ 'X-Request-ID' => "sample-$i" ]);
    $status{ $r->{status} }++;
}
is_deeply(\%status, { 202 => $n }, "$n sampled requests answered 202");

$r = $t->http(path => '/by-level/1', body => '{"l":"error"}',
              headers => [ 'X-Level' => 'error' ]);
is($r->{status}, 202, 'map: error level forwarded (vendor answers)');
$r = $t->http(path => '/by-level/2', body => '{"l":"info"}',
              headers => [ 'X-Level' => 'info' ]);
is($r->{status}, 204, 'map: "" answers locally with the ack');
is($r->{body}, '', 'ack 204 has no body');

# the vendor fails, error_page sends the request to a local answer: the
# body was archived once, on the way in, and the vendor's 503 is counted
$up->set(status => 503);
$r = $t->http(path => '/redirect/x', body => '{"redirected":1}');
$up->set(status => 202);
is($r->{status}, 202, 'error_page to a store-only location: its ack');
is($r->{body}, '{"stored":true}', 'with its body');

my $total = $n + 5;
my @records = $t->wait_archived($total);
is(scalar @records, $total, 'every request archived, forwarded or not');

my %vendor = map { $_->{uri} => 1 } $up->requests;
my %rec = map { $_->{uri} => $_ } @records;

ok(!$vendor{'/store-only/x'} && !$vendor{'/custom-ack/x'},
   'store-only requests never reach the vendor');
ok(!$rec{'/store-only/x'}{forwarded}, 'store-only record: forwarded false');

my ($fwd, $mismatch) = (0, 0);
for my $i (1 .. $n) {
    my $rec = $rec{"/sampled/$i"} or next;
    $fwd++ if $rec->{forwarded};
    $mismatch++ if !!$rec->{forwarded} != !!$vendor{"/sampled/$i"};
}

is($mismatch, 0, 'the vendor got exactly the requests marked forwarded');
ok($fwd > $n * 0.15 && $fwd < $n * 0.45,
   "about 30% sampled ($fwd of $n)");

ok($rec{'/by-level/1'}{forwarded} && $vendor{'/by-level/1'},
   'map: forwarded record');
ok(!$rec{'/by-level/2'}{forwarded} && !$vendor{'/by-level/2'},
   'map: local record');
is(scalar(grep { $_->{uri} eq '/redirect/x' } @records), 1,
   'a redirected request is archived once');

wait_for(sub {
    $t->metrics->{'reductrai_upstream_responses_total{stream="default",'
                  . 'class="2xx"}'} == $fwd + 1
}, 5, 'the forwards are counted in the log phase');
is($t->metrics->{'reductrai_upstream_responses_total{stream="default",'
                 . 'class="5xx"}'}, 1,
   'the vendor answer before the redirect is counted');
my $m = $t->metrics;
is($m->{'reductrai_requests_total{stream="default"}'}, $total,
   'requests_total counts forwarded and local requests');
is($m->{'reductrai_upstream_responses_total{stream="default",class="2xx"}'},
   $fwd + 1, 'upstream responses count only forwarded requests');

$t->check_error_log;

done_testing;
