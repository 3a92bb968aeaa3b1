#!/usr/bin/perl
# reductrai replay of protobuf bodies archived as JSON (body_format): the
# message is encoded again from the JSON and sent in its original wire
# format.  Bodies are made by protoc --encode from text format against
# ngx_http_reductrai_module/proto/*.proto: a Datadog MetricPayload deflate-
# and zstd-encoded as the Agent sends it, a SketchPayload (zstd), a trace
# AgentPayload with maps (gzip), an OTLP trace request gzipped, a
# Prometheus WriteRequest snappy-encoded with fields our schema does not
# know (kept in "_unknown").  Each goes through nginx + module, is sealed,
# replayed to a recording server: protoc --decode of what arrives equals
# protoc --decode of what was sent, and Content-Type and Content-Encoding
# are the original ones.  A body that failed to decode as protobuf is sent
# as it was received: its (decoded) bytes encoded again.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Compress::Zlib ();
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use Test::More;

use RdxTest qw(zstd_compress zstd_uncompress);
use RdxCli qw(cli module_archive);
use RdxClients qw(protoc_encode snappy_block snappy_uncompress);

my $proto = "$FindBin::Bin/../ngx_http_reductrai_module/proto";

plan skip_all => 'no protoc (tools/deps.sh test)'
    unless system('protoc --version >/dev/null 2>&1') == 0;

my $t = RdxTest->new;


sub undo {
    my ($enc, $body) = @_;
    if ($enc eq 'gzip') {
        gunzip(\$body => \my $out) or return undef;
        return $out;
    }
    return Compress::Zlib::uncompress($body) if $enc eq 'deflate';
    return zstd_uncompress($body) if $enc eq 'zstd';
    return snappy_uncompress($body) if $enc eq 'snappy';
    return undef;
}

# protoc between text format and wire bytes

sub ext_encode {
    my ($type, $file, $text) = @_;
    my $in = $t->write_file('ext.txt', $text);
    my $dir = $t->dir;
    my $pb = `protoc -I$dir --encode=$type $dir/$file < $in`;
    die "protoc --encode=$type failed\n" if $? || !length $pb;
    return $pb;
}

sub pb_decode {
    my ($type, $file, $bytes) = @_;
    my $in = $t->write_file('msg.bin', $bytes);
    my $text = `protoc -I$proto --decode=$type $proto/$file < $in 2>&1`;
    return $? ? "protoc failed: $text" : $text;
}


# the messages

my $series = protoc_encode($t, 'datadog.agentpayload.MetricPayload',
                           'datadog_metrics.proto', <<'EOT');
series {
  metric: "system.load.5"
  resources { name: "db-2" type: "host" }
  tags: "role:db"
  points { timestamp: 1764100000 value: 0.7 }
  points { value: -1.25 timestamp: 9007199254740993 }
  type: GAUGE
  interval: 10
}
series {
  metric: "system.cpu.idle"
  points { value: 99.5 timestamp: 1764100010 }
  type: RATE
  source_type_name: "System"
  metadata { origin { origin_product: 10 origin_service: 4294967295 } }
}
EOT

my $traces = protoc_encode($t,
    'opentelemetry.proto.trace.v1.ExportTraceServiceRequest',
    'otlp_trace.proto', <<'EOT');
resource_spans {
  resource {
    attributes { key: "service.name" value { string_value: "checkout" } }
  }
  scope_spans {
    scope { name: "tracer" version: "1.2.3" }
    spans {
      trace_id: "\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c"
      span_id: "\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74"
      parent_span_id: "\x01\x02\x03\x04\x05\x06\x07\x08"
      name: "GET /cart"
      kind: SPAN_KIND_SERVER
      start_time_unix_nano: 1764100000000000000
      end_time_unix_nano: 1764100000125000000
      attributes { key: "http.status_code" value { int_value: 200 } }
      attributes { key: "retries" value { int_value: 0 } }
      attributes { key: "ratio" value { double_value: 0.25 } }
      status { code: STATUS_CODE_OK }
    }
  }
}
EOT

my $agent = protoc_encode($t, 'datadog.trace.AgentPayload',
                          'datadog_trace.proto', <<'EOT');
hostName: "web-1"
env: "prod"
tracerPayloads {
  languageName: "go"
  chunks {
    priority: 1
    spans {
      service: "web" name: "http.request" resource: "GET /cart"
      traceID: 12345678901234567890 spanID: 42 parentID: 0
      start: 1764100000000000000 duration: 1500000
      meta { key: "http.method" value: "GET" }
      meta { key: "empty" value: "" }
      metrics { key: "_sampling_priority_v1" value: 1 }
      meta_struct { key: "blob" value: "\x00\x01\xff" }
      type: "web"
    }
    tags { key: "_dd.p.dm" value: "-1" }
  }
}
agentVersion: "7.62.0"
targetTPS: 10
EOT

