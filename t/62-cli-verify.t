#!/usr/bin/perl
# reductrai verify over an archive the module wrote (several segments per
# worker): OK on the good archive, then one precise problem each for a
# truncated object, a byte corrupted in the middle, a missing segment (in
# the middle of a worker's sequence and at its start), a trailer that does
# not match, a line that is not JSON; time-limited selections report inner
# gaps only; exit codes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;

use RdxTest qw(wait_for parse_key);
use RdxCli qw(cli module_archive);

my $t = RdxTest->new;

# bodies of ~1.5 KB and 4 KB segments: a new segment every few records
my $pad = 'p' x 1500;
my @requests = (
    (map { { path => "/api/v1/series?n=$_",
             body => qq({"series":[{"metric":"m.$_","pad":"$pad"}]}) } }
         1 .. 15),
    (map { { path => '/api/v2/logs', body => qq([{"message":"$_ $pad"}]) } }
         1 .. 8),
);

my ($arch) = module_archive($t, requests => \@requests, workers => 1,
                            segment_size => '4k');
my $uri = "file://$arch";

my @objects = $t->archive_objects($arch, decode => 0);
my @metrics = grep { $_->{key} =~ m{^stream=metrics/} } @objects;
my @logs = grep { $_->{key} =~ m{^stream=logs/} } @objects;
ok(@metrics >= 3, scalar(@metrics) . ' metrics segments from one worker');
ok(@logs >= 2, scalar(@logs) . ' logs segments');

my $bytes = 0;
$bytes += $_->{size} for @objects;
my $n = @objects;


# --- a good archive ------------------------------------------------------

my $r = cli('verify', $uri);
is($r->{rc}, 0, 'verify of the module\'s archive: exit 0') or diag($r->{out}, $r->{err});
is($r->{out}, "verify: $n objects, 23 records, $bytes bytes: OK\n",
   'the summary line alone');
is($r->{err}, '', 'nothing on stderr');

