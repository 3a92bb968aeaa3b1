#!/usr/bin/perl
# reductrai ls, cat, verify and replay on s3:// (s3rver, SigV4 verified,
# behind the recording proxy of t/node): an archive the module wrote to the
# bucket, credentials from the environment as in nginx, the storage
# parameters of the directive; one ranged GET per object for ls; pruned
# listings; a corrupt and a missing object; a wrong secret and a store
# that is down give exit 3 with one line and no secret.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Compress::Gzip qw(gzip $GzipError);
use JSON::PP ();
use Test::More;

use RdxTest qw(wait_for parse_key);
use RdxStorage;
use RdxCli qw(cli module_archive);

my $AK = 'AKIDRDXCLI0001';
my $SK = 'cli/Secret+Key0123456789abcdefGHIJKLmnop';

my $t = RdxTest->new;
my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
    args => [ '--bucket', 'archive', '--access-key', $AK,
              '--secret-key', $SK ]);
my $bucket_dir = $s3->data_dir . '/archive';

$t->write_file('secret', "$SK\n");

my @params = ('endpoint=' . $s3->url, 'region=us-east-1',
              'connect_timeout=1s', 'timeout=10s');
my $env = { AWS_ACCESS_KEY_ID => $AK, AWS_SECRET_ACCESS_KEY => $SK };

# every object in s3rver's store
sub objects {
    my $o = RdxStorage::stored_objects($bucket_dir,
                                       suffix => '._S3rver_object');
    return map { $o->{$_} } sort keys %$o;
}

sub stored { my $n = 0; $n += @{ $_->{lines} } for objects(); $n }

# a point of now: replay skips points older than its metrics window (1h)
my $series = '{"series":[{"metric":"s3.metric","points":[[' . int(time)
           . ',2]]}]}';
gzip(\$series => \my $series_gz) or die $GzipError;

my @requests = (
    (map { { path => "/api/v1/series?n=$_",
             body => $_ % 2 ? $series : $series_gz,
             headers => [ 'Content-Type' => 'application/json',
                          $_ % 2 ? () : ('Content-Encoding' => 'gzip') ] } }
     1 .. 10),
    (map { { path => "/api/v2/logs?n=$_", body => qq([{"m":"$_"}]) } } 1 .. 4),
);

module_archive($t, requests => \@requests, workers => 2,
               storage => 's3://archive/pfx ' . join(' ', @params)
                        . " access_key=$AK secret_key_file=%%DIR%%/secret",
               count => \&stored);

my @objects = objects();
is(stored(), 14, '14 records in the bucket, written by the module');
ok(!grep({ $_->{key} !~ m{^pfx/stream=(metrics|logs)/} } @objects),
   'under the prefix');

my $uri = 's3://archive/pfx';


# --- ls ------------------------------------------------------------------

my $mark = $s3->mark;
my $r = cli({ env => $env }, 'ls', $uri, @params, '--json', '-v');
is($r->{rc}, 0, 'ls s3:// exits 0') or diag($r->{err});
my @j = map { JSON::PP->new->decode($_) } split /\n/, $r->{out};
is_deeply([ map { $_->{key} } @j ], [ map { $_->{key} } @objects ],
          'every object, in key order');
my $sum = 0;
$sum += $_->{records} for @j;
is($sum, 14, 'records from the trailers: 14');
for my $o (@objects) {
    my ($e) = grep { $_->{key} eq $o->{key} } @j;
    is_deeply([ $e->{size}, $e->{raw_bytes}, $e->{records} ],
              [ $o->{size}, $o->{raw_bytes}, scalar @{ $o->{lines} } ],
              "$o->{key}: size, raw bytes, records");
}

