#!/usr/bin/perl
# When the spool scan or the upload path meets a local failure (issue 13,
# item 8).  A readdir() error part way through the spool used to end the
# listing as if it were complete: the queue was replaced by the part read
# and /metrics counted only that part.  Now the scan fails, says so, and
# the queue it had still ships.  The failure is injected with an
# LD_PRELOAD shim (t/shim/failreaddir.c) aimed at the spool directory and
# switched on and off with a flag file.  A segment that can be neither
# read nor moved to the quarantine used to be logged with no reason at
# all: now with the errno of the rename that failed.  A sealed segment the
# queue had no memory for was dropped from it silently: now that is logged,
# and the next scan lists the segment (realloc() made to fail in the event
# loop by t/shim/failmalloc.c, with a flag file too).

use strict;
use warnings;
use Test::More;
use File::Find ();
use File::Temp qw(tempdir);
use lib 't/lib';
use RdxTest qw(wait_for shim);

my $SEGMENTS = 40;

# each listing of the spool breaks off after 12 entries ("." and ".."
# among them, wherever the directory puts them)
my $READ_BEFORE_FAILING = 12;

# shims and sanitizers do not mix
my $shimmed = !$ENV{TEST_NGINX_ASAN};
my $shims = tempdir(CLEANUP => 1);

# the first growth of a buffer (ngx_http_reductrai_buf_reserve()) asks
# realloc() for 4096 bytes
my $REALLOC_SIZE = 4096;

# nginx's environment, filled in once the test dir is known
my %env;
my $t = RdxTest->new(env => \%env);
my $spool = $t->mkdir_worker('spool');
my $readdir_flag = $t->path('readdir-fails');
my $realloc_flag = $t->path('realloc-fails');

%env = (
    LD_PRELOAD             => join(' ', shim('failreaddir', $shims),
                                        shim('failmalloc', $shims)),
    RDX_READDIR_FAIL_PATH  => $spool,
    RDX_READDIR_FAIL_FLAG  => $readdir_flag,
    RDX_READDIR_FAIL_AFTER => $READ_BEFORE_FAILING,
    RDX_FAIL_REALLOC_SIZE  => $REALLOC_SIZE,
    RDX_FAIL_FLAG          => $realloc_flag,
) if $shimmed;

my $up = $t->start_upstream(name => 'vendor', status => 202);

# storage the workers cannot write to yet: every upload fails
my $store = $t->path('store');
mkdir $store, 0755 or die "mkdir $store: $!";
my ($uid, $gid) = (getpwnam('nobody'))[2, 3];

RdxTest::write_sealed_segments($spool, $SEGMENTS);

$t->reductrai_config(
    directives => { storage => "file://$store/archive",
                    segment_age => '2s' },
);
$t->start;

sub objects {
    my %objects;
    File::Find::find(sub { $objects{$_}++ if /\.ndjson\.zst$/ },
                     "$store/archive") if -d "$store/archive";
    return \%objects;
}

# --- (1) readdir() fails part way through the spool

