#!/usr/bin/perl
# docs/QUERY.md cannot rot: nginx + module archive one request of each kind
# the guide's recipes query (Datadog series as JSON and as protobuf, Datadog
# logs, OTLP logs and traces as protobuf and as OTLP/JSON, a remote-write
# WriteRequest, bodies that do not decode), then every ```sql block of the
# guide marked "<!-- test NAME -->" runs in DuckDB against that archive, in
# order, in one connection, and must give exactly the rows this file
# expects for NAME.  A marked block without an expectation here fails, and
# so does an expectation whose block is gone.  The Athena and ClickHouse
# examples get structural checks: their columns exist in the records, their
# partition layout is the key layout.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use Test::More;

use RdxTest qw(parse_key zstd_compress);
use RdxCli qw(module_archive);
use RdxClients qw(protoc_encode snappy_block duckdb duckdb_ready);

plan skip_all => 'make node first' unless duckdb_ready();

my $t = RdxTest->new;
my $json = JSON::PP->new->utf8->canonical;

my $guide = RdxTest->read_file("$FindBin::Bin/../docs/QUERY.md");
ok(length $guide, 'docs/QUERY.md read');

# -------------------------------------------------------------- the archive

my $x_pb = [ 'Content-Type' => 'application/x-protobuf' ];
my $trace = '5b8efff798038103d269b633813fc60c';

sub hexbytes {
    my ($hex) = @_;
    return join '', map { sprintf '\\x%s', $_ } $hex =~ /(..)/g;
}

sub otlp_resource {
    my ($service) = @_;
    return qq(resource { attributes { key: "service.name" )
         . qq(value { string_value: "$service" } } )
         . qq(attributes { key: "host.name" )
         . qq(value { string_value: "web-1" } } });
}

my $series_json = $json->encode({ series => [
    { metric => 'system.load.1', type => 3,
      points => [ { timestamp => 1764100000, value => 0.5 },
                  { timestamp => 1764100010, value => 0.75 } ],
      resources => [ { type => 'host', name => 'web-1' } ],
      tags => [ 'env:prod' ] },
    { metric => 'system.cpu.user', type => 3,
      points => [ { timestamp => 1764100000, value => 12.5 } ],
      resources => [ { type => 'host', name => 'web-1' } ] },
] });

my $series_pb = protoc_encode($t, 'datadog.agentpayload.MetricPayload',
                              'datadog_metrics.proto', <<'EOT');
series {
  resources { type: "host" name: "web-2" }
  metric: "system.mem.used"
  points { value: 2048 timestamp: 1764100020 }
  type: GAUGE
}
series {
  resources { type: "host" name: "web-2" }
  metric: "system.load.1"
  tags: "env:prod"
  points { value: 1.25 timestamp: 1764100020 }
  points { value: 1.5 timestamp: 1764100030 }
  type: GAUGE
  interval: 10
}
EOT

my $dd_logs = $json->encode([
    { message => 'upstream timed out', service => 'web', ddsource => 'nginx',
      status => 'error', hostname => 'web-1' },
    { message => 'GET /cart 200', service => 'web', ddsource => 'nginx',
      status => 'info', hostname => 'web-1' },
    { message => 'slow query', service => 'db', ddsource => 'postgres',
      status => 'warn', hostname => 'db-1' },
]);

sub log_record {
    my ($sec, $number, $text, $line) = @_;
    return qq(log_records { time_unix_nano: ${sec}000000000 )
         . qq(severity_number: $number severity_text: "$text" )
         . qq(body { string_value: "$line" } });
}

# start and end in ms after 1764100000 s
sub span {
    my ($trace_id, $id, $parent, $name, $kind, $start, $end) = @_;
    my $ns = sub { sprintf '%d%03d000000', 1764100000 + int($_[0] / 1000),
                           $_[0] % 1000 };
    return qq(spans { trace_id: "${\ hexbytes($trace_id) }" )
         . qq(span_id: "${\ hexbytes($id) }" )
         . ($parent ? qq(parent_span_id: "${\ hexbytes($parent) }" ) : '')
         . qq(name: "$name" kind: $kind )
         . qq(start_time_unix_nano: ${\ $ns->($start) } )
         . qq(end_time_unix_nano: ${\ $ns->($end) } });
}

my $otlp_logs = protoc_encode($t,
    'opentelemetry.proto.logs.v1.ExportLogsServiceRequest',
    'otlp_logs.proto', <<"EOT");
