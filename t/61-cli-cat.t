#!/usr/bin/perl
# reductrai cat over an archive the module wrote: every record in key
# order; --stream, --from/--to on the records' ts, --grep, --uri (prefix and
# glob), --api-key-fp, --limit, --body (JSON, base64 bodies, bodies whose
# decoding failed); memory that does not grow with the archive; a corrupt
# object.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Compress::Zlib ();
use Digest::SHA qw(sha256_hex);
use IO::Compress::Gzip qw(gzip $GzipError);
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time sleep);

use RdxTest qw(wait_for parse_key zstd_compress);
use RdxCli qw(cli cli_start cli_wait module_archive);

my $t = RdxTest->new;
my $json = JSON::PP->new->utf8->canonical;

sub fp { substr(sha256_hex($_[0]), 0, 8) }

my $series = '{"series":[{"metric":"cpu.user","points":[[1700000000,0.5]],'
           . '"tags":["host:a"]}]}';
my $logs = '[{"message":"disk full","ddsource":"nginx"}]';
my $logs2 = '[{"message":"timeout talking to db","status":"error"}]';
my $logs3 = '[{"message":"zstd compressed","n":3}]';
my $binary = "\x00\x01\x02\xff\xfe binary";

gzip(\$series => \my $series_gz) or die $GzipError;
my $logs_zlib = Compress::Zlib::compress($logs2);
my $logs_zstd = zstd_compress($logs3);

# batch A, then (300 ms later) batch B: --from/--to split them by ts
my @a = (
    { path => '/api/v1/series?api_key=secret1', body => $series,
      headers => [ 'Content-Type' => 'application/json',
                   'DD-API-KEY' => 'key-a' ] },
    { path => '/api/v1/series', body => $series_gz,
      headers => [ 'Content-Type' => 'application/json',
                   'Content-Encoding' => 'gzip', 'DD-API-KEY' => 'key-b' ] },
    { path => '/api/v2/logs?ddsource=nginx', body => $logs,
      headers => [ 'DD-API-KEY' => 'key-a' ] },
    { path => '/api/v1/check_run', body => '{ "check" : "ok" ,"status": 0 }',
      headers => [ 'DD-API-KEY' => 'key-a' ], pause => 0.3 },
);
my @b = (
    { path => '/api/v2/logs?ddsource=db', body => $logs_zlib,
      headers => [ 'Content-Encoding' => 'deflate',
                   'DD-API-KEY' => 'key-b' ] },
    { path => '/api/v2/logs', body => $logs_zstd,
      headers => [ 'Content-Encoding' => 'zstd' ] },
    { path => '/other/bin', body => $binary,
      headers => [ 'Content-Type' => 'application/octet-stream' ] },
    { path => '/other/bad', body => 'garbage!',
      headers => [ 'Content-Encoding' => 'gzip' ] },
);

my ($arch) = module_archive($t, requests => [ @a, @b ], workers => 2);
my $uri = "file://$arch";

my @objects = $t->archive_objects($arch);
my @lines = map { @{ $_->{lines} } } @objects;
my @records = map { @{ $_->{records} } } @objects;
is(scalar @records, 8, '8 records archived');


# --- everything, in key order --------------------------------------------

my $r = cli('cat', $uri);
is($r->{rc}, 0, 'cat exits 0') or diag($r->{err});
is($r->{err}, '', 'nothing on stderr');
is_deeply([ split /\n/, $r->{out} ], \@lines,
          'every line, as stored, in key order');


# --- selectors and filters -----------------------------------------------

sub ids {
    my ($out) = @_;
    return [ sort map { $json->decode($_)->{uri} } split /\n/, $out ];
}

$r = cli('cat', $uri, '--stream', 'logs');
is_deeply(ids($r->{out}), [ sort '/api/v2/logs?ddsource=nginx',
                            '/api/v2/logs?ddsource=db', '/api/v2/logs' ],
          '--stream logs');