my $sketches = protoc_encode($t, 'datadog.agentpayload.SketchPayload',
                             'datadog_metrics.proto', <<'EOT');
sketches {
  metric: "request.latency" host: "web-1" tags: "env:prod"
  dogsketches { ts: 1764100000 cnt: 3 min: 0.25 max: 2 avg: 1 sum: 3
                k: -5 k: 0 k: 1338 n: 1 n: 1 n: 1 }
}
EOT

# remote write with fields our schema does not know (a newer sender)
$t->write_file('ext_remote.proto', <<'EOT');
syntax = "proto3";
package ext;
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; string note = 15; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message WriteRequest { repeated TimeSeries timeseries = 1; uint64 extra = 99; }
EOT

my $write = ext_encode('ext.WriteRequest', 'ext_remote.proto', <<'EOT');
timeseries {
  labels { name: "__name__" value: "up" }
  labels { name: "job" value: "node" }
  samples { value: 1 timestamp: 1764100000000 note: "first" }
  samples { value: -0.5 timestamp: 1764100015000 }
}
extra: 7
EOT

like(pb_decode('prometheus.WriteRequest', 'prometheus_remote.proto', $write),
     qr/^99: 7$/m, 'the remote write carries a field our schema does not know');

gzip(\$traces => \my $traces_gz) or die $GzipError;
gzip(\$agent => \my $agent_gz) or die $GzipError;

# not a message: a length past the end; archived with decode_error
my $garbage = "\x0a\xff\xff\xff\x0f" . 'x' x 20;
gzip(\$garbage => \my $garbage_gz) or die $GzipError;

my @orig = (
    { path => '/other/api/v2/series?n=1', enc => 'deflate', pb => $series,
      body => Compress::Zlib::compress($series),
      format => 'datadog.MetricPayload',
      type => 'datadog.agentpayload.MetricPayload',
      file => 'datadog_metrics.proto' },
    { path => '/other/api/v2/series?n=2', enc => 'zstd', pb => $series,
      body => zstd_compress($series), format => 'datadog.MetricPayload',
      type => 'datadog.agentpayload.MetricPayload',
      file => 'datadog_metrics.proto' },
    { path => '/other/v1/traces?n=3', enc => 'gzip', pb => $traces,
      body => $traces_gz, format => 'otlp.ExportTraceServiceRequest',
      type => 'opentelemetry.proto.trace.v1.'
              . 'ExportTraceServiceRequest',
      file => 'otlp_trace.proto' },
    { path => '/other/api/v1/write?n=4', enc => 'snappy', pb => $write,
      body => snappy_block($write), format => 'prometheus.WriteRequest',
      type => 'prometheus.WriteRequest', file => 'prometheus_remote.proto' },
    { path => '/other/api/v0.2/traces?n=6', enc => 'gzip', pb => $agent,
      body => $agent_gz, format => 'datadog.trace.AgentPayload',
      type => 'datadog.trace.AgentPayload', file => 'datadog_trace.proto' },
    { path => '/other/api/beta/sketches?n=7', enc => 'zstd', pb => $sketches,
      body => zstd_compress($sketches), format => 'datadog.SketchPayload',
      type => 'datadog.agentpayload.SketchPayload',
      file => 'datadog_metrics.proto' },
    { path => '/other/v1/traces?n=5', enc => 'gzip', pb => $garbage,
      body => $garbage_gz, error => 'invalid_protobuf' },
);

for my $o (@orig) {
    $o->{headers} = [ 'Content-Type' => 'application/x-protobuf',
                      'Content-Encoding' => $o->{enc} ];
}

my ($arch) = module_archive($t, requests => \@orig);

my %rec = map { $_->{uri} => $_ } $t->archive_records($arch);
is(scalar keys %rec, scalar @orig, scalar(@orig) . ' records archived');

for my $o (@orig) {
    my $r = $rec{ $o->{path} };
    ok($r, "$o->{path}: archived") or next;

    if ($o->{error}) {
        is($r->{decode_error}, $o->{error}, "$o->{path}: $o->{error}");
        ok(!exists $r->{body_format}, "$o->{path}: no body_format");
        next;
    }

    is($r->{body_format}, $o->{format}, "$o->{path}: body_format");
    is(ref $r->{body}, 'HASH', "$o->{path}: the body is JSON");
}