resource_logs {
  ${\ otlp_resource('checkout') }
  scope_logs {
    ${\ log_record(1764100000, 17, 'ERROR', 'payment failed') }
    ${\ log_record(1764100001, 9, 'INFO', 'cart loaded') }
  }
}
resource_logs {
  ${\ otlp_resource('payments') }
  scope_logs {
    ${\ log_record(1764100002, 13, 'WARN', 'card declined') }
  }
}
EOT

my $otlp_traces = protoc_encode($t,
    'opentelemetry.proto.trace.v1.ExportTraceServiceRequest',
    'otlp_trace.proto', <<"EOT");
resource_spans {
  ${\ otlp_resource('checkout') }
  scope_spans {
    ${\ span($trace, '051581bf3cb55c13', undef, 'GET /cart',
             'SPAN_KIND_SERVER', 0, 250) }
    ${\ span($trace, '5fb397be34d26b51', '051581bf3cb55c13', 'SELECT carts',
             'SPAN_KIND_CLIENT', 10, 90) }
    ${\ span('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', '00f067aa0ba902b7', undef,
             'GET /health', 'SPAN_KIND_SERVER', 1000, 1001) }
  }
}
EOT

# OTLP/JSON, as an SDK sends it with the json protocol: the same shape as
# the protobuf printed
my $otlp_json_logs = $json->encode({ resourceLogs => [ {
    resource => { attributes => [
        { key => 'service.name', value => { stringValue => 'inventory' } } ] },
    scopeLogs => [ { logRecords => [
        { timeUnixNano => '1764100003000000000', severityNumber => 9,
          severityText => 'INFO', body => { stringValue => 'stock synced' } },
    ] } ],
} ] });

my $otlp_json_traces = $json->encode({ resourceSpans => [ {
    resource => { attributes => [
        { key => 'service.name', value => { stringValue => 'carts-db' } } ] },
    scopeSpans => [ { spans => [
        { traceId => $trace, spanId => 'e457b5a2e4d86bd1',
          parentSpanId => '5fb397be34d26b51', name => 'query carts',
          kind => 2, startTimeUnixNano => '1764100000020000000',
          endTimeUnixNano => '1764100000070000000' },
    ] } ],
} ] });

my $write = protoc_encode($t, 'prometheus.WriteRequest',
                          'prometheus_remote.proto', <<'EOT');
timeseries {
  labels { name: "__name__" value: "up" }
  labels { name: "instance" value: "10.0.0.1:9100" }
  labels { name: "job" value: "node" }
  samples { value: 1 timestamp: 1764100000000 }
  samples { value: 0 timestamp: 1764100015000 }
}
timeseries {
  labels { name: "__name__" value: "up" }
  labels { name: "instance" value: "10.0.0.2:9100" }
  labels { name: "job" value: "node" }
  samples { value: 1 timestamp: 1764100000000 }
}
timeseries {
  labels { name: "__name__" value: "up" }
  labels { name: "instance" value: "127.0.0.1:9090" }
  labels { name: "job" value: "prometheus" }
  samples { value: 1 timestamp: 1764100000000 }
}
EOT

my @requests = (
    { path => '/api/v2/series', body => $series_json,
      headers => [ 'Content-Type' => 'application/json' ] },
    { path => '/api/v2/series', body => zstd_compress($series_pb),
      headers => [ @$x_pb, 'Content-Encoding' => 'zstd' ] },
    { path => '/api/v1/write', body => snappy_block($write),
      headers => [ @$x_pb, 'Content-Encoding' => 'snappy',
                   'X-Prometheus-Remote-Write-Version' => '0.1.0' ] },
    { path => '/api/v2/logs', body => $dd_logs,
      headers => [ 'Content-Type' => 'application/json' ] },
    { path => '/v1/logs', body => $otlp_logs, headers => $x_pb },
    { path => '/v1/traces', body => $otlp_traces, headers => $x_pb },
    { path => '/v1/logs', body => $otlp_json_logs,
      headers => [ 'Content-Type' => 'application/json' ] },
    { path => '/v1/traces', body => $otlp_json_traces,
      headers => [ 'Content-Type' => 'application/json' ] },

    # bodies that stay bytes: not the message the path says, and not JSON
    { path => '/api/v2/series', body => "\x0a\xff\xff\xff\x0fbroken",
      headers => $x_pb },
    { path => '/other/upload', body => "plain text\n",
      headers => [ 'Content-Type' => 'text/plain' ] },
);