$r = cli('cat', $uri, '--stream', 'metrics,other');
is(scalar(split /\n/, $r->{out}), 5, '--stream metrics,other: 5 records');

my @ts = sort map { $_->{ts} } @records;
my ($first_b) = sort map { $_->{ts} }
                grep { $_->{uri} =~ m{ddsource=db|^/other/|^/api/v2/logs$} }
                @records;
my ($last_a) = reverse sort map { $_->{ts} }
               grep { $_->{uri} =~ m{series|nginx|check_run} } @records;
ok($last_a lt $first_b, "batch A ($last_a) before batch B ($first_b)");

$r = cli('cat', $uri, '--from', $first_b);
is_deeply(ids($r->{out}), [ sort '/api/v2/logs?ddsource=db', '/api/v2/logs',
                            '/other/bin', '/other/bad' ],
          '--from the first ts of batch B: batch B');
$r = cli('cat', $uri, '--to', $last_a);
is_deeply(ids($r->{out}), [ sort '/api/v1/series?api_key=REDACTED',
                            '/api/v1/series', '/api/v2/logs?ddsource=nginx',
                            '/api/v1/check_run' ],
          '--to the last ts of batch A (inclusive to the ms): batch A');
$r = cli('cat', $uri, '--from', $first_b, '--to', $first_b);
is(scalar(split /\n/, $r->{out}), scalar(grep { $_ eq $first_b } @ts),
   '--from = --to = one ms: the records of that ms');

$r = cli('cat', $uri, '--grep', 'cpu.user');
is_deeply(ids($r->{out}), [ sort '/api/v1/series?api_key=REDACTED',
                            '/api/v1/series' ],
          '--grep in the decoded body (both series, one sent gzipped)');

$r = cli('cat', $uri, '--grep', '"forwarded":false', '--stream', 'other');
is(scalar(split /\n/, $r->{out}), 2, '--grep with --stream');

$r = cli('cat', $uri, '--uri', '/api/v1/series');
is(scalar(split /\n/, $r->{out}), 2, '--uri prefix');

$r = cli('cat', $uri, '--uri', '*REDACTED*');
is_deeply(ids($r->{out}), [ '/api/v1/series?api_key=REDACTED' ],
          '--uri glob: the redacted credential stays redacted');

$r = cli('cat', $uri, '--uri', '/api/v2/logs?ddsource=*');
is(scalar(split /\n/, $r->{out}), 2, '--uri glob with a query');

$r = cli('cat', $uri, '--uri', '/nothing');
is($r->{out}, '', '--uri that matches nothing');
is($r->{rc}, 0, 'still exit 0');

$r = cli('cat', $uri, '--api-key-fp', fp('key-a'));
is_deeply(ids($r->{out}), [ sort '/api/v1/series?api_key=REDACTED',
                            '/api/v2/logs?ddsource=nginx',
                            '/api/v1/check_run' ],
          '--api-key-fp of key-a');
$r = cli('cat', $uri, '--api-key-fp', fp('key-b'), '--stream', 'logs');
is_deeply(ids($r->{out}), [ '/api/v2/logs?ddsource=db' ],
          '--api-key-fp of key-b in logs');
unlike($r->{out}, qr/key-b/, 'no API key in the archive');

$r = cli('cat', $uri, '--limit', '3');
is_deeply([ split /\n/, $r->{out} ], [ @lines[0 .. 2] ],
          '--limit 3: the first three');
$r = cli('cat', $uri, '--limit', '3', '--stream', 'logs', '--grep',
         'ddsource');
is(scalar(split /\n/, $r->{out}), 2, '--limit above what matches');


# --- --body --------------------------------------------------------------

my %body = (
    '/api/v1/series?api_key=secret1' => $series,
    '/api/v1/series'                 => $series,
    '/api/v2/logs?ddsource=nginx'    => $logs,
    '/api/v1/check_run'              => '{"check":"ok","status":0}',
    '/api/v2/logs?ddsource=db'       => $logs2,
    '/api/v2/logs'                   => $logs3,
    '/other/bin'                     => $binary,
    '/other/bad'                     => 'garbage!',
);