is($rec{'/other/api/v1/write?n=4'}{body}{_unknown}, 'mAYH',
   'remote write: the unknown field 99 = 7 kept in _unknown');
is($rec{'/other/api/v1/write?n=4'}{body}{timeseries}[0]{samples}[0]{_unknown},
   'egVmaXJzdA==', 'and a sample\'s unknown field 15 = "first"');


# replay to a recording server

my $up = $t->start_upstream(name => 'intake', status => 202);

my $r = cli('replay', "file://$arch", '--to', $up->url, '--window', 'none');
is($r->{rc}, 0, 'replay exits 0') or diag($r->{err});
like($r->{err}, qr/^replay: 7 sent, 7 ok, 0 failed/m, 'all 7 sent')
    or diag($r->{err});

my %got = map { $_->{uri} => $_ } $up->requests;

for my $o (@orig) {
    my $q = $got{ $o->{path} };
    ok($q, "$o->{path}: replayed") or next;

    is($q->{headers}{'content-type'}, 'application/x-protobuf',
       "$o->{path}: the original Content-Type");
    is($q->{headers}{'content-encoding'}, $o->{enc},
       "$o->{path}: the original Content-Encoding");

    my $pb = undo($o->{enc}, $q->{body});
    ok(defined $pb, "$o->{path}: the body is $o->{enc}") or next;

    if ($o->{error}) {
        is($pb, $o->{pb}, "$o->{path}: the bytes as received, re-encoded");
        next;
    }

    my $want = pb_decode($o->{type}, $o->{file}, $o->{pb});
    my $have = pb_decode($o->{type}, $o->{file}, $pb);
    unlike($have, qr/^protoc failed/, "$o->{path}: the replayed bytes decode");
    is($have, $want, "$o->{path}: protoc --decode gives the message sent");

    # protoc writes canonical bytes, and so does the encoder
    is(unpack('H*', $pb), unpack('H*', $o->{pb}),
       "$o->{path}: even the bytes are the same");
}

like($got{'/other/api/v2/series?n=1'}{body} // '', qr/^\x78/,
     'deflate is zlib-wrapped');
like($got{'/other/api/v2/series?n=2'}{body} // '', qr/^\x28\xb5\x2f\xfd/,
     'zstd is a zstd frame');


# records made by hand: one whose JSON does not fit its body_format, one of
# a format replay does not know (neither is sent), and an OTLP body with
# the "Unknown" key older archives have

my $bad = $t->dir . '/bad';
my $ts = '2026-11-25T10:00:00.000Z';
my $head = qq("ts":"$ts","stream":"other","method":"POST",)
         . qq("content_type":"application/x-protobuf","forwarded":false);
RdxTest::write_archive_object(
    "$bad/stream=other/dt=2026-11-25/hour=10/h-1-2-00000001.ndjson.zst",
    qq({"id":"h-1-2-1",$head,"uri":"/x/1","size":2,)
    . qq("body_format":"datadog.MetricPayload","body":{"series":1}}\n)
    . qq({"id":"h-1-2-2",$head,"uri":"/x/2","size":2,)
    . qq("body_format":"datadog.Nope","body":{}}\n)
    . qq({"id":"h-1-2-3",$head,"uri":"/x/3","size":3,)
    . qq("body_format":"otlp.ExportLogsServiceRequest",)
    . qq("body":{"Unknown":"mAYs"}}\n));

$up->set(status => 202);
my $n0 = () = $up->requests;

$r = cli('replay', "file://$bad", '--to', $up->url, '--window', 'none');
is($r->{rc}, 4, 'records not sent: exit 4') or diag($r->{err});
like($r->{err}, qr/^reductrai: replay: h-1-2-1: not sent: body is not a datadog\.MetricPayload: a repeated field is not an array$/m,
     'the record whose JSON does not fit: not sent, and why');
like($r->{err}, qr/^reductrai: replay: h-1-2-2: not sent: unknown body_format "datadog\.Nope"$/m,
     'the record of an unknown format: not sent');
like($r->{err}, qr/^reductrai: replay: 2 record\(s\) could not be sent as archived \(see why above\)$/m,
     'and counted');

my @new = ($up->requests)[$n0 .. $n0 + 5];
@new = grep { defined } @new;
is(scalar @new, 1, 'one record sent');
is($new[0]{uri}, '/x/3', 'the OTLP one');
is(unpack('H*', $new[0]{body} // ''), '98062c',
   'its "Unknown" fields as the body, without Content-Encoding');

$t->check_error_log;
done_testing;