$r = cli('verify', $uri, '-v', '-j', '1');
my @ok = $r->{out} =~ /^ok   (\S+): (\d+) records$/mg;
is(scalar(@ok) / 2, $n, '-v: a line per good object');
is_deeply([ @ok[ grep { $_ % 2 == 0 } 0 .. $#ok ] ],
          [ sort map { $_->{key} } @objects ], 'in key order');

my $r4 = cli('verify', $uri, '-v', '-j', '4');
is($r4->{out}, $r->{out}, '-j 4 reports exactly as -j 1');

$r = cli('verify', $uri, '--stream', 'logs');
is($r->{rc}, 0, '--stream logs: exit 0');
like($r->{out}, qr/^verify: ${\ scalar @logs} objects, 8 records/m,
     '--stream logs: 8 records');


# --- damage, one kind per copy of the archive ----------------------------

my $copies = 0;

sub copy_archive {
    my $dir = $t->path('copy' . ++$copies);
    system('cp', '-a', $arch, $dir) == 0 or die "cp: $?";
    return $dir;
}

sub path_of { "$_[0]/$_[1]{key}" }

# truncated
my $dir = copy_archive();
my $victim = $metrics[1];
my $data = $t->read_file(path_of($dir, $victim));
$t->write_file(path_of($dir, $victim), substr($data, 0, int(length($data) / 2)));

$r = cli('verify', "file://$dir");
is($r->{rc}, 1, 'truncated object: exit 1');
like($r->{out}, qr/^FAIL \Q$victim->{key}\E: truncated: zstd stream ends inside a frame after ${\ int(length($data) \/ 2)} bytes .*; no valid trailer/m,
     'FAIL line: truncated, no trailer') or diag($r->{out});
like($r->{out}, qr/^verify: $n objects, \d+ records, \d+ bytes: 2 problem\(s\): 1 bad object\(s\), 0 missing segment range\(s\)$/m,
     'summary');
is(scalar(grep { /^FAIL/ } split /\n/, $r->{out}), 1, 'one FAIL line');

# a byte corrupted in the middle of the compressed data
$dir = copy_archive();
$victim = $metrics[0];
$data = $t->read_file(path_of($dir, $victim));
my $tlen = unpack 'V', substr($data, -8, 4);
my $mid = int((length($data) - $tlen) / 2);
substr($data, $mid, 1) = chr(ord(substr($data, $mid, 1)) ^ 0x20);
$t->write_file(path_of($dir, $victim), $data);

$r = cli('verify', "file://$dir");
is($r->{rc}, 1, 'corrupted byte: exit 1');
like($r->{out}, qr/^FAIL \Q$victim->{key}\E: corrupt: zstd: /m,
     'FAIL line: corrupt, with zstd\'s reason') or diag($r->{out});
is(scalar(grep { /^FAIL/ } split /\n/, $r->{out}), 1, 'only that object');

# missing segments: the second of the metrics worker, the first of logs
$dir = copy_archive();
unlink path_of($dir, $metrics[1]) or die;
unlink path_of($dir, $logs[0]) or die;
my $mk = parse_key($metrics[1]{key});
my $worker = "cli-test-$mk->{pid}-$mk->{startms}";

$r = cli('verify', "file://$dir");
is($r->{rc}, 1, 'missing segments: exit 1');
like($r->{out}, qr/^MISSING stream=metrics worker \Q$worker\E: segment 00000002 \(between \Q$metrics[0]{key}\E and \Q$metrics[2]{key}\E\)$/m,
     'a gap in the middle of the sequence') or diag($r->{out});
like($r->{out}, qr/^MISSING stream=logs worker \Q$worker\E: segment 00000001 \(before \Q$logs[1]{key}\E\)$/m,
     'a missing first segment');
like($r->{out}, qr/^verify: ${\ ($n - 2)} objects, \d+ records, \d+ bytes: 2 problem\(s\): 0 bad object\(s\), 2 missing segment range\(s\)$/m,
     'summary counts the gaps');

# a time-limited selection: earlier segments may be outside it
my ($day, $h) = $metrics[0]{key} =~ m{dt=([\d-]+)/hour=(\d\d)};
$r = cli('verify', "file://$dir", '--from', "${day}T$h:00");
like($r->{out}, qr/^MISSING stream=metrics worker \Q$worker\E: segment 00000002/m,
     '--from: the inner gap is still reported');
unlike($r->{out}, qr/^MISSING stream=logs/m,
       '--from: a missing first segment is not (it may be before --from)');

# two missing in a row
$dir = copy_archive();
unlink path_of($dir, $metrics[1]), path_of($dir, $metrics[2]);
if (@metrics > 3) {
    $r = cli('verify', "file://$dir", '--stream', 'metrics');
    like($r->{out}, qr/^MISSING stream=metrics worker \Q$worker\E: segments 00000002\.\.00000003 \(between/m,
         'two missing in a row: one range');
} else {
    $r = cli('verify', "file://$dir", '--stream', 'metrics');
    like($r->{out}, qr/^verify: 1 objects/m, 'two of three removed');
}

# objects whose content does not match their trailer (made by the harness)
$dir = copy_archive();
my ($date, $hh) = $metrics[0]{key} =~ m{dt=([\d-]+)/hour=(\d\d)};
my $ts = "${date}T$hh:00:01.000Z";
my $line = qq({"id":"hand-1-2-1","ts":"$ts","stream":"metrics","method":"POST",)
         . qq("uri":"/x","size":2,"forwarded":false,"body":{}});
my $k1 = "stream=metrics/dt=$date/hour=$hh/hand-1-2-00000001.ndjson.zst";
RdxTest::write_archive_object("$dir/$k1", "$line\n", count => 99);
my $k2 = "stream=other/dt=$date/hour=$hh/hand-1-2-00000001.ndjson.zst";
RdxTest::write_archive_object("$dir/$k2", "not json\n");
my $k3 = "stream=logs/dt=$date/hour=$hh/hand-1-2-00000001.ndjson.zst";
RdxTest::write_archive_object("$dir/$k3", "$line\n");

$r = cli('verify', "file://$dir");
is($r->{rc}, 1, 'mismatching objects: exit 1');
like($r->{out}, qr/^FAIL \Q$k1\E: 1 records, the trailer says 99$/m,
     'count does not match the trailer');
like($r->{out}, qr/^FAIL \Q$k2\E: 1 bad line\(s\), first: line 1 is not valid JSON/m,
     'a line that is not JSON');
like($r->{out}, qr/^FAIL \Q$k3\E: 1 bad line\(s\), first: line 1: stream "metrics" in a stream=logs object$/m,
     'a record in the wrong stream');
is(scalar(grep { /^FAIL/ } split /\n/, $r->{out}), 3, 'three FAIL lines');


# --- storage trouble ------------------------------------------------------

$r = cli('verify', "file://$arch/none");
is($r->{rc}, 3, 'missing directory: exit 3');
like($r->{err}, qr/^reductrai: verify: storage .*: no such directory\n\z/,
     'one line');

$t->check_error_log;
done_testing;
