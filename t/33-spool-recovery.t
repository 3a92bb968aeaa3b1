#!/usr/bin/perl
# Spool recovery at start: the logs of dead workers are read up to their
# last intact record, sealed and shipped exactly once, also when several
# workers start together.  A torn tail (a write cut short) and a tail of
# zeros (a power loss before the sync) lose only what was never
# acknowledged; a record whose checksum fails in the middle of a log keeps
# every record before it, and the log goes to quarantine/ and is counted.
# A zstd segment left open by a version before the spool log (an upgrade)
# and a sealed segment whose trailer was damaged are rebuilt; what cannot
# be read at all is moved aside, and never stops nginx from starting.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest qw(wait_for);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);
my $spool = $t->path('spool');

# --- leave logs behind: many streams, then kill -9 everything

$t->reductrai_config(
    main => 'worker_processes 2;',
    directives => { segment_age => '1h' },
    location => '            reductrai_stream $arg_s;',
);
$t->start;

my %sent;
for my $s (1 .. 8) {
    for my $i (1 .. 25) {
        my $id = "$s-$i";
        my $r = $t->http(path => "/?s=s$s", body => qq({"id":"$id"}));
        $sent{$id} = 1 if $r->{status} == 202;
    }
}
is(scalar keys %sent, 200, '200 requests acknowledged');
$t->kill_master9;

my @logs = sort glob("$spool/*.log");
ok(@logs >= 8, scalar(@logs) . ' logs left by the killed workers');

# the frames of a log: [offset, length, head, body]
sub frames { RdxTest::read_spool_log($_[0]) }

sub body_id { $_[0] =~ /"id":"([^"]+)"/ ? $1 : '?' }

my @multi = grep { frames($_) >= 3 } @logs;
ok(@multi >= 3, scalar(@multi) . ' logs hold 3 records or more');
my ($torn, $corrupt, $zeroed) = @multi[0 .. 2];

# a torn tail: the last record's write cut short, never acknowledged
my @tf = frames($torn);
truncate $torn, $tf[-1][0] + $tf[-1][1] - 3 or die "truncate: $!";
my $torn_id = body_id($tf[-1][3]);

# a checksum that fails in the second record: the first is kept, the rest
# cannot be trusted and is kept aside (acknowledged records: counted lost)
my @cf = frames($corrupt);
my @lost = map { body_id($_->[3]) } @cf[1 .. $#cf];
{
    open my $fh, '+<', $corrupt or die "$corrupt: $!";
    binmode $fh;
    seek $fh, $cf[1][0] + $cf[1][1] - 2, 0;
    print {$fh} 'Z';
    close $fh;
}
(my $corrupt_name = $corrupt) =~ s{.*/}{};

# zeros after the last record: a power loss extended the file, unsynced
my @zeroed_ids = map { body_id($_->[3]) } frames($zeroed);
{
    open my $fh, '>>', $zeroed or die "$zeroed: $!";
    print {$fh} "\0" x 4096;
    close $fh;
}

# an old-format open segment (a zstd stream of lines) and a sealed segment
# without a trailer, both as versions before the spool log left them
my $line = sub {
    qq({"id":"old-$_[0]","ts":"2026-01-01T00:00:00.000Z","stream":"old",)
    . qq("method":"POST","uri":"/","host":null,"client":null,)
    . qq("request_id":null,"content_type":null,"content_encoding":null,)
    . qq("user_agent":null,"api_key_fp":null,"forwarded":true,"size":12,)
    . qq("body":{"id":"o$_[0]"}}\n);
};
my $old_open = "$spool/old,2026-01-01,00,dead-4-1000-00000001,1767225600000.open";
$t->write_file($old_open, RdxTest::zstd_compress(join '', map { $line->($_) } 1 .. 3));
my $old_sealed = "$spool/old,2026-01-01,00,dead-5-1000-00000001,1767225600000.zst";
$t->write_file($old_sealed, RdxTest::zstd_compress(join '', map { $line->($_) } 4 .. 5));

# garbage under a log's name, an empty log, a stale temporary
my $garbage = "$spool/s9,2026-01-01,00,dead-1-1000-00000001,1000.log";
$t->write_file($garbage, "\x01\x02 this is not a spool log" x 100);
my $empty = "$spool/s9,2026-01-01,00,dead-2-1000-00000001,1000.log";
$t->write_file($empty, '');
my $stale = "$spool/.new.s9,2026-01-01,00,dead-3-1000-00000001,1000.log";
$t->write_file($stale, '');
utime time - 3600, time - 3600, $stale;
chown((getpwnam('nobody'))[2, 3], $garbage, $empty, $stale, $old_open,
      $old_sealed);

# --- restart: two workers recover together

$t->start;

wait_for(sub { !glob("$spool/*.log") && !glob("$spool/*.open")
               && !glob("$spool/*.zst") },
         30, 'the spool is recovered and shipped');

my @left = grep { -f } glob("$spool/*");
is(scalar @left, 0, 'nothing left in the spool') or diag("@left");
ok(-f "$spool/quarantine/" . ($garbage =~ s{.*/}{}r),
   'the unreadable log was moved to quarantine/');
ok(-f "$spool/quarantine/$corrupt_name",
   'the log with a bad checksum was moved to quarantine/');
ok(!-e $stale, 'a stale temporary file was removed');

my @objects = $t->archive_objects($t->archive_dir);
my %got;
for my $o (@objects) {
    $got{ $_->{body}{id} }++ for @{ $o->{records} };
}

my @missing = sort grep { !$got{$_} } keys %sent;
my %expected = map { $_ => 1 } $torn_id, @lost;
is_deeply(\@missing, [ sort keys %expected ],
          'missing: the torn record and those after the bad checksum ('
          . scalar(@missing) . ')');
ok($got{ body_id($cf[0][3]) }, 'the record before the bad checksum is kept');
is((grep { $got{$_} } @zeroed_ids), scalar @zeroed_ids,
   'the log with a zero tail lost nothing (' . @zeroed_ids . ' records)');
is((grep { $_ > 1 } values %got), 0, 'each record archived once');
is((grep { $got{"o$_"} } 1 .. 5), 5,
   'the old-format open and sealed segments were rebuilt');

my %keys;
$keys{ $_->{key} }++ for @objects;
is((grep { $_ > 1 } values %keys), 0, 'each segment shipped once');

my ($empty_obj) = grep { $_->{key} =~ /dead-2-1000-00000001/ } @objects;
ok($empty_obj, 'the empty log became an empty object (no seq gap)');
is($empty_obj->{trailer}{count}, 0, 'with count 0') if $empty_obj;

my @bad = grep { !$_->{trailer} || $_->{error}
                 || $_->{trailer}{count} != @{ $_->{records} } } @objects;
is(scalar @bad, 0, 'every object is whole with a matching trailer');

my $m = $t->metrics;
is($m->{reductrai_spool_quarantined_total}, 2, 'two files quarantined');
ok($t->grep_log(qr/recovered \d+ open segment/), 'recovery is logged');
ok($t->grep_log(qr/unreadable spool file.*moved to/),
   'quarantine is logged');
ok($t->grep_log(qr/had no valid trailer and was rebuilt/),
   'the damaged sealed segment was rebuilt');

$t->check_error_log(allow => [ qr/exited on signal 9/ ]);

done_testing;
