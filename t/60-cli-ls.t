#!/usr/bin/perl
# reductrai ls over an archive the module wrote: the values of every line
# (records, time range, sizes, ratio) against the objects themselves and
# the requests sent; --json; pruning by stream, day and hour before any
# object is read (the tool's counters and an strace of its opens); objects
# without a trailer; usage errors, --help and exit codes of every command.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP ();
use POSIX qw(strftime);
use Test::More;

use RdxTest qw(wait_for parse_key shim);
use RdxCli qw(cli module_archive);

my $t = RdxTest->new;
my $json = JSON::PP->new->utf8;

ok(-x RdxCli::cli_path(), 'the tool is built: ' . RdxCli::cli_path());

# --- an archive written by the module: two workers, three streams --------

my @requests;
for my $i (1 .. 12) {
    push @requests, { path => "/api/v1/series?i=$i",
                      body => qq({"series":[{"metric":"m.$i","points":[[1,$i]]}]}),
                      headers => [ 'Content-Type', 'application/json' ] };
}
for my $i (1 .. 5) {
    push @requests, { path => '/api/v2/logs',
                      body => qq([{"message":"log $i"}]) };
}
push @requests, { path => '/other/x', body => 'plain text' } for 1 .. 3;

my ($arch) = module_archive($t, requests => \@requests, workers => 2);
my $uri = "file://$arch";

my @objects = $t->archive_objects($arch);
ok(@objects >= 3, scalar(@objects) . ' objects written by the module');
is((grep { $_->{trailer} } @objects), scalar @objects,
   'every object has a trailer');

my %sent = (metrics => 12, logs => 5, other => 3);


# --- text output ---------------------------------------------------------

my $r = cli('ls', $uri);
is($r->{rc}, 0, 'ls exits 0') or diag($r->{err});
is($r->{err}, '', 'nothing on stderr');

my @lines = split /\n/, $r->{out};
like(shift @lines, qr/^KEY\s+RECORDS\s+FIRST_TS\s+LAST_TS\s+BYTES\s+RAW_BYTES\s+RATIO$/,
     'header line');
my $total = pop @lines;
is(scalar @lines, scalar @objects, 'one line per object');

my (%by_stream, %shown);
for my $line (@lines) {
    my ($key, $rec, $first, $last, $bytes, $raw, $ratio) = split ' ', $line;
    my ($o) = grep { $_->{key} eq $key } @objects;
    ok($o, "listed key exists: $key") or next;
    $shown{$key} = 1;

    my @ts = sort map { $_->{ts} } @{ $o->{records} };
    is($rec, scalar @{ $o->{records} }, "$key: records");
    is($first, $ts[0], "$key: first ts");
    is($last, $ts[-1], "$key: last ts");
    is($bytes, $o->{size}, "$key: bytes");
    is($raw, $o->{raw_bytes}, "$key: raw bytes");
    is($ratio, sprintf('%.2f', $o->{raw_bytes} / $o->{size}),
       "$key: ratio");
    $by_stream{ parse_key($key)->{stream} } += $rec;
}

is_deeply(\%by_stream, \%sent, 'records per stream = requests sent');

my $all_records = 0;
$all_records += $_ for values %sent;
my $all_bytes = 0;
$all_bytes += $_->{size} for @objects;
like($total, qr/^total: ${\ scalar @objects} objects, $all_records records, $all_bytes bytes, \d+ raw bytes, ratio [\d.]+$/,
     'total line');

is_deeply([ map { (split ' ')[0] } @lines ], [ sort map { $_->{key} } @objects ],
          'keys in sorted order');


# --- --json --------------------------------------------------------------

$r = cli('ls', $uri, '--json');
is($r->{rc}, 0, 'ls --json exits 0');
my @j = map { $json->decode($_) } split /\n/, $r->{out};
is(scalar @j, scalar @objects, 'one JSON object per line');