my %streams = ('/api/v2/series' => 'metrics', '/api/v1/write' => 'metrics',
               '/api/v2/logs' => 'logs', '/v1/logs' => 'logs',
               '/v1/traces' => 'traces', '/other/' => 'other');

my $http = <<'EOT'
    reductrai_storage file://%%DIR%%/archive;
    reductrai_spool %%DIR%%/spool;
    reductrai_segment_age 1s;
    reductrai_instance guide;

    server {
        listen 127.0.0.1:%%PORT_http%%;
EOT
    . join('', map { <<"EOT" } sort keys %streams)
        location $_ {
            reductrai on;
            reductrai_stream $streams{$_};
            reductrai_forward off;
            reductrai_ack 202 '{}';
        }
EOT
    . "    }\n";

my ($arch) = module_archive($t, requests => \@requests, http => $http);

my @objects = $t->archive_objects($arch);
my @records = map { @{ $_->{records} } } @objects;
is(scalar @records, scalar @requests, 'one record per request');

# -------------------------------------------------- what the recipes give

# the hours are those of the keys: a run across an hour boundary has two
my %hours;
for my $o (@objects) {
    my $k = parse_key($o->{key});
    my $h = $hours{"$k->{stream} $k->{dt} $k->{hour}"} //= {
        stream => $k->{stream}, dt => $k->{dt}, hour => $k->{hour} + 0,
        requests => 0, bytes => 0 };
    $h->{requests}++ for @{ $o->{records} };
    $h->{bytes} += $_->{size} for @{ $o->{records} };
}

my %expect = (
    'view' => [],

    'requests-per-hour' => [ map { $hours{$_} } sort keys %hours ],

    'metric-points' => [
        { sent_as => 'json', host => 'web-1', ts => 1764100000,
          value => 0.5 },
        { sent_as => 'json', host => 'web-1', ts => 1764100010,
          value => 0.75 },
        { sent_as => 'datadog.MetricPayload', host => 'web-2',
          ts => 1764100020, value => 1.25 },
        { sent_as => 'datadog.MetricPayload', host => 'web-2',
          ts => 1764100030, value => 1.5 },
    ],

    'datadog-logs-by-service' => [
        { service => 'db', lines => 1, errors => 0 },
        { service => 'web', lines => 2, errors => 1 },
    ],

    'otlp-logs-by-service' => [
        { service => 'checkout', severity => 'ERROR',
          line => 'payment failed', time => '2025-11-25 19:46:40' },
        { service => 'checkout', severity => 'INFO',
          line => 'cart loaded', time => '2025-11-25 19:46:41' },
        { service => 'inventory', severity => 'INFO',
          line => 'stock synced', time => '2025-11-25 19:46:43' },
        { service => 'payments', severity => 'WARN',
          line => 'card declined', time => '2025-11-25 19:46:42' },
    ],

    'otlp-trace-spans' => [
        { name => 'GET /cart', span_id => '051581bf3cb55c13',
          parent_span_id => undef, ms => 250 },
        { name => 'SELECT carts', span_id => '5fb397be34d26b51',
          parent_span_id => '051581bf3cb55c13', ms => 80 },
        { name => 'query carts', span_id => 'e457b5a2e4d86bd1',
          parent_span_id => '5fb397be34d26b51', ms => 50 },
    ],

    'remote-write-samples' => [
        { instance => '10.0.0.1:9100', value => 1, ts_ms => 1764100000000 },
        { instance => '10.0.0.1:9100', value => 0, ts_ms => 1764100015000 },
        { instance => '10.0.0.2:9100', value => 1, ts_ms => 1764100000000 },
    ],

    'undecoded' => [
        { stream => 'metrics', uri => '/api/v2/series',
          content_type => 'application/x-protobuf',
          decode_error => 'invalid_protobuf', size => 11, bytes => 11 },
        { stream => 'other', uri => '/other/upload',
          content_type => 'text/plain', decode_error => undef,
          size => 11, bytes => 11 },
    ],
);

# ------------------------------------------ the recipes, as the guide has them

my @markers = $guide =~ /^<!-- test (\S+) -->\s*$/mg;
my @blocks;
while ($guide =~ /^<!-- test (\S+) -->\n```sql\n(.*?)^```\n/gms) {
    push @blocks, [ $1, $2 ];
}

is(scalar @blocks, scalar @markers,
   'every "<!-- test NAME -->" marker is followed by a ```sql block');

