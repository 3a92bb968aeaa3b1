#!/usr/bin/perl
# One worker at a time lists the spool (issue 13, item 4).  Every worker
# used to list it every second: with the 10^5 segments of a day-long
# outage, that starved the event loops, and both workers queued every
# segment and collided on them.  The scanner is named in shared memory;
# when it is killed, another worker takes over, and what the killed worker
# left open is recovered and shipped with the rest, each segment once.
# How often the scanner lists (a pause ten times the last listing) and the
# event-loop stalls are measured by bench/scan.pl, not asserted here.

use strict;
use warnings;
use Test::More;
use File::Find ();
use lib 't/lib';
use RdxTest qw(wait_for);

my $SEGMENTS = 2000;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

# storage the workers cannot write to: every upload fails
my $store = $t->path('store');
mkdir $store, 0755 or die "mkdir $store: $!";

my $spool = $t->mkdir_worker('spool');
RdxTest::write_sealed_segments($spool, $SEGMENTS);

$t->reductrai_config(
    main => 'worker_processes 2;',
    directives => { storage => "file://$store/archive",
                    segment_age => '1h' },
);
$t->start;

ok(wait_for(sub { ($t->metric('reductrai_spool_segments') // 0)
                  == $SEGMENTS }, 30, 'the scan counts the spool'),
   "/metrics: $SEGMENTS segments in the spool");

# the workers' ticks have met the scanner's name many times over
sleep 2;

sub scanners {
    return $t->error_log
           =~ /\[info\] (\d+)#\d+: .*this worker scans the spool now/g;
}

my @scanners = scanners();
is(scalar @scanners, 1, 'one worker of two scans the spool');
my $scanner = $scanners[0] // 0;
ok((grep { $_ == $scanner } $t->worker_pids), "the scanner ($scanner) is a "
   . 'worker');

# records until the scanner has a spool log open (the other worker takes
# its share of the connections too)
my %sent;
my $scanner_log;
for my $i (1 .. 400) {
    my $r = $t->http(path => '/', body => qq({"id":"r$i"}));
    $sent{"r$i"} = 1 if $r->{status} == 202;
    ($scanner_log) = glob("$spool/*-$scanner-*.log");
    last if $scanner_log && $i >= 20;
}
ok($scanner_log, 'the scanner has a spool log open');
ok(keys %sent >= 20, scalar(keys %sent) . ' records acknowledged');

# (never kill(0): that is our own process group)
ok($scanner > 0 && kill('KILL', $scanner), 'the scanner killed');

ok(wait_for(sub { my @s = scanners(); @s == 2 }, 15, 'another scanner'),
   'another worker scans the spool');
isnt((scanners())[1], $scanner, 'the new scanner is another process');

# --- storage comes back

my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
chown $uid, $gid, $store or die "chown $store: $!";

# the killed scanner's log is sealed by its successor and shipped
ok(wait_for(sub { my @left = (glob("$spool/*.zst"),
                              glob("$spool/*-$scanner-*"));
                  !@left }, 60, 'the spool drains'),
   "every sealed segment and the killed scanner's log left the spool");

# the other worker's open log is sealed and shipped as it exits
$t->stop;

my %objects;
File::Find::find(sub { $objects{$_}++ if /\.ndjson\.zst$/ },
                 "$store/archive");
my @gone = grep { /^gone-/ } keys %objects;
is(scalar @gone, $SEGMENTS, "the $SEGMENTS segments of the outage shipped");
is((grep { $_ > 1 } values %objects), 0, 'each under one key');
ok((grep { /-$scanner-/ } keys %objects) > 0,
   "the killed scanner's segment shipped");

# the records sent (the outage's are in stream=outage)
my %archived;
$archived{ $_->{body}{id} }++
    for grep { ref $_->{body} }
        $t->archive_records("$store/archive/stream=default");
my @missing = grep { !$archived{$_} } sort keys %sent;
is(scalar @missing, 0, 'no acknowledged record missing')
    or diag("missing: @missing");
is((grep { $_ > 1 } values %archived), 0, 'no record archived twice');

my @left = grep { -f } glob("$spool/*");
is(scalar @left, 0, 'the spool is empty') or diag("@left");

$t->check_error_log(allow => [ qr/exited on signal 9/ ]);

done_testing;