for my $o (@objects) {
    my ($e) = grep { $_->{key} eq $o->{key} } @j;
    my $k = parse_key($o->{key});
    is_deeply([ @$e{qw(stream instance pid start_ms seq size records raw_bytes
                       first_ts last_ts)} ],
              [ $k->{stream}, 'cli-test', $k->{pid}, $k->{startms},
                $k->{seq} + 0, $o->{size}, scalar @{ $o->{records} },
                $o->{raw_bytes}, $o->{trailer}{first_ts},
                $o->{trailer}{last_ts} ],
              "json for $o->{key}");
    ok(JSON::PP::is_bool($e->{trailer}) && $e->{trailer},
       "$o->{key}: trailer: true (a JSON boolean)");
}


# --- pruning: --stream ---------------------------------------------------

$r = cli('ls', $uri, '--stream', 'logs', '-v');
my @keys = grep { /^stream=/ } map { (split ' ')[0] } split /\n/, $r->{out};
is(scalar(grep { !m{^stream=logs/} } @keys), 0, '--stream logs: only logs');
my $nlogs = grep { $_->{key} =~ m{^stream=logs/} } @objects;
is(scalar @keys, $nlogs, "--stream logs: $nlogs objects");
my ($listed) = $r->{err} =~ /(\d+) keys listed/;
is($listed, $nlogs, 'only the stream=logs/ prefix was listed')
    or diag($r->{err});
like($r->{err}, qr/$nlogs trailer GETs \(ranged, last 1024 bytes\), 0 whole-object GETs/,
     'one ranged GET per object shown, no whole object');


# --- pruning by time: the hour in the key, then the trailer --------------

my @all_ts = sort map { $_->{ts} } map { @{ $_->{records} } } @objects;
my ($hour) = $all_ts[0] =~ /^(\d{4}-\d\d-\d\dT\d\d)/;
my ($day) = $all_ts[0] =~ /^(\d{4}-\d\d-\d\d)/;

# a later hour: every key pruned, nothing read
my $later = strftime('%Y-%m-%dT%H:00Z', gmtime(time + 2 * 3600));
$r = cli('ls', $uri, '--from', $later, '-v');
is($r->{rc}, 0, '--from in 2 hours: exit 0');
like($r->{out}, qr/^total: 0 objects/m, '--from in 2 hours: no object');
like($r->{err}, qr/${\ scalar @objects} pruned by hour/,
     'every object pruned by the hour in its key') or diag($r->{err});
like($r->{err}, qr/ 0 trailer GETs/, 'and no trailer fetched');

# same hour, but before the first record: the trailers rule them out
my ($first_s) = $all_ts[0] =~ /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)/;
$r = cli('ls', $uri, '--from', "${hour}:00:00Z", '--to',
         strftime('%Y-%m-%dT%H:%M:%S.000Z',
                  gmtime(_epoch($all_ts[0]) - 1)), '-v');
like($r->{out}, qr/^total: 0 objects/m,
     'a range in the same hour before the first record: none shown');
like($r->{err}, qr/ ${\ scalar @objects} trailer GETs/,
     'decided by the trailers (one ranged GET each)');

# the whole hour: everything
$r = cli('ls', $uri, '--from', $hour, '--to', $hour, '-v');
like($r->{out}, qr/^total: ${\ scalar @objects} objects, $all_records records/m,
     '--from/--to the hour of the records: all of them');
like($r->{err}, qr/1 list request\(s\)/, 'one list request');

# objects from other days (made by the harness in the module's format)
for my $d ('2020-01-01', '2020-01-02', '2020-03-01') {
    my $ts = "${d}T05:00:00.000Z";
    RdxTest::write_archive_object(
        "$arch/stream=metrics/dt=$d/hour=05/old-1-2-00000001.ndjson.zst",
        qq({"id":"old-1-2-1","ts":"$ts","stream":"metrics","method":"POST",)
        . qq("uri":"/x","size":2,"forwarded":false,"body":{}}\n));
}

$r = cli('ls', $uri, '--stream', 'metrics', '--from', '2020-01-01',
         '--to', '2020-01-01', '-v');