my %seen;
for my $b (@blocks) {
    my ($name, $sql) = @$b;
    ok(!$seen{$name}++, "$name: one block of that name");
    ok(exists $expect{$name}, "$name: the test knows its rows");
}
for my $name (sort keys %expect) {
    ok($seen{$name}, "$name: in docs/QUERY.md");
}

like($blocks[0][1] // '', qr{'/srv/archive/stream=\*/dt=\*/hour=\*/}s,
     'the first block makes the view over /srv/archive/stream=*/dt=*/hour=*');

my @res = duckdb($t, (map { (my $q = $_->[1]) =~ s{/srv/archive}{$arch}g; $q }
                      @blocks),
                 'SELECT column_name FROM (DESCRIBE archive) ORDER BY 1');
is(scalar @res, @blocks + 1, 'every block ran');

# the view names every field of the records (a new field needs a column)
my %fields = map { %$_ } @records;
is_deeply([ map { $_->{column_name} } @{ pop @res } ],
          [ sort keys %fields, qw(dt hour) ],
          'the view: a column per record field, dt and hour');

for my $i (0 .. $#blocks) {
    my $name = $blocks[$i][0];
    next unless exists $expect{$name};
    is_deeply($res[$i], $expect{$name}, "$name: the rows expected")
        or diag($json->encode($res[$i] // []));
}

# ------------------------------------- Athena and ClickHouse: their shape

my @partitions = qw(stream dt hour);

my ($athena) = $guide =~ /<!-- ddl athena -->\n```sql\n(.*?)```/s;
ok($athena, 'the Athena DDL is in the guide') or $athena = '';

my ($cols) = $athena =~ /CREATE EXTERNAL TABLE \w+ \((.*?)\)\s*PARTITIONED/s;
my @cols = ($cols // '') =~ /`(\w+)`/g;
my ($parts) = $athena =~ /PARTITIONED BY \((.*?)\)/s;
my @parts = ($parts // '') =~ /`(\w+)`/g;

is_deeply([ sort @cols, @parts ], [ sort keys %fields, qw(dt hour) ],
          'Athena: the columns are the records\' fields, stream, dt, hour');
is_deeply(\@parts, \@partitions, 'Athena: partitioned by stream, dt, hour');
like($athena, qr/'projection\.$_\.type'/, "Athena: $_ is projected")
    for @partitions;

my ($location) = $athena =~ /LOCATION '([^']+)'/;
my ($template) = $athena =~ /'storage\.location\.template'\s*=\s*'([^']+)'/;
ok($template && $location && index($template, $location) == 0,
   'Athena: the template is under the LOCATION');
like($athena, qr/'projection\.dt\.format' = 'yyyy-MM-dd'/,
     'Athena: dt projected as YYYY-MM-DD');
like($athena, qr/'projection\.hour\.digits' = '2'/,
     'Athena: hour projected with two digits');

for my $o (@objects) {
    my $k = parse_key($o->{key});
    (my $dir = substr $template // '', length $location // '')
        =~ s/\$\{(\w+)\}/$k->{$1}/g;
    is(index($o->{key}, $dir), 0, "Athena: $o->{key} is under $dir");
}

my ($ch) = $guide =~ /<!-- ddl clickhouse -->\n```sql\n(.*?)```/s;
ok($ch, 'the ClickHouse example is in the guide') or $ch = '';

my ($url, $format, $structure) =
    $ch =~ /s3\('https:\/\/[^\/]+\/prod\/([^']+)',\s*'(\w+)',\s*'([^']+)'\)/s;
is($format, 'JSONEachRow', 'ClickHouse: JSONEachRow');

my @ch_cols = map { /^\s*(\w+)\s/ ? $1 : () } split /,/, $structure // '';
ok(@ch_cols > 5, 'ClickHouse: ' . scalar(@ch_cols) . ' columns');
ok(exists $fields{$_}, "ClickHouse: $_ is a field of the records")
    for @ch_cols;

(my $glob = quotemeta($url // 'none')) =~ s/\\\*/[^\/]*/g;
is_deeply([ grep { $_->{key} =~ /\A$glob\z/ } @objects ],
          [ grep { $_->{key} =~ m{\Astream=metrics/} } @objects ],
          'ClickHouse: the URL matches the keys of the metrics stream');
like($ch, qr/use_hive_partitioning = 1/, 'ClickHouse: hive partitions');

$t->check_error_log;

done_testing;