for my $q (@a, @b) {
    (my $p = $q->{path}) =~ s/secret1/REDACTED/;
    # a glob matches the whole uri: "[/]" makes even a plain path one
    my $pat = $p;
    $pat =~ s/([?*\[])/[$1]/g;
    $pat =~ s{^/}{[/]};
    $r = cli('cat', $uri, '--uri', $pat, '--body', '--limit', '1');
    is($r->{out}, "$body{ $q->{path} }\n", "--body of $p");
}

$r = cli('cat', $uri, '--body', '--stream', 'metrics');
my @bodies = split /\n/, $r->{out};
is(scalar @bodies, 3, '--body: one line per record');
is(scalar(grep { defined eval { $json->decode($_) } } @bodies), 3,
   'JSON bodies print as JSON');


# --- memory does not grow with the archive -------------------------------

my $big = 'x' x 150_000;
my @many = map { { path => '/other/big',
                   body => qq({"i":$_,"pad":"$big"}) } } 1 .. 400;
module_archive($t, requests => \@many, workers => 2);

my $raw = 0;
$raw += $_->{raw_bytes} for $t->archive_objects($arch, decode => 0);
ok($raw > 60_000_000, "archive of $raw raw bytes");

my $h = cli_start({ dir => $t->dir }, 'cat', $uri, '--stream', 'other');
my $hwm = 0;
while (-e "/proc/$h->{pid}/status") {
    my $s = $t->read_file("/proc/$h->{pid}/status") // '';
    last if $s =~ /^State:\s+Z/m;

    # before exec the child is a copy of this (large) test process
    next unless ($t->read_file("/proc/$h->{pid}/cmdline") // '')
                =~ /reductrai\0cat/;

    $hwm = $1 if $s =~ /^VmHWM:\s+(\d+) kB/m && $1 > $hwm;
}
continue {
    sleep 0.005;
}
$r = cli_wait($h, 60);
is($r->{rc}, 0, 'cat of the large stream: exit 0');
is(scalar(split /\n/, $r->{out}), 402, '402 records');
# AddressSanitizer's shadow memory and quarantine add their own, and
# valgrind is a process of its own size
my $bound = $ENV{TEST_REDUCTRAI_VALGRIND} ? 600_000
          : RdxCli::cli_path() =~ m{/asan/} ? 160_000 : 40_000;
ok($hwm > 0 && $hwm < $bound,
   "peak RSS of cat ${hwm} kB for $raw raw bytes (< $bound kB)");
diag("cat: peak RSS $hwm kB over $raw raw bytes");


# --- a corrupt object ----------------------------------------------------

my ($victim) = sort { $b->{size} <=> $a->{size} }
               $t->archive_objects($arch, decode => 0);
my %others = map { $_->{id} => 1 }
             map { @{ $_->{records} } }
             grep { $_->{path} ne $victim->{path}
                    && $_->{key} =~ m{^stream=other/} }
             $t->archive_objects($arch);
my $bytes = $t->read_file($victim->{path});
my $mid = int((length($bytes) - 200) / 2);
substr($bytes, $mid, 1) = chr(ord(substr($bytes, $mid, 1)) ^ 0x5a);
$t->write_file($victim->{path}, $bytes);

$r = cli('cat', $uri, '--stream', 'other');
is($r->{rc}, 4, 'a corrupt object: exit 4');
like($r->{err}, qr/^reductrai: cat: \Q$victim->{key}\E: corrupt object: zstd: .+\n\z/,
     'one line naming the object and zstd\'s reason');
# zstd finds the flipped byte at the latest by the frame checksum, at the
# end of the object: some of its lines may be printed before that
my %printed = map { /^\{"id":"([^"]+)"/ ? ($1 => 1) : () }
              split /\n/, $r->{out};
is(scalar(grep { !$printed{$_} } keys %others), 0,
   'every record of the other objects is still printed ('
   . scalar(keys %others) . ')');

$t->check_error_log;
done_testing;