like($r->{out}, qr{^stream=metrics/dt=2020-01-01/hour=05/old-1-2-00000001}m,
     'the one object of 2020-01-01');
like($r->{out}, qr/^total: 1 objects, 1 records/m, 'only it');
like($r->{err}, qr/1 list request\(s\), 1 keys listed/,
     'the listing itself was narrowed to stream=metrics/dt=2020-01-01/')
    or diag($r->{err});

$r = cli('ls', $uri, '--stream', 'metrics', '--from', '2020-01-01',
         '--to', '2020-01-02', '-v');
like($r->{err}, qr/2 list request\(s\), 2 keys listed/,
     'two days: two narrow listings, two keys');

# what strace sees: only the shown objects are opened
{
    my ($strace) = grep { -x } map { "$_/strace" } split /:/, $ENV{PATH};
    ok($strace, 'strace is installed (tools/deps.sh test)');

    my $log = $t->path('strace.log');
    system($strace, '-f', '-qq', '-e', 'trace=openat', '-o', $log,
           RdxCli::cli_path(), 'ls', $uri, '--stream', 'metrics',
           '--from', '2020-01-01', '--to', '2020-01-02');
    my @opens = grep { /\.ndjson\.zst/ } split /\n/, $t->read_file($log);
    is(scalar @opens, 2, 'strace: two objects opened (of '
       . (scalar(@objects) + 3) . ')') or diag(join "\n", @opens);

    system($strace, '-f', '-qq', '-e', 'trace=openat', '-o', $log,
           RdxCli::cli_path(), 'ls', $uri, '--from', $later);
    @opens = grep { /\.ndjson\.zst/ } split /\n/, $t->read_file($log);
    is(scalar @opens, 0, 'strace: no object opened when the hour rules '
       . 'all out');
}


# --- an object without a trailer -----------------------------------------

my ($victim) = grep { $_->{key} =~ m{^stream=metrics/dt=$day} } @objects;
my $bytes = $t->read_file($victim->{path});
$t->write_file($victim->{path}, substr($bytes, 0, length($bytes) - 20));

$r = cli('ls', $uri, '--stream', 'metrics', '--from', $day, '--to', $day);
is($r->{rc}, 4, 'an object without a trailer: exit 4');
like($r->{out}, qr/^\Q$victim->{key}\E\s+-\s+-\s+-\s+${\ (length($bytes) - 20)}\s+-\s+-\s+\(no trailer\)$/m,
     'shown as such');
like($r->{err}, qr/^reductrai: ls: 1 object\(s\) without a valid trailer/m,
     'one-line message');
is(scalar(split /\n/, $r->{err}), 1, 'one line on stderr');
$t->write_file($victim->{path}, $bytes);


# --- errors, usage, help -------------------------------------------------