my @reqs = grep { $_->{method} eq 'GET' } $s3->requests(since => $mark);
my @ranged = grep { ($_->{headers}{range} // '') eq 'bytes=-1024' } @reqs;
my @listings = grep { $_->{url} =~ /[?&]list-type=2/ } @reqs;
# s3rver reads "bytes=-1024" as "bytes=0-1024" (S3 answers the last 1024
# bytes): for an object above 1025 bytes the client then asks for the rest
# of the tail, one more ranged GET of that object
my %ranged_key = map { $_->{url} => 1 } @ranged;
my @rest = grep { ($_->{headers}{range} // '') =~ /^bytes=\d+-\d+$/
                  && $ranged_key{ $_->{url} } } @reqs;
is(scalar @ranged, scalar @objects, 'one ranged GET (bytes=-1024) per object');
is(scalar @listings, 1, 'and one listing');
is(scalar(@reqs) - @ranged - @listings - @rest, 0,
   'no other GET (' . scalar(@rest) . ' to complete a tail s3rver cut short)');
ok(@rest <= grep({ $_->{size} > 1025 } @objects),
   '... only for objects above 1025 bytes');

$mark = $s3->mark;
$r = cli({ env => $env }, 'ls', $uri, @params, '--stream', 'logs',
         '--from', '-1h', '--to', 'now');
like($r->{out}, qr/^total: \d+ objects, 4 records/m, '--stream logs: 4');
my ($list) = grep { $_->{url} =~ /list-type=2/ } $s3->requests(since => $mark);
like($list->{url}, qr/prefix=pfx%2Fstream%3Dlogs%2Fdt%3D/,
     'the listing asked for pfx/stream=logs/dt=... only');


# --- cat, verify, replay ------------------------------------------------

$r = cli({ env => $env }, 'cat', $uri, @params);
is($r->{rc}, 0, 'cat s3:// exits 0') or diag($r->{err});
is_deeply([ split /\n/, $r->{out} ], [ map { @{ $_->{lines} } } @objects ],
          'cat: every line, in key order');

$r = cli({ env => $env }, 'cat', $uri, @params, '--uri', '/api/v1/series',
         '--body', '--limit', '3');
is($r->{out}, "$series\n" x 3, 'cat --body: decoded bodies');

$r = cli({ env => $env }, 'verify', $uri, @params);
is($r->{rc}, 0, 'verify s3:// exits 0') or diag($r->{out}, $r->{err});
like($r->{out}, qr/^verify: ${\ scalar @objects} objects, 14 records, \d+ bytes: OK$/m,
     'verify: OK');

my $up = $t->start_upstream(name => 'intake', status => 202);
$r = cli({ env => { %$env, DD_API_KEY => 'k' } }, 'replay', $uri, @params,
         '--to', $up->url, '--stream', 'metrics');
is($r->{rc}, 0, 'replay from s3:// exits 0') or diag($r->{err});
like($r->{err}, qr/^replay: 10 sent, 10 ok, 0 failed/m, '10 replayed');
my @got = $up->requests;
is(scalar(grep { ($_->{headers}{'content-encoding'} // '') eq 'gzip' } @got),
   5, 'five of them gzip again');


# --- damage in the bucket -------------------------------------------------

my ($victim) = grep { $_->{key} =~ m{/stream=metrics/} } @objects;
my $file = "$bucket_dir/$victim->{key}._S3rver_object";
my $data = $t->read_file($file);
my $tlen = unpack 'V', substr($data, -8, 4);
my $mid = int((length($data) - $tlen) / 2);
substr($data, $mid, 1) = chr(ord(substr($data, $mid, 1)) ^ 0x20);
$t->write_file($file, $data);

$r = cli({ env => $env }, 'verify', $uri, @params);
is($r->{rc}, 1, 'a corrupt object: verify exits 1');
like($r->{out}, qr/^FAIL \Q$victim->{key}\E: corrupt: zstd: /m, 'FAIL line');

$r = cli({ env => $env }, 'cat', $uri, @params, '--stream', 'metrics');
is($r->{rc}, 4, 'cat of it: exit 4');


# --- credentials and reachability -------------------------------------------

$r = cli({ env => { AWS_ACCESS_KEY_ID => $AK,
                    AWS_SECRET_ACCESS_KEY => 'wrong/Secret+Key0123456789abcdefGHIJK' } },
         'ls', $uri, @params);
is($r->{rc}, 3, 'a wrong secret: exit 3');
like($r->{err}, qr/^reductrai: ls: storage s3:\/\/archive\/pfx: listing failed: .*403/,
     'one line with the status');
is(scalar(split /\n/, $r->{err}), 1, 'one line');
unlike($r->{err}, qr/Secret\+Key/, 'no secret in it');

$r = cli({ env => $env }, 'ls', $uri, @params, 'secret_key=oops', 'x=1');
is($r->{rc}, 2, 'an unknown parameter: exit 2');

$s3->down;
$r = cli({ env => $env }, 'ls', $uri, @params);
is($r->{rc}, 3, 'store down: exit 3');
like($r->{err}, qr/^reductrai: ls: storage s3:\/\/archive\/pfx: listing failed: /,
     'one line');
$s3->up;

$t->check_error_log;
done_testing;
