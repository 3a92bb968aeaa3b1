#!/usr/bin/perl
# reductrai replay from an archive the module wrote to recording servers:
# method, path and query (REDACTED stays), Content-Type, User-Agent and the
# body encoded again as its Content-Encoding (gzip, deflate, zstd/zstd1,
# identity; raw bytes when decoding had failed), byte-identical once
# decoded; the API key from --header or the environment, never from the
# archive; --to with a path; --dry-run; --rate; retries on 503 with
# Retry-After; failures; --checkpoint resuming after --limit, kill -9 and
# SIGINT, with nothing delivered twice beyond the request in flight.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Compress::Zlib ();
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time sleep);

use RdxTest qw(wait_for zstd_compress);
use RdxCli qw(cli cli_start cli_wait module_archive);

my $t = RdxTest->new;
my $json = JSON::PP->new->utf8->canonical;

sub zstd_d {
    my ($data) = @_;
    my $in = $t->write_file('zin.zst', $data);
    my $out = `zstd -q -d -c $in`;
    return $? ? undef : $out;
}

sub decode_body {
    my ($enc, $body) = @_;
    return $body if !defined $enc || $enc eq '';
    if ($enc eq 'gzip') {
        gunzip(\$body => \my $out) or return undef;
        return $out;
    }
    return Compress::Zlib::uncompress($body) if $enc eq 'deflate';
    return zstd_d($body) if $enc =~ /^zstd1?$/;
    return undef;
}

# a point of now: Datadog's intake, and replay's default window, drop metric
# points older than an hour (t/69-cli-replay-window.t)
my $series = '{"series":[{"metric":"cpu","points":[[' . int(time)
           . ',0.5]]}]}';
my $logs = '[{"message":"hello","status":"info"}]';
my $logs_z = '[{"message":"zstd1 as Datadog spells it"}]';
my $binary = join '', map { chr } 0 .. 255;
gzip(\$series => \my $series_gz) or die $GzipError;

# the originals: what each request sent, what a replay must deliver
my @orig = (
    { path => '/api/v1/series?api_key=secret1&n=1', body => $series,
      want => $series, ct => 'application/json', ua => 'datadog-agent/7.50',
      headers => [ 'Content-Type' => 'application/json',
                   'DD-API-KEY' => 'orig-key',
                   'User-Agent' => 'datadog-agent/7.50' ] },
    { path => '/api/v1/series?n=2', body => $series_gz, want => $series,
      ct => 'application/json', ce => 'gzip',
      headers => [ 'Content-Type' => 'application/json',
                   'Content-Encoding' => 'gzip',
                   'DD-API-KEY' => 'orig-key' ] },
    { path => '/api/v2/logs?n=3', body => Compress::Zlib::compress($logs),
      want => $logs, ct => 'application/json', ce => 'deflate',
      headers => [ 'Content-Type' => 'application/json',
                   'Content-Encoding' => 'deflate' ] },
    { path => '/api/v2/logs?n=4', body => zstd_compress($logs_z), want => $logs_z,
      ce => 'zstd1', headers => [ 'Content-Encoding' => 'zstd1' ] },
    { path => '/other/put?n=5', method => 'PUT', body => $binary,
      want => $binary, ct => 'application/octet-stream',
      headers => [ 'Content-Type' => 'application/octet-stream' ] },
    { path => '/other/bad?n=6', body => 'garbage!', want => 'garbage!',
      ce => 'gzip', raw => 1,
      headers => [ 'Content-Encoding' => 'gzip' ] },
    { path => '/api/v2/logs?ddsource=x&dd-api-key=secret2&n=7',
      body => '{ "a" : [1, 2],  "b":"c d" }', want => '{"a":[1,2],"b":"c d"}',
      ct => 'application/json',
      headers => [ 'Content-Type' => 'application/json' ] },
    { path => '/other/patch?n=8', method => 'PATCH', body => '{"p":true}',
      want => '{"p":true}' },
);

my @rate = map { { path => "/other/rate/$_", body => qq({"r":$_}),
                   headers => [ 'Content-Type' => 'application/json' ] } }
           1 .. 20;

