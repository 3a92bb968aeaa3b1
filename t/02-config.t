#!/usr/bin/perl
# nginx -t rejects every bad value with a message that names the directive
# and the file:line; a configuration using every directive passes.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;

my $storage = 'reductrai_storage file://%%DIR%%/archive;';
my $proxy = 'proxy_pass http://127.0.0.1:%%PORT_vendor%%;';

# [ name, http-level text, server-level text, expected message ];
# the line marked "# BAD" is the one the error must point at
my @bad = (
    [ 'no storage', '', "location / { reductrai on; $proxy } # BAD",
      qr/"reductrai on" requires "reductrai_storage"/ ],
    [ 'unknown scheme', 'reductrai_storage ftp://x; # BAD', '',
      qr/"reductrai_storage": unknown storage scheme/ ],
    [ 'not a URI', 'reductrai_storage /tmp/x; # BAD', '',
      qr/"reductrai_storage": "\/tmp\/x" is not a storage URI/ ],
    [ 'empty file dir', 'reductrai_storage file://; # BAD', '',
      qr/"reductrai_storage": no directory/ ],
    [ 'unknown parameter', "reductrai_storage file:///x color=red; # BAD",
      '', qr/"reductrai_storage": unknown parameter "color"/ ],
    [ 'parameter of another backend',
      "reductrai_storage file:///x region=us-east-1; # BAD", '',
      qr/"reductrai_storage": "region" does not apply/ ],
    [ 'missing secret file',
      "reductrai_storage s3://b secret_key_file=/nonexistent; # BAD", '',
      qr/"reductrai_storage": open\(\) "\/nonexistent" failed/ ],
    [ 'duplicate storage', "$storage\n$storage # BAD", '',
      qr/"reductrai_storage" directive is duplicate/ ],
    [ 'spool max_size', "$storage\nreductrai_spool /tmp/s max_size=abc; "
      . "# BAD", '', qr/invalid max_size "abc"/ ],
    [ 'spool small', "$storage\nreductrai_spool /tmp/s max_size=1k; # BAD",
      '', qr/invalid max_size "1k"/ ],
    [ 'spool parameter', "$storage\nreductrai_spool /tmp/s size=1m; # BAD",
      '', qr/invalid parameter "size=1m"/ ],
    [ 'buffer size', "reductrai_buffer_size lots; # BAD", '',
      qr/"reductrai_buffer_size" directive invalid value/ ],
    [ 'decoded size', "reductrai_max_decoded_size -1; # BAD", '',
      qr/"reductrai_max_decoded_size" directive invalid value/ ],
    [ 'segment size', "reductrai_segment_size 1k; # BAD", '',
      qr/"reductrai_segment_size" must be at least 4k/ ],
    [ 'segment age', "reductrai_segment_age 10ms; # BAD", '',
      qr/"reductrai_segment_age" must be at least 1s/ ],
    [ 'level low', "reductrai_compression_level 0; # BAD", '',
      qr/"reductrai_compression_level" must be between 1 and 19/ ],
    [ 'level high', "reductrai_compression_level 20; # BAD", '',
      qr/"reductrai_compression_level" must be between 1 and 19/ ],
    [ 'level word', "reductrai_compression_level fast; # BAD", '',
      qr/"reductrai_compression_level" directive invalid number/ ],
    [ 'concurrency', "reductrai_upload_concurrency 0; # BAD", '',
      qr/"reductrai_upload_concurrency" must be between 1 and 256/ ],
    [ 'seal concurrency', "reductrai_seal_concurrency 0; # BAD", '',
      qr/"reductrai_seal_concurrency" must be between 1 and 256/ ],
    [ 'instance', "reductrai_instance a/b; # BAD", '',
      qr/invalid instance name "a\/b"/ ],
    [ 'instance dot', "reductrai_instance .hidden; # BAD", '',
      qr/invalid instance name "\.hidden"/ ],
    [ 'durability', "reductrai_durability sometimes; # BAD", '',
      qr/invalid \s value \s "sometimes" \s in \s "reductrai_durability",
         \s it \s must \s be
         \s "async", \s "write", \s "fsync"/x ],
    [ 'commit timeout', "reductrai_commit_timeout soon; # BAD", '',
      qr/"reductrai_commit_timeout" directive invalid value/ ],
    [ 'spool_full', "reductrai_spool_full maybe; # BAD", '',
      qr/invalid value "maybe" in "reductrai_spool_full"/ ],
    [ 'flag', $storage, "location / { reductrai yes; $proxy } # BAD",
      qr/invalid value "yes" in "reductrai" directive/ ],
    [ 'context', "reductrai on; # BAD", '',
      qr/"reductrai" directive is not allowed here/ ],
    [ 'stream name', $storage,
      "location / { reductrai on; reductrai_stream Bad!; $proxy } # BAD",
      qr/invalid stream name "Bad!"/ ],
    [ 'stream long', $storage,
      "location / { reductrai_stream " . ('a' x 33) . "; } # BAD",
      qr/invalid stream name/ ],
    [ 'forward value', $storage,
      "location / { reductrai on; reductrai_forward maybe; } # BAD",
      qr/invalid value "maybe", it must be "on", "off" or a variable/ ],
    [ 'forward without handler', $storage,
      "location / { reductrai on; reductrai_forward on; } # BAD",
      qr/"reductrai_forward" \s is \s on \s or \s a \s variable, \s but
         \s location \s "\/" \s has \s no \s content \s handler/x ],
    [ 'default forward without handler', $storage,
      "location / { reductrai on; } # BAD",
      qr/"reductrai \s on" \s forwards \s by \s default, \s but
         \s location \s "\/" \s has \s no \s content \s handler/x ],
    [ 'ack status', $storage,
      "location / { reductrai_ack 99; } # BAD",
      qr/invalid status "99"/ ],
    [ 'ack word', $storage,
      "location / { reductrai_ack ok; } # BAD", qr/invalid status "ok"/ ],
    [ 'ack 204 body', $storage,
      "location / { reductrai_ack 204 '{}'; } # BAD",
      qr/status 204 cannot have a body/ ],
    [ 'health parameter', '', "location /h { reductrai_health ready; } # BAD",
      qr/invalid parameter "ready"/ ],
    [ 'health upstream', '',
      "location /h { reductrai_health upstream=nope; } # BAD",
      qr/"reductrai_health": no upstream "nope"/ ],
    [ 'metrics args', '', "location /m { reductrai_metrics x; } # BAD",
      qr/invalid number of arguments in "reductrai_metrics"/ ],
    # the list comes from the format table: every name, in table order
    [ 'body format', '',
      "location / { reductrai_body_format otlp.Nope; } # BAD",
      qr/unknown \s body \s format \s "otlp\.Nope" \s \(auto, \s none,
         \s datadog\.MetricPayload, \s datadog\.SketchPayload,
         \s datadog\.trace\.AgentPayload,
         \s otlp\.ExportTraceServiceRequest,
         \s otlp\.ExportMetricsServiceRequest,
         \s otlp\.ExportLogsServiceRequest,
         \s prometheus\.WriteRequest,
         \s prometheus\.write\.v2\.Request\) \s in \s/x ],
);