$r = cli('ls', "file://$arch/nonexistent");
is($r->{rc}, 3, 'a missing directory: exit 3');
like($r->{err}, qr{^reductrai: ls: storage file://\S+/nonexistent: no such directory\n\z},
     'one line');

# a directory that fails while it is read (t/shim/failreaddir.c: the 6th
# readdir() and every one after it fail with EIO) is an error, never a
# listing that only looks shorter
SKIP: {
    skip 'LD_PRELOAD shims and sanitizers or valgrind do not mix', 3
        if $ENV{TEST_NGINX_ASAN} || $ENV{TEST_REDUCTRAI_VALGRIND};

    my $shim = shim('failreaddir', $t->dir);
    $r = cli({ env => { LD_PRELOAD => $shim, RDX_READDIR_FAIL => 6 } },
             'ls', $uri);
    is($r->{rc}, 3, 'readdir() failing mid-listing: exit 3')
        or diag $r->{out};
    like($r->{err}, qr{listing "\S+" failed \(5: Input/output error\)},
         'saying why');
    unlike($r->{out}, qr/^total:/m, 'and no total of a partial listing');
}

my @usage = (
    [ [ 'ls', $uri, '--bogus' ], qr/unknown option "--bogus"/ ],
    [ [ 'ls', $uri, '--from', 'yesterday' ], qr/invalid time "yesterday"/ ],
    [ [ 'ls', $uri, '--stream', 'Bad!' ], qr/invalid stream name "Bad!"/ ],
    [ [ 'ls', $uri, '--from', '2025-01-02', '--to', '2025-01-01' ],
      qr/the time range is empty/ ],
    [ [ 'ls' ], qr/no storage URI/ ],
    [ [ 'ls', 'ftp://x' ], qr/unknown storage scheme/ ],
    [ [ 'ls', $uri, 'nonsense' ], qr/unexpected argument "nonsense"/ ],
    [ [ 'ls', $uri, 'region=x' ], qr/"region" does not apply/ ],
    [ [ 'ls', $uri, '--grep', 'x' ], qr/"--grep" does not apply to ls/ ],
    [ [ 'cat', $uri, '--limit', '0' ], qr/--limit must be a positive/ ],
    [ [ 'cat', $uri, '--api-key-fp', 'XYZ' ], qr/--api-key-fp takes/ ],
    [ [ 'cat', $uri, '--json' ], qr/"--json" does not apply to cat/ ],
    [ [ 'verify', $uri, '--jobs', '0' ], qr/--jobs must be 1 to 64/ ],
    [ [ 'replay', $uri ], qr/--to URL is required/ ],
    [ [ 'replay', $uri, '--to', '2025-01-01' ],
      qr/--to takes the target URL/ ],
    [ [ 'replay', $uri, '--to', 'http://x', '--rate', '-1' ],
      qr/--rate must be/ ],
    [ [ 'replay', $uri, '--to', 'http://x', '--header', 'nocolon' ],
      qr/--header takes "Name: value"/ ],
    [ [ 'frobnicate' ], qr/unknown command "frobnicate"/ ],
);

for my $u (@usage) {
    $r = cli(@{ $u->[0] });
    is($r->{rc}, 2, "exit 2: @{ $u->[0] }");
    like($r->{err}, $u->[1], 'message');
    is(scalar(split /\n/, $r->{err}), 1, 'one line') or diag($r->{err});
    is($r->{out}, '', 'no output');
}

$r = cli();
is($r->{rc}, 2, 'no command: exit 2');
like($r->{err}, qr/^usage: reductrai COMMAND/, 'usage on stderr');

for my $cmd (qw(ls cat verify replay)) {
    $r = cli($cmd, '--help');
    is($r->{rc}, 0, "$cmd --help: exit 0");
    like($r->{out}, qr/^usage: reductrai $cmd STORAGE/, "$cmd --help: usage");
    like($r->{out}, qr/AWS_ACCESS_KEY_ID/, "$cmd --help: credentials");
    $r = cli('help', $cmd);
    like($r->{out}, qr/^usage: reductrai $cmd /, "help $cmd");
}

$r = cli('--help');
like($r->{out}, qr/Exit codes: 0 ok, 1 verify found problems, 2 usage, 3 storage/,
     '--help lists the exit codes');
$r = cli('--version');
like($r->{out}, qr/^reductrai \d+\.\d+\.\d+$/, '--version');

# REDUCTRAI_STORAGE stands for the URI
$r = cli({ env => { REDUCTRAI_STORAGE => $uri } }, 'ls', '--stream', 'logs');
like($r->{out}, qr/^total: $nlogs objects, 5 records/m,
     '$REDUCTRAI_STORAGE is the default URI');

ok(-f "$FindBin::Bin/../cli/reductrai.1", 'man page exists');
like(scalar `groff -man -Tascii -P-cbou $FindBin::Bin/../cli/reductrai.1 2>&1`,
     qr/^   replay\n.*--checkpoint FILE/ms, 'man page renders (groff)');

$t->check_error_log;
done_testing;


sub _epoch {
    my ($ts) = @_;
    my ($y, $mo, $d, $h, $mi, $s, $ms) =
        $ts =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z$/;
    require Time::Local;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) + $ms / 1000;
}
