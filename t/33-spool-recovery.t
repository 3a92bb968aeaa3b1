#!/usr/bin/perl
# Spool recovery at start: open segments of dead workers are cut at their
# last complete record, sealed and shipped exactly once, also when several
# workers start together; a sealed segment whose trailer was damaged is
# rebuilt; what cannot be read at all is moved to quarantine/ and counted,
# and never stops nginx from starting.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use RdxTest qw(wait_for parse_key);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);
my $spool = $t->path('spool');

# --- leave open segments behind: many streams, then kill -9 everything

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

my @open = glob("$spool/*.open");
ok(@open >= 8, scalar(@open) . ' open segments left by the killed workers');

# a torn tail: cut the last bytes of one segment (a write cut short)
my ($torn) = sort @open;
my $size = -s $torn;
truncate $torn, $size - 3 or die "truncate: $!";
my ($torn_stream) = $torn =~ m{/(s\d+),};

# a sealed segment whose trailer got damaged
my ($resealed) = grep { $_ ne $torn } sort @open;
(my $sealed_name = $resealed) =~ s/\.open$/.zst/;
rename $resealed, $sealed_name or die;

# garbage under a valid open name, an empty segment, stale temporaries
my $garbage = "$spool/s9,2026-01-01,00,dead-1-1000-00000001,1000.open";
$t->write_file($garbage, "\x01\x02 this is not zstd" x 100);
my $empty = "$spool/s9,2026-01-01,00,dead-2-1000-00000001,1000.open";
$t->write_file($empty, '');
my $stale = "$spool/.new.s9,2026-01-01,00,dead-3-1000-00000001,1000.open";
$t->write_file($stale, '');
utime time - 3600, time - 3600, $stale;
chown((getpwnam('nobody'))[2, 3], $garbage, $empty, $stale);

# --- restart: two workers recover together

$t->start;

wait_for(sub { !glob("$spool/*.open") && !glob("$spool/*.zst") },
         30, 'the spool is recovered and shipped');

my @left = grep { -f } glob("$spool/*");
is(scalar @left, 0, 'nothing left in the spool') or diag("@left");
ok(-f "$spool/quarantine/" . ($garbage =~ s{.*/}{}r),
   'the unreadable segment was moved to quarantine/');
ok(!-e $stale, 'a stale temporary file was removed');

my @objects = $t->archive_objects($t->archive_dir);
my %got;
for my $o (@objects) {
    $got{ $_->{body}{id} }++ for @{ $o->{records} };
}

my @missing = grep { !$got{$_} } keys %sent;
my $torn_missing = grep { /^\Q${\ substr($torn_stream, 1)}\E-/ } @missing;
ok(@missing <= 1 && $torn_missing == @missing,
   'only the record cut by the torn tail may be missing ('
   . scalar(@missing) . ')');
is((grep { $_ > 1 } values %got), 0, 'each record archived once');

my %keys;
$keys{ $_->{key} }++ for @objects;
is((grep { $_ > 1 } values %keys), 0, 'each segment shipped once');

my ($empty_obj) = grep { $_->{key} =~ /dead-2-1000-00000001/ } @objects;
ok($empty_obj, 'the empty segment became an empty object (no seq gap)');
is($empty_obj->{trailer}{count}, 0, 'with count 0') if $empty_obj;

my @bad = grep { !$_->{trailer} || $_->{error}
                 || $_->{trailer}{count} != @{ $_->{records} } } @objects;
is(scalar @bad, 0, 'every object is whole with a matching trailer');

my $m = $t->metrics;
is($m->{reductrai_spool_quarantined_total}, 1, 'one file quarantined');
ok($t->grep_log(qr/recovered \d+ open segment/), 'recovery is logged');
ok($t->grep_log(qr/unreadable spool file.*moved to/),
   'quarantine is logged');
ok($t->grep_log(qr/had no valid trailer and was rebuilt/),
   'the damaged sealed segment was rebuilt');

$t->check_error_log(allow => [ qr/exited on signal 9/ ]);

done_testing;
