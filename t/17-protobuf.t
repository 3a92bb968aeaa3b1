#!/usr/bin/perl
# Protobuf bodies are archived as JSON with body_format: a Datadog
# MetricPayload made by protoc --encode from text format (the real encoder,
# not hand-made bytes), zstd- and deflate-encoded as the Agent sends it.
# The vendor still gets the bytes as sent.  A location with
# reductrai_body_format none keeps the bytes in body_b64.

use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Compress::Deflate qw(deflate);
use MIME::Base64 qw(decode_base64);
use JSON::PP;
use lib 't/lib';
use RdxTest qw(zstd_compress);
use RdxClients qw(protoc_encode duckdb duckdb_ready);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

$t->reductrai_config(server => <<'EOT');
        location /none/ {
            reductrai on;
            reductrai_body_format none;
            proxy_pass http://vendor;
        }
EOT
$t->start;

my $text = <<'EOT';
series {
  resources { type: "host" name: "web-1" }
  metric: "system.load.1"
  tags: "env:prod"
  tags: "service:web"
  points { value: 0.7 timestamp: 1764100000 }
  points { value: 1.25 timestamp: 1764100010 }
  type: GAUGE
  interval: 10
}
EOT

my $pb = protoc_encode($t, 'datadog.agentpayload.MetricPayload',
                       'datadog_metrics.proto', $text);
ok(length $pb > 40, 'protobuf of ' . length($pb) . ' bytes');

deflate(\$pb => \my $zlib) or die;

my @cases = (
    [ '/api/v2/series?zstd', 'zstd', zstd_compress($pb) ],
    [ '/api/v2/series?deflate', 'deflate', $zlib ],
    [ '/none/api/v2/series', 'deflate', $zlib ],
);

for my $c (@cases) {
    my ($path, $enc, $body) = @$c;
    my $r = $t->http(path => $path, body => $body,
                     headers => [ 'Content-Type' => 'application/x-protobuf',
                                  'Content-Encoding' => $enc ]);
    is($r->{status}, 202, "$path: accepted and forwarded");
}

my %vendor = map { $_->{uri} => $_ } $up->requests;
my %rec = map { $_->{uri} => $_ } $t->wait_archived(scalar @cases);

my $want = {
    series => [ {
        resources => [ { type => 'host', name => 'web-1' } ],
        metric => 'system.load.1',
        tags => [ 'env:prod', 'service:web' ],
        points => [ { value => 0.7, timestamp => 1764100000 },
                    { value => 1.25, timestamp => 1764100010 } ],
        type => 3, unit => '', source_type_name => '', interval => 10,
    } ],
};

my $canon = JSON::PP->new->canonical;

for my $c (@cases) {
    my ($path, $enc, $body) = @$c;
    my $v = $vendor{$path};
    my $r = $rec{$path};

    is($v->{sha256}, sha256_hex($body), "$path: vendor got the bytes sent");
    ok($r, "$path: archived") or next;
    is($r->{size}, length $pb, "$path: size is the protobuf size");

    if ($path =~ m{^/none/}) {
        ok(!exists $r->{body_format}, "$path: no body_format");
        is(decode_base64($r->{body_b64}), $pb,
           "$path: the decoded protobuf in body_b64");
        next;
    }

    is($r->{body_format}, 'datadog.MetricPayload', "$path: body_format");
    is($canon->encode($r->{body}), $canon->encode($want),
       "$path: the archived JSON is the message");
    ok(!exists $r->{decode_error}, "$path: no decode_error");
}

# DuckDB reads the archive in place: the points of one metric (the recipe
# of docs/QUERY.md, run against every kind of record by t/64-query-guide.t)

my $arch = $t->path('archive');
my $files = "read_json_auto('$arch/**/*.ndjson.zst')";
my $sql = "SELECT uri, p.value AS value, p.timestamp AS ts FROM ("
        . "SELECT uri, unnest(from_json(json_extract(body, '\$.series[0].points'), "
        . "'[{\"value\":\"DOUBLE\",\"timestamp\":\"BIGINT\"}]')) AS p "
        . "FROM $files WHERE body_format = 'datadog.MetricPayload' "
        . "AND json_extract_string(body, '\$.series[0].metric') = "
        . "'system.load.1') ORDER BY uri, ts";

SKIP: {
    skip 'make node first', 2 unless duckdb_ready();

    my ($rows) = duckdb($t, $sql);
    is($canon->encode($rows), $canon->encode([
        { uri => '/api/v2/series?deflate', value => 0.7, ts => '1764100000' },
        { uri => '/api/v2/series?deflate', value => 1.25, ts => '1764100010' },
        { uri => '/api/v2/series?zstd', value => 0.7, ts => '1764100000' },
        { uri => '/api/v2/series?zstd', value => 1.25, ts => '1764100010' },
    ]), 'DuckDB: the points of system.load.1 from the archived protobuf');
}

# nginx -t refuses an unknown format, naming it, the directive and the line

my $bad = $t->write_config(file => 'bad.conf', http => <<'EOT');
server {
    listen 127.0.0.1:%%PORT_http%%;
    location / {
        reductrai_body_format datadog.Nope;
    }
}
EOT
my @lines = split /\n/, $t->read_file('bad.conf');
my ($line) = grep { $lines[$_ - 1] =~ /datadog\.Nope/ } 1 .. @lines;
my ($rc, $out) = $t->nginx_t(conf => $bad);
isnt($rc, 0, 'nginx -t fails on an unknown body format');
like($out, qr/unknown body format "datadog\.Nope" \(auto, none, datadog\.MetricPayload.* in \S*bad\.conf:$line/,
     'the message names the value, the known ones and the file:line');

$t->check_error_log;

done_testing;