my ($arch) = module_archive($t, requests => [ @orig, @rate ], workers => 2);
my $uri = "file://$arch";

my %rec_of;
for my $r ($t->archive_records($arch)) {
    $rec_of{ $r->{uri} } = $r;
}
is(scalar keys %rec_of, 28, '28 records archived');

(my $redacted1 = $orig[0]{path}) =~ s/secret1/REDACTED/;
(my $redacted7 = $orig[6]{path}) =~ s/secret2/REDACTED/;
ok($rec_of{$redacted1} && $rec_of{$redacted7}, 'credentials redacted');
$orig[0]{uri} = $redacted1;
$orig[6]{uri} = $redacted7;
$_->{uri} //= $_->{path} for @orig;
is($rec_of{ $orig[5]{uri} }{decode_error}, 'invalid_gzip',
   'the bad gzip body has a decode_error');

my $specials = "--uri=*n=[1-8]";

sub nreq { my @r = $_[0]->requests; return scalar @r }

sub by_id {
    my ($up) = @_;
    my %h;
    push @{ $h{ $_->{headers}{'x-reductrai-record-id'} // '' } }, $_
        for $up->requests;
    return \%h;
}


# --- replay: what arrives ------------------------------------------------

my $up = $t->start_upstream(name => 'intake', status => 202);

my $r = cli('replay', $uri, $specials, '--to', $up->url,
            '--header', 'DD-API-KEY: replay-key');
is($r->{rc}, 0, 'replay exits 0') or diag($r->{err});
like($r->{err}, qr/^replay: 8 sent, 8 ok, 0 failed, 0 skipped, 0 retries, [\d.]+s/m,
     'summary') or diag($r->{err});

my $got = by_id($up);
is(scalar(keys %$got), 8, '8 distinct records arrived');

for my $o (@orig) {
    my $rec = $rec_of{ $o->{uri} };
    my ($q) = @{ $got->{ $rec->{id} } // [] };
    ok($q, "$o->{uri}: arrived once") or next;
    is(scalar @{ $got->{ $rec->{id} } }, 1, "$o->{uri}: exactly once");

    is($q->{method}, $o->{method} // 'POST', "$o->{uri}: method");
    is($q->{uri}, $o->{uri}, "$o->{uri}: path and query");
    is($q->{headers}{'content-encoding'}, $o->{ce},
       "$o->{uri}: Content-Encoding " . ($o->{ce} // 'absent'));
    is($q->{headers}{'content-type'}, $o->{ct},
       "$o->{uri}: Content-Type " . ($o->{ct} // 'absent'));
    is($q->{headers}{'dd-api-key'}, 'replay-key',
       "$o->{uri}: DD-API-KEY from --header");
    is($q->{headers}{'user-agent'}, $o->{ua} // 'reductrai-replay/1.0.0',
       "$o->{uri}: User-Agent");

    if ($o->{raw}) {
        is($q->{body}, $o->{body},
           "$o->{uri}: undecodable body sent as received");
    } else {
        my $dec = decode_body($o->{ce}, $q->{body});
        is($dec, $o->{want}, "$o->{uri}: body identical once decoded");
    }
}

my ($gz) = @{ $got->{ $rec_of{ $orig[1]{uri} }{id} } };
like($gz->{body}, qr/^\x1f\x8b/, 'gzip body is gzip');
my ($zl) = @{ $got->{ $rec_of{ $orig[2]{uri} }{id} } };
like($zl->{body}, qr/^\x78/, 'deflate body is zlib-wrapped');
my ($zs) = @{ $got->{ $rec_of{ $orig[3]{uri} }{id} } };
like($zs->{body}, qr/^\x28\xb5\x2f\xfd/, 'zstd1 body is zstd');

ok(!grep({ $json->encode($_) =~ /orig-key|secret1|secret2/ } $up->requests),
   'no credential of the original requests reaches the target');


# --- the target's path, credentials from the environment ------------------

$up = $t->start_upstream(name => 'intake2', status => 200);
$r = cli({ env => { DD_API_KEY => 'env-key',
                    REDUCTRAI_REPLAY_HEADER => "X-Tenant: t1\nX-Other: 2" } },
         'replay', $uri, $specials, '--to', $up->url . '/prefix/', '-v');
is($r->{rc}, 0, 'replay with the environment: exit 0');
like($r->{err}, qr/header DD-API-KEY from \$DD_API_KEY/,
     '-v says where the key came from');
unlike($r->{err}, qr/env-key/, 'but never the key');
my @q = $up->requests;
is(scalar @q, 8, '8 requests');
is(scalar(grep { ($_->{headers}{'dd-api-key'} // '') eq 'env-key' } @q), 8,
   '$DD_API_KEY sent as DD-API-KEY');
is(scalar(grep { ($_->{headers}{'x-tenant'} // '') eq 't1'
                 && ($_->{headers}{'x-other'} // '') eq '2' } @q), 8,
   '$REDUCTRAI_REPLAY_HEADER lines sent');
is(scalar(grep { $_->{uri} =~ m{^/prefix/(api|other)/} } @q), 8,
   'the path of --to is kept in front');

$up->stop;
$up = $t->start_upstream(name => 'intake3', status => 200);
$r = cli({ env => { DD_API_KEY => 'env-key' } }, 'replay', $uri,
         $specials, '--to', $up->url, '-H', 'dd-api-key: cli-key',
         '-H', 'Content-Type: text/x-forced', '--limit', '2');
@q = $up->requests;
is(scalar(grep { $_->{headers}{'dd-api-key'} eq 'cli-key' } @q), 2,
   '--header wins over $DD_API_KEY');
is(scalar(grep { $_->{headers}{'content-type'} eq 'text/x-forced' } @q), 2,
   '--header Content-Type overrides the record\'s');
like($r->{err}, qr/^replay: 2 sent, 2 ok/m, '--limit 2');


# --- dry run --------------------------------------------------------------

$up->stop;
$up = $t->start_upstream(name => 'dry', status => 200);
$r = cli('replay', $uri, $specials, '--to', $up->url, '--dry-run',
         '-H', 'DD-API-KEY: dry-secret');
is($r->{rc}, 0, '--dry-run: exit 0');
my @dry = split /\n/, $r->{out};
is(scalar @dry, 8, '--dry-run: a line per record');
like($dry[0], qr{^(POST|PUT|PATCH) http://127\.0\.0\.1:\d+/\S+ id=\S+ bytes=\d+ .*DD-API-KEY},
     '--dry-run line: method, URL, id, size, header names');
my ($put) = grep { /^PUT / } @dry;
like($put, qr{/other/put\?n=5 id=\S+ bytes=256 Content-Type User-Agent X-Reductrai-Record-Id DD-API-KEY$},
     '--dry-run: the PUT');
unlike($r->{out} . $r->{err}, qr/dry-secret/, 'no header value printed');
like($r->{err}, qr/^replay \(dry run\): 8 would be sent, 0 skipped/m,
     '--dry-run summary');
sleep 0.2;
is(nreq($up), 0, 'nothing sent');


# --- rate limit -------------------------------------------------------------

$up->stop;
$up = $t->start_upstream(name => 'rate', status => 202);
$r = cli('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
         '--rate', '10', '--concurrency', '4');
is($r->{rc}, 0, '--rate 10: exit 0');
like($r->{err}, qr/^replay: 20 sent, 20 ok/m, '20 records');
ok($r->{elapsed} >= 1.8, sprintf('20 records at 10/s took %.2fs (>= 1.8)',
                                 $r->{elapsed}));
ok($r->{elapsed} < 15, 'and not absurdly long');
my @t = sort { $a <=> $b } map { $_->{t} } $up->requests;
ok($t[-1] - $t[0] >= 1.7, sprintf('first to last arrival %.2fs',
                                  $t[-1] - $t[0]));
my $max_in_1s = 0;
for my $i (0 .. $#t) {
    my $n = grep { $_ >= $t[$i] && $_ < $t[$i] + 1 } @t;
    $max_in_1s = $n if $n > $max_in_1s;
}
ok($max_in_1s <= 11, "at most 11 arrivals in any second ($max_in_1s)");


# --- concurrency ------------------------------------------------------------

$up->stop;
$up = $t->start_upstream(name => 'conc', status => 202, delay => 0.3);
$r = cli('replay', $uri, '--uri', '/other/rate/1', '--limit', '8', '--to',
         $up->url, '--concurrency', '4');
like($r->{err}, qr/^replay: 8 sent, 8 ok/m, '8 records, 0.3 s each');
ok($r->{elapsed} >= 0.55 && $r->{elapsed} < 1.5,
   sprintf('--concurrency 4: %.2fs (two rounds of 0.3 s; serial: 2.4 s)',
           $r->{elapsed}));


# --- retries: 503 with Retry-After, then success -----------------------------

$up->stop;
$up = $t->start_upstream(name => 'retry', status => 503,
                         headers => [ 'Retry-After' => '1' ]);
my $h = cli_start('replay', $uri, '--uri', '/other/rate/1', '--limit', '2',
                  '--to', $up->url, '--concurrency', '2');
wait_for(sub { nreq($up) >= 4 }, 20, 'two 503 rounds')
    or diag('requests: ' . nreq($up));
$up->set(status => 202, headers => []);
$r = cli_wait($h, 60);
is($r->{rc}, 0, 'after 503s, success: exit 0') or diag($r->{err});
my ($retries) = $r->{err} =~ /(\d+) retries/;
like($r->{err}, qr/^replay: 2 sent, 2 ok, 0 failed, 0 skipped, \d+ retries/m,
     'summary: 2 ok');
ok($retries >= 2, "retries counted ($retries)");

my $tries = by_id($up);
is(scalar keys %$tries, 2, 'two records');
for my $id (sort keys %$tries) {
    my @a = @{ $tries->{$id} };
    is($a[-1]{status}, 202, "$id: the last attempt got 202");
    ok((grep { $_->{status} == 503 } @a) >= 1, "$id: after 503");
    my @gaps = map { $a[$_]{t} - $a[$_ - 1]{t} } 1 .. $#a;
    ok(!grep({ $_ < 0.9 } @gaps),
       "$id: Retry-After: 1 honoured (gaps @{[ map { sprintf '%.2f', $_ } @gaps ]})");
}


# --- failures -------------------------------------------------------------------

$up->set(status => 400, body => '{"errors":["Bad payload"]}');
$r = cli('replay', $uri, '--uri', '[/]other/rate/2', '--to', $up->url);
is($r->{rc}, 5, 'HTTP 400: exit 5');
like($r->{err}, qr/: POST http:\S+\/other\/rate\/2: HTTP 400 \{"errors":\["Bad payload"\]\} \(1 attempt\)$/m,
     'the failure, with the start of the answer');
like($r->{err}, qr/^replay: 1 sent, 0 ok, 1 failed/m, 'summary');

$r = cli('replay', $uri, '--uri', '[/]other/rate/2', '--to',
         'http://127.0.0.1:1', '--retries', '2', '--retry-max', '0.1');
is($r->{rc}, 5, 'unreachable target: exit 5');
like($r->{err}, qr/Could(n't| not) connect.*\(3 attempts\)$/m,
     'connection refused, 3 attempts');
like($r->{err}, qr/^replay: 1 sent, 0 ok, 1 failed, 0 skipped, 2 retries/m,
     'summary counts the retries');


# --- resume: --limit, then the rest ------------------------------------------

$up->stop;
$up = $t->start_upstream(name => 'resume', status => 202);
my $ck = $t->path('limit.ckpt');

$r = cli('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
         '--checkpoint', $ck, '--limit', '7');
like($r->{err}, qr/^replay: 7 sent, 7 ok, 0 failed, 0 skipped/m,
     'first run: 7');
like($t->read_file($ck), qr/^# reductrai replay checkpoint v1\n/,
     'checkpoint written');

$r = cli('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
         '--checkpoint', $ck);
is($r->{rc}, 0, 'second run: exit 0');
like($r->{err}, qr/^replay: 13 sent, 13 ok, 0 failed, 7 skipped/m,
     'second run: the other 13, 7 skipped');

my $ids = by_id($up);
is(scalar keys %$ids, 20, 'all 20 delivered');
is(scalar(grep { @{ $ids->{$_} } > 1 } keys %$ids), 0, 'none twice');

$r = cli('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
         '--checkpoint', $ck);
like($r->{err}, qr/^replay: 0 sent, 0 ok, 0 failed, 20 skipped/m,
     'a third run sends nothing');

my @lines = grep { !/^#/ } split /\n/, $t->read_file($ck);
ok(@lines <= 2 && !grep({ !/^cli-test-\d+-\d+ [\d,-]+$/ } @lines),
   'compact: one line of ranges per worker') or diag(@lines);


# --- resume after kill -9 ------------------------------------------------------

$up->stop;
$up = $t->start_upstream(name => 'kill', status => 202);
$ck = $t->path('kill.ckpt');

$h = cli_start('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
               '--checkpoint', $ck, '--rate', '8', '--concurrency', '1');
wait_for(sub { nreq($up) >= 6 }, 20, '6 deliveries');
kill 'KILL', $h->{pid};
$r = cli_wait($h, 10);
is($r->{signal}, 9, 'replay killed with SIGKILL');
my $before = nreq($up);
ok($before >= 6 && $before < 20, "$before delivered before the kill");

$r = cli('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
         '--checkpoint', $ck);
is($r->{rc}, 0, 'rerun after kill -9: exit 0');
my ($sent, $skipped) = $r->{err} =~ /^replay: (\d+) sent, \d+ ok, 0 failed, (\d+) skipped/m;
ok($skipped >= $before - 1 && $sent + $skipped == 20,
   "rerun: $sent sent, $skipped skipped");

$ids = by_id($up);
is(scalar keys %$ids, 20, 'every record delivered');
my $dups = 0;
$dups += @{ $ids->{$_} } - 1 for keys %$ids;
ok($dups <= 1, "at most the one in flight delivered twice ($dups)");


# --- SIGINT: in-flight requests finish, checkpoint saved -------------------------

$up->stop;
$up = $t->start_upstream(name => 'int', status => 202, delay => 0.3);
$ck = $t->path('int.ckpt');

$h = cli_start('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
               '--checkpoint', $ck, '--concurrency', '2');
wait_for(sub { nreq($up) >= 4 }, 20, '4 requests');
kill 'INT', $h->{pid};
$r = cli_wait($h, 20);
is($r->{rc}, 130, 'SIGINT: exit 130');
like($r->{err}, qr/interrupted: rerun with the same --checkpoint to go on/,
     'says how to go on');
my ($ok1) = $r->{err} =~ /^replay: \d+ sent, (\d+) ok, 0 failed/m;

$r = cli('replay', $uri, '--uri', '/other/rate/', '--to', $up->url,
         '--checkpoint', $ck);
like($r->{err}, qr/^replay: ${\ (20 - $ok1)} sent, ${\ (20 - $ok1)} ok, 0 failed, $ok1 skipped/m,
     'rerun sends the rest');

$ids = by_id($up);
is(scalar keys %$ids, 20, 'every record delivered');
is(scalar(grep { @{ $ids->{$_} } > 1 } keys %$ids), 0,
   'none twice: the requests in flight finished before the exit');


# --- a corrupt object is not replayed -----------------------------------------

my ($victim) = grep { $_->{key} =~ m{^stream=other/} }
               $t->archive_objects($arch, decode => 0);
my $victim_records = @{ RdxTest::read_archive_object($victim->{path})->{lines} };
my $data = $t->read_file($victim->{path});
my $tlen = unpack 'V', substr($data, -8, 4);
my $mid = int((length($data) - $tlen) / 2);
substr($data, $mid, 1) = chr(ord(substr($data, $mid, 1)) ^ 0x20);
$t->write_file($victim->{path}, $data);

$up->set(delay => 0);
my $n0 = nreq($up);
$r = cli('replay', $uri, '--stream', 'other', '--to', $up->url);
is($r->{rc}, 4, 'a corrupt object: exit 4');
like($r->{err}, qr/^reductrai: replay: \Q$victim->{key}\E: corrupt object not replayed: zstd: /m,
     'reported, none of its records sent');
my $n1 = nreq($up);
is($n1 - $n0, 23 - $victim_records,
   "the other objects were replayed ($victim_records records left out)");

$t->check_error_log;
done_testing;
