#!/usr/bin/perl
# Self-test of t/lib/RdxTest.pm against plain nginx (module => 0): the
# client, the mock upstream and its failure switches, the load generator,
# start/stop/reload/crash handling, nginx -t and the archive readers. If
# this file fails, no other test result can be trusted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use IO::Compress::Gzip qw(gzip $GzipError);
use Test::More;
use Time::HiRes qw(time sleep);

use RdxTest qw(wait_for parse_key);

my $t = RdxTest->new;
my $dir = $t->dir;

# Deterministic pseudo-random bytes, so failures reproduce.
sub blob {
    my ($len, $seed) = @_;
    my $out = '';
    my $x = $seed || 1;
    while (length $out < $len) {
        $x = ($x * 1103515245 + 12345) % 2**31;
        $out .= pack 'N', $x;
    }
    return substr $out, 0, $len;
}

sub json_body {
    my ($n) = @_;
    return '{"series":[' . join(',', map { qq({"metric":"m.$_","v":$_}) }
                                     1 .. $n) . ']}';
}

# The record of the request the upstream saw with this X-Test-Id.
sub seen {
    my ($up, $id) = @_;
    my @r = grep { ($_->{headers}{'x-test-id'} // '') eq $id } $up->requests;
    return wantarray ? @r : $r[0];
}


# --- temp dir, ports, config --------------------------------------------

is(sprintf('%o', (stat $dir)[2] & 07777), '755', 'test dir is mode 0755');
like($dir, qr{^/tmp/rdx-test-}, 'test dir under /tmp');

my $spool = $t->mkdir_worker('spool');
is((stat $spool)[4], scalar getpwnam('nobody'), 'mkdir_worker: owned by nobody');

my $p = $t->port('http');
is($t->port('http'), $p, 'port() is stable per name');
isnt($t->port('http2'), $p, 'port() differs between names');
my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                  Listen => 1, ReuseAddr => 1);
ok($probe, 'the port is free');
close $probe if $probe;

like($t->module_path, qr{/objs/(asan/)?ngx_http_reductrai_module\.so$},
     'module_path');

my $up = $t->start_upstream(name => 'vendor', status => 202,
                            body => '{"ok":1}', workers => 8);
is($up->url, 'http://127.0.0.1:' . $t->port('vendor'), 'upstream url');

my $http = <<'EOF';
    client_body_buffer_size 16k;
    client_max_body_size 10m;

    upstream vendor_ka {
        server 127.0.0.1:%%PORT_vendor%%;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:%%PORT_http%%;
        listen 127.0.0.1:%%PORT_http2%% http2;

        location / {
            proxy_pass http://127.0.0.1:%%PORT_vendor%%;
        }

        location /ka/ {
            proxy_pass http://vendor_ka;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location = /local {
            return 200 "dir=%%DIR%%\n";
        }
    }
EOF

my $conf = $t->write_config(http => $http, module => 0);
my $text = $t->read_file($conf);
unlike($text, qr/load_module/, 'module => 0: no load_module');
unlike($text, qr/%%/, 'all placeholders substituted');
like($text, qr/^pid \Q$dir\E\/nginx\.pid;$/m, 'pid in the test dir');
like($text, qr/^worker_processes 1;$/m, 'one worker by default');
like($text, qr/client_body_temp_path \Q$dir\E\/client_body_temp;/,
     'temp paths in the test dir');
like($text, qr/listen 127\.0\.0\.1:$p;/, 'port placeholder');

my $with_module = $t->write_config(file => 'module.conf', http => '');
like($t->read_file($with_module),
     qr/^load_module \Q${\ $t->module_path }\E;$/m, 'load_module by default');


# --- nginx -t ------------------------------------------------------------

my ($rc, $out) = $t->nginx_t;
is($rc, 0, 'nginx -t accepts the good config') or diag($out);
like($out, qr/syntax is ok/, 'nginx -t output');

my $bad = $t->write_config(file => 'bad.conf', module => 0, http => <<'EOF');
    server {
        listen 127.0.0.1:%%PORT_http%%;
        bogus_directive on;
    }
EOF
($rc, $out) = $t->nginx_t(conf => $bad);
isnt($rc, 0, 'nginx -t rejects an unknown directive');
like($out, qr/unknown directive "bogus_directive" in \Q$bad\E:\d+/,
     'nginx -t names file:line') or diag($out);


# --- start ---------------------------------------------------------------

my $master = $t->start;
ok($master, "started, master $master");
is($t->master_pid, $master, 'master_pid');
my @workers = $t->worker_pids;
is(scalar @workers, 1, 'one worker process');
like(RdxTest::_cmdline($workers[0]), qr/worker process/, 'worker cmdline');

my $r = $t->http(path => '/local');
is($r->{status}, 200, 'GET served');
is($r->{body}, "dir=$dir\n", '%%DIR%% substituted, body read to the end');
is($r->{headers}{'content-type'}, 'text/plain', 'headers are lowercased');


# --- bodies arrive byte-identical -----------------------------------------

my $body = json_body(300);
$r = $t->http(method => 'POST', path => '/v1/cl?x=1', body => $body,
              headers => [ 'Content-Type' => 'application/json',
                           'X-Test-Id' => 'cl' ]);
is($r->{status}, 202, 'POST with Content-Length: 202 from upstream');
is($r->{body}, '{"ok":1}', 'upstream body relayed');
my $s = seen($up, 'cl');
ok($s, 'upstream recorded the request');
is($s->{method}, 'POST', 'method recorded');
is($s->{uri}, '/v1/cl?x=1', 'uri recorded');
is($s->{len}, length $body, 'length recorded');
is($s->{sha256}, sha256_hex($body), 'sha256 identical');
is($s->{body}, $body, 'body_b64 decodes to the body');
is($s->{headers}{'content-type'}, 'application/json', 'header recorded');

$body = json_body(2000);
$r = $t->http(path => '/v1/chunked', body => $body, chunked => 1000,
              headers => [ 'X-Test-Id' => 'chunked' ]);
is($r->{status}, 202, 'chunked POST');
$s = seen($up, 'chunked');
is($s->{sha256}, sha256_hex($body), 'chunked body identical at upstream');
is($s->{headers}{'content-length'}, length $body,
   'nginx forwarded it with Content-Length');

my $mark = $t->log_mark;
$body = blob(2 * 1024 * 1024, 7);
$r = $t->http(path => '/v1/big', body => $body,
              headers => [ 'X-Test-Id' => 'big' ]);
is($r->{status}, 202, '2 MB POST');
$s = seen($up, 'big');
is($s->{len}, 2 * 1024 * 1024, '2 MB arrived');
is($s->{sha256}, sha256_hex($body), '2 MB body identical');
ok(!exists $s->{body_b64}, 'no body_b64 above 1 MiB');
ok(scalar $t->grep_log(qr/buffered to a temporary file/, since => $mark),
   'the body went through a temp file (above client_body_buffer_size)');

my $plain = json_body(500);
gzip(\$plain => \my $gz) or die $GzipError;
$r = $t->http(path => '/v1/gzip', body => $gz,
              headers => [ 'Content-Encoding' => 'gzip',
                           'X-Test-Id' => 'gzip' ]);
is($r->{status}, 202, 'gzip POST');
$s = seen($up, 'gzip');
is($s->{sha256}, sha256_hex($gz), 'gzip bytes forwarded unchanged');
is($s->{headers}{'content-encoding'}, 'gzip', 'Content-Encoding kept');

$body = json_body(100);
my $t0 = time;
$r = $t->http(path => '/v1/split', body => $body, split => [ 10, 60, 200 ],
              delay => 0.2, headers => [ 'X-Test-Id' => 'split' ]);
is($r->{status}, 202, 'request sent in pieces');
cmp_ok(time - $t0, '>=', 0.6, 'the pieces were paused');
is(seen($up, 'split')->{sha256}, sha256_hex($body), 'split body identical');

$body = blob(100_000, 3);
$r = $t->http2(path => '/v1/h2', body => $body,
               headers => [ 'X-Test-Id' => 'h2' ]);
is($r->{status}, 202, 'HTTP/2 POST') or diag($r->{error});
is($r->{body}, '{"ok":1}', 'HTTP/2 response body');
is(seen($up, 'h2')->{sha256}, sha256_hex($body), 'HTTP/2 body identical');

is($t->http(path => '/local', http10 => 1)->{status}, 200, 'HTTP/1.0 client');

$r = $t->http(path => '/v1/abort', body => blob(50_000, 5),
              abort_after => 1000, headers => [ 'X-Test-Id' => 'abort' ]);
ok(!defined $r, 'abort_after returns undef');
ok(wait_for(sub { $t->grep_log(qr/client prematurely closed/) }, 5),
   'nginx saw the abort');
ok(!seen($up, 'abort'), 'the aborted request never reached the upstream');

for my $i (1 .. 5) {
    $t->http(path => "/ka/$i", body => "{\"i\":$i}",
             headers => [ 'X-Test-Id' => "ka$i" ]);
}
my @ka = map { scalar seen($up, "ka$_") } 1 .. 5;
is(scalar(grep { $_ && $_->{proto} eq '1.1' } @ka), 5,
   'keep-alive upstream: HTTP/1.1 requests');
cmp_ok(scalar(keys %{{ map { $_->{pid} => 1 } grep { $_ } @ka }}), '<=', 2,
       'keep-alive upstream: connections reused');

my @pl = $t->pipeline(requests => [
    map { { path => "/v1/pipe", body => "{\"p\":$_}",
            headers => [ 'X-Test-Id' => "pipe$_" ] } } 1 .. 3 ]);
is_deeply([ map { $_->{status} } @pl ], [ 202, 202, 202 ],
          'three pipelined POSTs answered');
is(scalar(grep { seen($up, "pipe$_") } 1 .. 3), 3,
   'three pipelined bodies reached the upstream');

$r = $t->http(raw => "GARBAGE\r\n\r\n");
is($r->{status}, 400, 'raw request sent as it is');

is($t->http(port => $t->port('unused'), path => '/')->{status}, 0,
   'status 0 when nothing listens');


# --- upstream failure switches --------------------------------------------

$up->set(status => 503);
is($t->http(path => '/v1/x', body => '{}')->{status}, 503,
   'upstream 503 passed through');

$up->set(status => 202, delay => 0.5);
$t0 = time;
is($t->http(path => '/v1/x', body => '{}')->{status}, 202, 'delayed 202');
cmp_ok(time - $t0, '>=', 0.5, 'the upstream delayed its answer');

$up->set(delay => 0, close => 1);
is($t->http(path => '/v1/x', body => '{}', headers => [ 'X-Test-Id' => 'cl1' ])
   ->{status}, 502, 'upstream closing without answer: 502');
is(seen($up, 'cl1')->{status}, 'close', 'the upstream logged the close');

$up->set(close => 0);
is($t->http(path => '/v1/x', body => '{}')->{status}, 202, 'back to normal');


# --- load -----------------------------------------------------------------

my $res = $t->load(path => '/v1/load', n => 200, concurrency => 8);
is(scalar keys %$res, 200, 'load: 200 outcomes');
is(scalar(grep { $_ >= 200 && $_ < 300 } values %$res), 200, 'load: all 2xx');
my %ids = map { $_->{headers}{'x-test-id'} => 1 }
          grep { $_->{uri} eq '/v1/load' } $up->requests;
is(scalar(grep { $ids{$_} } keys %$res), 200,
   'load: every X-Test-Id reached the upstream');

my $mixed = $t->load(path => '/ka/load', n => 50, concurrency => 4,
    body => sub {
        my $id = shift;
        return ([ 'Content-Type' => 'text/plain' ], "body-$id" x 10);
    });
is(scalar(grep { $_ == 202 } values %$mixed), 50, 'load with a body sub');
my ($one) = sort { $a <=> $b } keys %$mixed;
is(seen($up, $one)->{body}, "body-$one" x 10, 'body sub gets the id');


# --- reload, stop, start, crash --------------------------------------------

my $l = $t->load_start(path => '/v1/reload', n => 400, concurrency => 4);
wait_for(sub { keys %{ $l->results } >= 50 }, 10, 'load to get going');
my %old = map { $_ => 1 } $t->worker_pids;
ok($t->reload, 'reload under load');
my @new = $t->worker_pids;
ok(@new == 1 && !$old{ $new[0] }, 'workers replaced by new ones');
is($t->master_pid, $master, 'same master after reload');
$res = $l->finish;
is(scalar keys %$res, 400, 'load across reload: 400 outcomes');
is(scalar(grep { $_ == 202 } values %$res), 400,
   'load across reload: all 202') or diag(explain([
       grep { $res->{$_} != 202 } sort { $a <=> $b } keys %$res]));

ok($t->stop, 'stop');
ok(!RdxTest::_alive($master), 'master gone after stop');
ok(!-e "$dir/nginx.pid", 'pid file removed');
is($t->http(path => '/local')->{status}, 0, 'nothing listens after stop');

$master = $t->start;
is($t->http(path => '/local')->{status}, 200, 'start again');

is($t->signal('USR1'), 1, 'signal (USR1 reopens logs)');

ok($t->stop_fast, 'stop_fast');
ok(!$t->master_pid, 'no master after stop_fast');
ok(!RdxTest::_proc_stat($master), 'the old master was reaped, no zombie');
$master = $t->start;

my $upgraded = $t->upgrade;
isnt($upgraded, $master, 'binary upgrade: new master');
ok(!RdxTest::_alive($master), 'binary upgrade: old master gone');
is($t->master_pid, $upgraded, 'binary upgrade: pid file names the new one');
is($t->http(path => '/local')->{status}, 200, 'served after the upgrade');
$master = $upgraded;

$l = $t->load_start(path => '/v1/crash', n => 100_000, concurrency => 4);
wait_for(sub { keys %{ $l->results } >= 50 }, 10, 'load to get going');
my @procs = ($master, $t->worker_pids);
$t->kill_master9;
ok(!grep({ RdxTest::_alive($_) } @procs), 'kill_master9: master and workers gone');
ok(!$t->master_pid, 'no live master (stale pid file)');
my $failed_at = keys %{ $l->results };
wait_for(sub { grep { !$_ } values %{ $l->results } }, 5, 'failures');
$master = $t->start;
ok($master, 'start after kill -9');
wait_for(sub { keys %{ $l->results } >= $failed_at + 100 }, 10,
         'load to resume');
$res = $l->stop;
my @zero = grep { $res->{$_} == 0 } keys %$res;
my ($first_zero) = sort { $a <=> $b } @zero;
ok(@zero > 0, 'load recorded connection failures as 0');
ok($first_zero && grep({ $_ > $first_zero && $res->{$_} == 202 } keys %$res),
   'load continued with 202 after the restart');
is(scalar(grep { $_ != 0 && $_ != 202 } values %$res), 0,
   'no other statuses during the crash');


# --- archive readers --------------------------------------------------------

my $arch = "$dir/archive";
my @recs = map {
    sprintf '{"id":"host-a-42-1700000000000-%d","ts":"2024-01-02T03:04:0%d.000Z",'
          . '"stream":"metrics","body":{"n":%d}}', $_, $_, $_
} 1 .. 3;
my $nd = join('', map { "$_\n" } @recs);
my $k1 = 'pfx/stream=metrics/dt=2024-01-02/hour=03/'
       . 'host-a-42-1700000000000-00000001.ndjson.zst';
RdxTest::write_archive_object("$arch/$k1", $nd);

my $k2 = 'pfx/stream=logs/dt=2024-01-02/hour=03/'
       . 'host-b-7-1700000000000-00000002.ndjson.zst';
system('mkdir', '-p', "$arch/pfx/stream=logs/dt=2024-01-02/hour=03");
$t->write_file("$arch/k2.ndjson", qq({"id":"x","body_b64":"AA=="}\n));
system('zstd', '-q', '--rm', '-o', "$arch/$k2", "$arch/k2.ndjson") == 0
    or die 'zstd failed';
$t->write_file("$arch/ignored.txt", 'not an object');

my @objs = $t->archive_objects($arch);
is(scalar @objs, 2, 'archive_objects finds *.ndjson.zst only');
is_deeply([ map { $_->{key} } @objs ], [ sort $k1, $k2 ],
          'keys relative to the dir, sorted');
my ($o1) = grep { $_->{key} eq $k1 } @objs;
my ($o2) = grep { $_->{key} eq $k2 } @objs;
is(scalar @{ $o1->{records} }, 3, 'records decoded');
is($o1->{records}[2]{body}{n}, 3, 'record content');
is($o1->{lines}[0], $recs[0], 'raw lines kept');
is($o1->{size}, -s "$arch/$k1", 'size');
is_deeply($o1->{trailer}, {
    v => 1, count => 3, first_ts => '2024-01-02T03:04:01.000Z',
    last_ts => '2024-01-02T03:04:03.000Z', raw_bytes => length $nd,
    sha256 => sha256_hex($nd) }, 'trailer parsed');
is($o1->{raw_sha256}, $o1->{trailer}{sha256}, 'raw_sha256 matches trailer');
ok(!defined $o2->{trailer}, 'no trailer: undef');
is($o2->{records}[0]{body_b64}, 'AA==', 'object without trailer read');
is(scalar($t->archive_records($arch)), 4, 'archive_records: all records');

# A torn object (crashed spool) still yields its readable prefix.
my $whole = $t->read_file("$arch/$k1");
$t->write_file("$dir/torn/x.ndjson.zst", '') if mkdir "$dir/torn";
$t->write_file("$dir/torn/x.ndjson.zst", substr($whole, 0, 20));
my ($torn) = $t->archive_objects("$dir/torn");
ok($torn->{error}, 'torn object: error reported');
ok(!defined $torn->{trailer}, 'torn object: no trailer');

my $k = parse_key($k1);
is_deeply($k, { prefix => 'pfx', stream => 'metrics', dt => '2024-01-02',
                hour => '03', instance => 'host-a', pid => 42,
                startms => '1700000000000', seq => '00000001' },
          'parse_key parses from the right');
ok(!parse_key('stream=x/dt=2024-01-02/hour=03/a-1-2-3.ndjson.zst'),
   'parse_key rejects a short SEQ');


# --- helpers ------------------------------------------------------------------

$t0 = time;
ok(!wait_for(sub { 0 }, 0.2), 'wait_for returns false on timeout');
cmp_ok(time - $t0, '<', 2 * RdxTest::scale(), 'wait_for honours its timeout');
is(wait_for(sub { 42 }, 1), 42, 'wait_for returns the true value');

$t->check_error_log;
ok(!$t->master_pid, 'check_error_log stopped nginx first');

done_testing();