for my $case (@bad) {
    my ($name, $http, $server, $want) = @$case;

    my $conf = $t->write_config(file => 'bad.conf', http => <<"EOT");
$http
server {
    listen 127.0.0.1:%%PORT_http%%;
    $server
}
EOT

    my @lines = split /\n/, $t->read_file('bad.conf');
    my ($line) = grep { $lines[$_ - 1] =~ /# BAD/ } 1 .. @lines;

    my ($rc, $out) = $t->nginx_t(conf => $conf);
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $want, "$name: message names the directive");

    # errors found after parsing are reported at their directive's line
    # too, unless they concern the block as a whole
    if ($name eq 'no storage' || $name eq 'health upstream') {
        like($out, qr/\[emerg\]/, "$name: at emerg level");
    } else {
        like($out, qr/\Q$conf\E:$line\b/, "$name: points at bad.conf:$line")
            or diag($out);
    }
}

# every directive, with valid values
$t->mkdir_worker('archive');
my $conf = $t->write_config(file => 'good.conf', main => <<'EOT', http => <<"EOT2");
thread_pool reductrai_io threads=4;
thread_pool reductrai_up threads=4;
EOT
reductrai_storage file://%%DIR%%/archive;
reductrai_spool %%DIR%%/spool max_size=64m;
reductrai_buffer_size 32m;
reductrai_max_decoded_size 16m;
reductrai_segment_size 4m;
reductrai_segment_age 15s;
reductrai_compression_level 6;
reductrai_thread_pool reductrai_io;
reductrai_upload_thread_pool reductrai_up;
reductrai_upload_concurrency 8;
reductrai_seal_concurrency 3;
reductrai_instance edge-1.eu_west;
reductrai_durability fsync;
reductrai_commit_timeout 3s;
reductrai_spool_full reject;

upstream vendor {
    zone vendor 64k;
    server 127.0.0.1:%%PORT_vendor%%;
}

map \$uri \$stream {
    default metrics;
}

server {
    listen 127.0.0.1:%%PORT_http%%;
    reductrai_spool_full bypass;

    location / {
        reductrai on;
        reductrai_stream \$stream;
        reductrai_forward \$arg_fwd;
        if (\$http_x_debug) {
            set \$debug 1;
        }
        reductrai_ack 200 '{"status":"ok"}';
        reductrai_spool_full auto;
        proxy_pass http://vendor;
    }

    location /local/ {
        reductrai on;
        reductrai_stream logs;
        reductrai_forward off;
    }

    location = /health {
        reductrai_health upstream=vendor;
    }

    location = /live {
        reductrai_health live;
    }

    location = /metrics {
        reductrai_metrics;
    }
}
EOT2

my ($rc, $out) = $t->nginx_t(conf => $conf);
is($rc, 0, 'a configuration with every directive passes nginx -t')
    or diag($out);

$t->check_error_log;

done_testing;
