#!/usr/bin/perl
# The archive is queryable in place: DuckDB (@duckdb/node-api from the npm
# registry, pinned in t/node/package-lock.json, installed by "make node")
# reads the objects the module wrote, zstd by extension, trailer (a zstd
# skippable frame) and all, with hive partitions from the keys.  The
# values of the queries are asserted against what was sent.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Compress::Gzip qw(gzip $GzipError);
use JSON::PP ();
use Test::More;

use RdxTest qw(wait_for);
use RdxCli qw(cli module_archive);
use RdxClients qw(duckdb duckdb_ready);


ok(duckdb_ready(), '@duckdb/node-api is installed (make node)')
    or BAIL_OUT('run "make node" first');

my $t = RdxTest->new;

my @metrics = (
    [ 'system.cpu.user', 12.5 ], [ 'system.cpu.user', 7.25 ],
    [ 'system.load.1', 0.75 ], [ 'system.mem.used', 1024 ],
    [ 'system.load.1', 1.25 ],
);

my @requests;
for my $i (0 .. $#metrics) {
    my ($m, $v) = @{ $metrics[$i] };
    my $body = qq({"series":[{"metric":"$m","points":[[1700000000,$v]],)
             . qq("tags":["host:web-$i"]}]});
    my @h = ('Content-Type' => 'application/json',
             'DD-API-KEY' => $i % 2 ? 'tenant-b' : 'tenant-a');

    # some arrive gzipped: the archive holds them decoded all the same
    if ($i % 2) {
        gzip(\$body => \my $gz) or die $GzipError;
        $body = $gz;
        push @h, 'Content-Encoding' => 'gzip';
    }

    push @requests, { path => "/api/v1/series?api_key=k$i", body => $body,
                      headers => \@h };
}

push @requests, { path => '/api/v2/logs?ddsource=nginx',
                  body => qq([{"message":"upstream timed out","status":"error"},)
                        . qq({"message":"ok","status":"info"}]) },
                { path => '/api/v2/logs?ddsource=app',
                  body => '[{"message":"started","status":"info"}]' },
                { path => '/other/text', body => "plain text\n",
                  headers => [ 'Content-Type' => 'text/plain' ] };

my ($arch) = module_archive($t, requests => \@requests, workers => 2);

my @objects = $t->archive_objects($arch, decode => 0);
ok(@objects >= 3, scalar(@objects) . ' objects');
is(scalar(grep { substr($t->read_file($_->{path}), -4) eq 'RDX1' } @objects),
   scalar @objects, 'every object ends with the trailer (skippable frame)');

my $all = "read_json_auto('$arch/**/*.ndjson.zst')";
my $m = "read_json_auto('$arch/stream=metrics/**/*.ndjson.zst')";
my $l = "read_json_auto('$arch/stream=logs/**/*.ndjson.zst')";

my @res = duckdb($t,
    # 1: hive partitions from the keys, every object read past its trailer
    "SELECT stream, count(*) AS n FROM $all GROUP BY stream ORDER BY stream",

    # 2: json_extract into the body, sums per metric
    "SELECT json_extract_string(body, '\$.series[0].metric') AS metric, "
    . "count(*) AS n, "
    . "sum(json_extract(body, '\$.series[0].points[0][1]')::DOUBLE) AS total "
    . "FROM $m GROUP BY metric ORDER BY metric",

    # 3: the raw line as JSON, whatever the shape of body
    "SELECT json_extract_string(json, '\$.body.series[0].tags[0]') AS tag "
    . "FROM read_ndjson_objects('$arch/stream=metrics/**/*.ndjson.zst') "
    . "ORDER BY tag",

    # 4: logs, filtered on the body
    "SELECT uri, json_extract_string(body, '\$[0].message') AS message, "
    . "json_array_length(body) AS n FROM $l "
    . "WHERE json_extract_string(body, '\$[0].status') = 'error'",

    # 5: metadata: redacted URIs, API key fingerprints, encodings, partitions
    "SELECT api_key_fp, count(*) AS n, "
    . "count(*) FILTER (WHERE content_encoding = 'gzip') AS gz, "
    . "count(*) FILTER (WHERE uri LIKE '%api_key=REDACTED%') AS redacted, "
    . "min(dt)::VARCHAR AS dt, count(DISTINCT hour) AS hours "
    . "FROM $m GROUP BY api_key_fp ORDER BY api_key_fp",

    # 6: bodies that are not JSON, as base64
    "SELECT content_type, decode(from_base64(body_b64)) AS text, size "
    . "FROM read_json_auto('$arch/stream=other/**/*.ndjson.zst')",

    # 7: a time range on ts, as TIMESTAMP
    "SELECT count(*) AS n, min(ts) <= max(ts) AS ordered, "
    . "max(ts) - min(ts) < INTERVAL 1 HOUR AS recent FROM $all",
);

is_deeply($res[0], [ { stream => 'logs', n => '2' },
                     { stream => 'metrics', n => '5' },
                     { stream => 'other', n => '1' } ],
          'count per stream partition (all 8 records, trailers skipped)');

is_deeply($res[1], [
    { metric => 'system.cpu.user', n => '2', total => 19.75 },
    { metric => 'system.load.1', n => '2', total => 2 },
    { metric => 'system.mem.used', n => '1', total => 1024 },
], 'json_extract into body: metric counts and sums');

is_deeply([ map { $_->{tag} } @{ $res[2] } ],
          [ map { "host:web-$_" } 0 .. 4 ],
          'read_ndjson_objects: the tag of every series');

is_deeply($res[3], [ { uri => '/api/v2/logs?ddsource=nginx',
                       message => 'upstream timed out', n => 2 } ],
          'logs filtered on the body');

my $fa = substr(sha256_hex('tenant-a'), 0, 8);
my $fb = substr(sha256_hex('tenant-b'), 0, 8);
my @fp = sort { $a->{api_key_fp} cmp $b->{api_key_fp} }
    ({ api_key_fp => $fa, n => '3', gz => '0', redacted => '3' },
     { api_key_fp => $fb, n => '2', gz => '2', redacted => '2' });
my ($today) = $objects[0]{key} =~ /dt=([\d-]+)/;
$_->{dt} = $today, $_->{hours} = '1' for @fp;
is_deeply($res[4], \@fp,
          'api_key_fp per tenant, gzip-sent bodies decoded, URIs redacted, '
          . 'dt partition');

is_deeply($res[5], [ { content_type => 'text/plain',
                       text => "plain text\n", size => '11' } ],
          'body_b64 decodes to the body sent');

is_deeply($res[6], [ { n => '8', ordered => JSON::PP::true,
                       recent => JSON::PP::true } ], 'ts is a TIMESTAMP');

# the same records as the CLI sees them
my $r = cli('cat', "file://$arch", '--stream', 'metrics');
is(scalar(split /\n/, $r->{out}), 5, 'reductrai cat agrees: 5 metrics');

$t->check_error_log;
done_testing;