SKIP: {
    skip 'LD_PRELOAD shims and sanitizers do not mix', 7 unless $shimmed;

    ok(wait_for(sub { ($t->metric('reductrai_spool_segments') // 0)
                      == $SEGMENTS }, 10, 'the scan counts the spool'),
       "/metrics: $SEGMENTS segments in the spool");
    ok(wait_for(sub { $t->metric('reductrai_storage_upload_errors_total')
                      >= 1 }, 10, 'an upload failed'),
       'storage refuses the uploads');

    my $mark = $t->log_mark;
    $t->write_file($readdir_flag, '');

    ok(wait_for(sub { $t->grep_log(qr/spool scan of "\S+" failed /
                                   . qr/\(5: Input\/output error\)/,
                                   since => $mark) }, 5,
                'the scan fails'),
       'error.log: the spool scan failed with EIO');

    # a partial listing would count 10 to 12 segments at the next scans
    sleep 2;
    is($t->metric('reductrai_spool_segments'), $SEGMENTS,
       "/metrics still counts $SEGMENTS segments after failed scans");

    # storage comes back while the scan still fails: what the queue held
    # before the failure ships
    chown $uid, $gid, $store or die "chown $store: $!";

    ok(wait_for(sub { keys %{ objects() } == $SEGMENTS }, 30,
                'the queue ships'),
       "the $SEGMENTS queued segments shipped while the scan failed")
        or diag(scalar(keys %{ objects() }) . ' shipped');
    is($t->metric('reductrai_spool_segments'), 0,
       '/metrics: nothing left in the spool');

    unlink $readdir_flag or die "unlink $readdir_flag: $!";

    my @left = glob("$spool/*.zst");
    is(scalar @left, 0, 'the spool is empty') or diag("@left");
}

chown $uid, $gid, $store or die "chown $store: $!";

# --- (2) a segment that cannot be read nor moved aside says why

# no zstd frame at all: nothing to rebuild it from, so it is quarantined,
# into a directory the workers cannot write to
my $quarantine = "$spool/quarantine";
mkdir $quarantine unless -d $quarantine;
chown 0, 0, $quarantine or die "chown $quarantine: $!";
chmod 0755, $quarantine or die "chmod $quarantine: $!";

my $bad = 'outage,2026-01-01,00,gone-1-1000-00000999,1767225601999.zst';
$t->write_file("$spool/$bad", "not a segment\n" x 64);

ok(wait_for(sub { $t->grep_log(qr/reading spool segment "\Q$bad\E" /) },
            10, 'the quarantine fails'),
   'error.log: reading the unreadable segment failed');
like(($t->grep_log(qr/reading spool segment "\Q$bad\E" /))[0] // '',
     qr/ failed \(13: Permission denied\)$/,
     'saying why: the rename into the quarantine was refused');

chown $uid, $gid, $quarantine or die "chown $quarantine: $!";

ok(wait_for(sub { -f "$quarantine/$bad" }, 10, 'the quarantine'),
   'once it can, the segment is moved to the quarantine');
ok(!-e "$spool/$bad", 'and out of the spool');
is($t->metric('reductrai_spool_quarantined_total'), 1,
   '/metrics: 1 segment quarantined');

# --- (3) a segment the queue has no room for is logged, and ships later

SKIP: {
    skip 'LD_PRELOAD shims and sanitizers do not mix', 5 unless $shimmed;

    # new workers: their short list of added segments was never allocated,
    # so the first segment one seals asks realloc() for its 4096 bytes, in
    # the event loop (the seal and the scan run in threads, spared)
    $t->reload;

    my $r = $t->http(path => '/', body => '{"id":"unqueued"}');
    is($r->{status}, 202, 'a record acknowledged');

    # before reductrai_segment_age (2s) seals its segment; not before the
    # request, whose record's buffers may be new too
    $t->write_file($realloc_flag, '');

    my $queued = qr/\[alert\] .*queueing "[^"]+" for upload failed /
                 . qr/\(12: Cannot allocate memory\)$/;

    ok(wait_for(sub { $t->grep_log($queued) }, 10, 'the push fails'),
       'error.log: queueing the sealed segment failed, and why');

    unlink $realloc_flag or die "unlink $realloc_flag: $!";

    # not lost: the next scan lists it
    ok(wait_for(sub { my @left = (glob("$spool/*.zst"),
                                  glob("$spool/*.log"));
                      !@left }, 10, 'the spool drains'),
       'the segment left the spool');

    my @ids = map { $_->{body}{id} } grep { ref $_->{body} }
              $t->archive_records("$store/archive/stream=default");
    is_deeply(\@ids, [ 'unqueued' ], 'the record shipped, once');
    is(scalar(() = $t->grep_log($queued)), 1, 'logged once');
}

$t->check_error_log(
    allow => [ qr/\[crit\] .*spool scan of "\Q$spool\E" failed /
               . qr/\(5: Input\/output error\)$/,
               qr/\[crit\] .*reading spool segment "\Q$bad\E" failed /
               . qr/\(13: Permission denied\)$/,
               qr/\[alert\] .*queueing "[^"]+" for upload failed /
               . qr/\(12: Cannot allocate memory\)$/ ]);

done_testing;
