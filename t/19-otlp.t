#!/usr/bin/perl
# The OpenTelemetry JS exporters (OTLP/HTTP protobuf, pinned in
# t/node/package-lock.json) send a trace, a metric and a log record through
# nginx + module, plain and gzip: each is forwarded as sent and archived as
# OTLP/JSON with its body_format.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use FindBin;
use lib 't/lib';
use RdxTest;
use RdxClients qw(duckdb);

my $node_dir = "$FindBin::Bin/node";
plan skip_all => 'make node first'
    unless -d "$node_dir/node_modules/\@opentelemetry/exporter-trace-otlp-proto";

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 200);

$t->reductrai_config;
$t->start;

my $base = 'http://127.0.0.1:' . $t->port('http');
my %sent;

for my $compression (qw(none gzip)) {
    my $out = $t->path("otlp-$compression.out");
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        chdir $node_dir;
        open STDOUT, '>', $out;
        open STDERR, '>', "$out.err";
        exec 'node', 'otlp-send.js', $base, $compression
            or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    is($? >> 8, 0, "$compression: the exporters sent")
        or diag($t->read_file("otlp-$compression.out.err"));
    $sent{$compression} = decode_json($t->read_file("otlp-$compression.out"));
}

# the metric reader exports on forceFlush() and again on shutdown()
my @rec = $t->wait_archived(8);
my @vendor = $up->requests;
is(scalar @vendor, 8, 'the vendor got the eight requests archived');

for my $compression (qw(none gzip)) {
    my $enc = $compression eq 'gzip' ? 'gzip' : undef;
    my %r = map { $_->{uri} => $_ }
            grep { ($_->{content_encoding} // '') eq ($enc // '') } @rec;

    my $tr = $r{'/v1/traces'};
    ok($tr, "$compression: traces archived") or next;
    is($tr->{body_format}, 'otlp.ExportTraceServiceRequest',
       "$compression: traces body_format");
    my $span = $tr->{body}{resourceSpans}[0]{scopeSpans}[0]{spans}[0];
    is($span->{traceId}, $sent{$compression}{traceId},
       "$compression: traceId in hex, as sent");
    is($span->{spanId}, $sent{$compression}{spanId},
       "$compression: spanId in hex");
    is($span->{name}, 'GET /cart', "$compression: span name");
    like($span->{startTimeUnixNano}, qr/^\d{19}$/,
         "$compression: startTimeUnixNano as a decimal string");
    is($tr->{body}{resourceSpans}[0]{resource}{attributes}[0]{value}
           {stringValue}, 'checkout', "$compression: resource attribute");

    my $lg = $r{'/v1/logs'};
    is($lg->{body_format}, 'otlp.ExportLogsServiceRequest',
       "$compression: logs body_format");
    my $lr = $lg->{body}{resourceLogs}[0]{scopeLogs}[0]{logRecords}[0];
    is($lr->{severityNumber}, 17, "$compression: severityNumber");
    is($lr->{body}{stringValue}, 'payment failed', "$compression: log body");

    my $mt = $r{'/v1/metrics'};
    is($mt->{body_format}, 'otlp.ExportMetricsServiceRequest',
       "$compression: metrics body_format");
    my $m = $mt->{body}{resourceMetrics}[0]{scopeMetrics}[0]{metrics}[0];
    is($m->{name}, 'orders', "$compression: metric name");
    is($m->{sum}{dataPoints}[0]{asDouble}, 5, "$compression: counter value");
    is($m->{sum}{isMonotonic}, JSON::PP::true, "$compression: monotonic sum");
}

my @gz = grep { ($_->{headers}{'content-encoding'} // '') eq 'gzip' } @vendor;
is(scalar @gz, 4, 'the vendor got the gzip requests gzip-encoded');

# DuckDB in place: the spans of one trace (as docs/QUERY.md does it)

my $trace = $sent{gzip}{traceId};
my $sql = "SELECT json_extract_string(s, '\$.name') AS name, "
        . "json_extract_string(s, '\$.spanId') AS span_id FROM ("
        . "SELECT unnest(json_extract(body, "
        . "'\$.resourceSpans[*].scopeSpans[*].spans[*]')) AS s "
        . "FROM read_json_auto('" . $t->archive_dir . "/**/*.ndjson.zst') "
        . "WHERE body_format = 'otlp.ExportTraceServiceRequest') "
        . "WHERE json_extract_string(s, '\$.traceId') = '$trace'";

my ($rows) = duckdb($t, $sql);
is_deeply($rows, [ { name => 'GET /cart', span_id => $sent{gzip}{spanId} } ],
          'DuckDB: the spans of one trace');

$t->check_error_log;

done_testing;
