#!/usr/bin/perl
# A day-long storage outage leaves 100 000 sealed segments in the spool
# (issue 13, item 4).  The workers list and queue them all, /metrics and
# /health count them, and once storage is back every one is shipped,
# exactly once.  Shipping used to move the whole queue for each upload and
# sort it in the event loop every second: this drain took 75 s.  How long
# the event loop stalls meanwhile is measured by `make bench
# BENCH_ARGS="--only scan"` (bench/scan.pl), not asserted here.

use strict;
use warnings;
use Test::More;
use File::Find ();
use lib 't/lib';
use RdxTest qw(wait_for);

my $SEGMENTS = 100_000;

# tmpfs: the file store's fsync()s are not what is tested here
my $t = RdxTest->new(tmpdir => -d '/dev/shm' ? '/dev/shm' : undef);

# storage the workers cannot write to: every upload fails
my $store = $t->path('store');
mkdir $store, 0755 or die "mkdir $store: $!";

my $spool = $t->mkdir_worker('spool');
RdxTest::write_sealed_segments($spool, $SEGMENTS);

$t->reductrai_config(
    directives => { storage => "file://$store/archive",
                    upload_concurrency => 8 },
);
$t->start;

ok(wait_for(sub { ($t->metric('reductrai_spool_segments') // 0)
                  == $SEGMENTS }, 60, 'the scan counts the spool'),
   "/metrics: $SEGMENTS segments in the spool");
ok(wait_for(sub { $t->metric('reductrai_storage_upload_errors_total') > 0 },
            30, 'a failed upload'), 'uploads fail while storage is down');

my ($code, $health) = $t->health;
is($code, 200, '/health answers 200 during the outage');
is($health->{storage}, 'disconnected', '/health: storage disconnected');
is($health->{spool}{segments}, $SEGMENTS, "/health: $SEGMENTS segments");

# --- storage comes back

my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
chown $uid, $gid, $store or die "chown $store: $!";

# a liveness bound, not a benchmark: 100 000 ship in about 7 s on tmpfs;
# when each upload moved the whole queue, they took 75 s
ok(wait_for(sub { my @left = glob("$spool/*.zst"); !@left }, 45,
            'the spool drains'),
   'every sealed segment left the spool');

my %objects;
File::Find::find(sub { $objects{$_}++ if /\.ndjson\.zst$/ },
                 "$store/archive");
is(scalar keys %objects, $SEGMENTS, "$SEGMENTS objects in storage");
is((grep { $_ > 1 } values %objects), 0, 'each under one key');
ok(-f "$store/archive/stream=outage/dt=2026-01-01/hour=00/"
      . "gone-1-1000-00100000.ndjson.zst", 'keyed by the spool name');

ok(wait_for(sub { $t->metric('reductrai_spool_segments') == 0 }, 30,
            'the metric settles'), '/metrics: 0 segments in the spool');
is($t->metric('reductrai_storage_uploads_total'), $SEGMENTS,
   "/metrics: $SEGMENTS uploads, none twice");
($code, $health) = $t->health;
is($code, 200, '/health answers 200 after the drain');
is($health->{storage}, 'connected', '/health: storage connected');

$t->check_error_log;

done_testing;
