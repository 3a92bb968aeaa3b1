#!/usr/bin/perl
# /health and /metrics: the JSON and the Prometheus text DESIGN.md
# describes, counters summed over all workers through shared memory, the
# vendor's state from upstream peers (with a zone) or recent forwards.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);
my $up2 = $t->start_upstream(name => 'vendor2', status => 202);

$t->reductrai_config(
    main => 'worker_processes 2;',
    http => <<'EOT',
    upstream zoned {
        zone zoned 64k;
        server 127.0.0.1:%%PORT_vendor%% max_fails=1 fail_timeout=30s;
        server 127.0.0.1:%%PORT_vendor2%% max_fails=1 fail_timeout=30s;
    }
EOT
    server => <<'EOT',
        listen 127.0.0.1:%%PORT_spread%% reuseport;

        location /zoned/ {
            reductrai on;
            reductrai_stream zoned;
            proxy_pass http://zoned;
        }

        location = /health-zoned {
            reductrai_health upstream=zoned;
        }

        location = /live {
            reductrai_health live;
        }
EOT
);
$t->start;

my ($code, $h) = $t->health;
is($code, 200, '/health answers 200');
is_deeply([ sort keys %$h ],
          [ sort qw(status uptime version storage datadog spool
                    archive_lag_seconds) ], '/health fields');
is($h->{status}, 'ok', 'status ok');
like($h->{version}, qr/^\d+\.\d+\.\d+$/, 'version');
ok($h->{uptime} >= 0, 'uptime');
is($h->{datadog}, 'unknown', 'datadog unknown before any forward');
is_deeply([ sort keys %{ $h->{spool} } ], [ qw(bytes max_bytes segments) ],
          'spool fields');
is($h->{spool}{max_bytes}, 1024 ** 3, 'max_bytes is the default 1g');
wait_for(sub { ($t->health)[1]{storage} eq 'connected' }, 10,
         'storage probed');

my $r = $t->http(method => 'HEAD', path => '/health');
is($r->{status}, 200, 'HEAD /health');
$r = $t->http(method => 'POST', path => '/health', body => 'x');
is($r->{status}, 405, 'POST /health is not allowed');

# --- many connections spread over both workers (reuseport)

my ($n, $bytes) = (120, 0);
for my $i (1 .. $n) {
    my $body = qq({"i":$i,"pad":") . ('z' x $i) . '"}';
    $bytes += length $body;
    $r = $t->http(port => $t->port('spread'), path => "/m/$i", body => $body);
    die "request $i: $r->{status}" unless $r->{status} == 202;
}

my @records = $t->wait_archived($n);
my %pids = map { (split /-/, $_->{id})[-3] => 1 } @records;
is(scalar keys %pids, 2, 'both workers served requests');

my @values = map { $t->metrics->{'reductrai_requests_total{stream="default"}'} }
             1 .. 6;
is_deeply(\@values, [ ($n) x 6 ],
          'every worker reports the instance total in /metrics');

wait_for(sub { my $m = $t->metrics;
               $m->{reductrai_spool_bytes} == 0
               && $m->{reductrai_spool_segments} == 0 }, 15, 'spool drained');
my $m = $t->metrics;
is($m->{reductrai_bytes_received_total}, $bytes, 'bytes_received_total');
is($m->{reductrai_bytes_archived_total}, $bytes,
   'bytes_archived_total (identity bodies)');
my @objects = $t->archive_objects($t->archive_dir);
my $stored = 0;
$stored += $_->{size} for @objects;
is($m->{reductrai_storage_bytes_total}, $stored,
   'storage_bytes_total is the size of the objects');
is($m->{reductrai_storage_uploads_total}, scalar @objects,
   'storage_uploads_total is the number of objects');
is($m->{reductrai_storage_upload_errors_total}, 0, 'no upload errors');
is($m->{reductrai_storage_connected}, 1, 'storage_connected');
ok(abs($m->{reductrai_compression_ratio} - $bytes / $stored) < 0.002,
   "compression_ratio $m->{reductrai_compression_ratio} is received/stored");
is($m->{reductrai_archive_lag_seconds}, 0, 'no lag once shipped');
is($m->{reductrai_spool_segments}, 0, 'no segment left in the spool');
is($m->{reductrai_health_status}, 1, 'health_status 1');
is($m->{'reductrai_upstream_responses_total{stream="default",class="2xx"}'},
   $n, 'upstream 2xx counted');
is($m->{reductrai_datadog_forward_errors_total}, 0, 'no forward errors');
like(join("\n", keys %$m), qr/reductrai_info\{version="[\d.]+",instance="/,
     'reductrai_info');

my $text = $t->http(path => '/metrics')->{body};
like($text, qr/^# TYPE reductrai_requests_total counter$/m, 'TYPE lines');
like($text, qr/^# HELP reductrai_archive_lag_seconds /m, 'HELP lines');

# --- vendor trouble: answers and failures by class

$up->set(status => 503);
$t->http(path => '/x/503', body => '{}') for 1 .. 3;
$up->set(status => 404);
$t->http(path => '/x/404', body => '{}');
$up->set(status => 202);

# the log phase may run just after the client got its answer
wait_for(sub { $t->metrics->{reductrai_datadog_forward_errors_total} == 3 },
         5, 'the forwards are counted');
$m = $t->metrics;
is($m->{'reductrai_upstream_responses_total{stream="default",class="5xx"}'},
   3, '5xx counted');
is($m->{'reductrai_upstream_responses_total{stream="default",class="4xx"}'},
   1, '4xx counted');
is($m->{reductrai_datadog_forward_errors_total}, 3,
   'forward errors: the 5xx');
($code, $h) = $t->health;
is($h->{datadog}, 'degraded', 'datadog degraded after recent errors');
is($h->{status}, 'degraded', 'status degraded');
is($code, 200, 'but readiness stays 200');

# vendor gone: no response at all
$up->stop;
$up2->stop;
$t->http(path => '/zoned/gone', body => '{}') for 1 .. 3;
wait_for(sub { $t->metrics->{reductrai_datadog_forward_errors_total} == 6 },
         5, 'the failed forwards are counted');
$m = $t->metrics;
is($m->{'reductrai_upstream_responses_total{stream="zoned",class="error"}'},
   3, 'no response counted as error');
is($m->{reductrai_datadog_forward_errors_total}, 6, 'and as forward errors');

($code, $h) = $t->health(path => '/health-zoned');
is($h->{datadog}, 'down', 'with a zone: every peer failing is "down"');
is($code, 200, 'vendor down never fails readiness');

$r = $t->http(path => '/live');
is($r->{status}, 200, 'live health answers 200');

my @zoned = grep { $_->{uri} eq '/zoned/gone' }
            $t->wait_archived($n + 7);
is(scalar @zoned, 3, 'the archive holds what the vendor never got');
is($zoned[0]{stream}, 'zoned', 'in its stream');

# --- the counters live in shared memory: a reload keeps them

my $total = $t->metrics->{'reductrai_requests_total{stream="default"}'};
ok($total >= $n, "requests_total $total before the reload");
$t->reload;
is($t->metrics->{'reductrai_requests_total{stream="default"}'}, $total,
   'requests_total survives a reload');

$t->check_error_log;

done_testing;
