#!/usr/bin/perl
# A spool on a full disk: writes fail, the policy applies, the failure is
# logged once per episode, no trail of empty segments is left behind, what
# was committed before is shipped once storage works, and a record answered
# before it was written (async) and then lost is counted as dropped.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest qw(wait_for random_text);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

my $spool = $t->path('spool');
mkdir $spool or die;
system('mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'rdxtest', $spool)
    == 0 or BAIL_OUT('cannot mount a tmpfs for the spool (run as root)');
my $mounted = 1;
END { system('umount', '-l', $spool) if $mounted }
chown((getpwnam('nobody'))[2, 3], $spool);

my $store = $t->path('store');
mkdir $store, 0755 or die;

$t->reductrai_config(
    directives => { storage => "file://$store/archive",
                    spool => "$spool max_size=64m",
                    segment_size => '64k' },
    server => <<'EOT',
        location /reject/ {
            reductrai on;
            reductrai_spool_full reject;
            proxy_pass http://vendor;
        }
EOT
);
$t->start;

sub random_json { '{"r":"' . random_text(40_000) . '"}' }

my (@acked, @refused);
for my $i (1 .. 150) {
    my $r = $t->http(path => "/reject/$i", body => random_json());
    if ($r->{status} == 202) {
        push @acked, "/reject/$i";
    } elsif ($r->{status} == 503) {
        push @refused, "/reject/$i";
    } else {
        fail("request $i: unexpected status $r->{status}");
    }
}

ok(@acked > 20, scalar(@acked) . ' requests acknowledged');
ok(@refused > 20, scalar(@refused) . ' refused once the disk was full');

my @crit = $t->grep_log(qr/writing to the spool .* failed/);
ok(@crit >= 1 && @crit <= 3,
   'the spool failure is logged once per episode (' . scalar(@crit) . ')');
# logs may wait for room to be sealed, but every one holds records
my @logs = glob("$spool/*.log");
my @empty = grep { !RdxTest::read_spool_log($_) } @logs;
is(scalar @empty, 0, 'no trail of empty logs (' . scalar(@logs)
                     . ' logs, each with records)');

# storage comes back: the spool drains, every acknowledged request arrives
chown((getpwnam('nobody'))[2, 3], $store);

my %want = map { $_ => 1 } @acked;
wait_for(sub {
    my %got = map { $_->{uri} => 1 } $t->archive_records("$store/archive");
    !grep { !$got{$_} } keys %want
}, 60, 'every acknowledged request archived');

my @objects = $t->archive_objects("$store/archive");
my %got;
$got{ $_->{uri} }++ for map { @{ $_->{records} } } @objects;
is((grep { $got{$_} } @acked), scalar @acked,
   'every acknowledged request is in the archive');
is((grep { $got{$_} } @refused), 0, 'no refused request is');
is((grep { $_ > 1 } values %got), 0, 'and each once');
is((grep { $_->{trailer}{count} == 0 } @objects), 0,
   'no empty object from failed writes');

my $r = $t->http(path => '/reject/after', body => '{"a":1}');
is($r->{status}, 202, 'accepted again once the disk has room');

# async: answered before written; a write that fails then is a loss
$t->stop;
$t->reductrai_config(
    directives => { storage => "file://$store/archive",
                    spool => "$spool max_size=64m",
                    durability => 'async' });
system('rm', '-rf', "$store/archive");
mkdir "$store/archive";
chown((getpwnam('nobody'))[2, 3], "$store/archive");
chmod 0555, $store;
chown 0, 0, $store, "$store/archive";
$t->start;

my $acked_async = 0;
for my $i (1 .. 150) {
    $r = $t->http(path => "/async/$i", body => random_json());
    $acked_async++ if $r->{status} == 202;
}

my $m;
wait_for(sub { $m = $t->metrics; $m->{reductrai_archive_dropped_total} > 0 },
         10, 'losses counted');
ok($m->{reductrai_archive_dropped_total} > 0,
   "async: $m->{reductrai_archive_dropped_total} records answered and then "
   . 'not written are counted as dropped');

$t->stop;
my $kept_records = 0;
$kept_records += scalar @{ $_->{lines} }
    for map { RdxTest::read_archive_object($_) } glob("$spool/*.zst");
$kept_records += scalar RdxTest::read_spool_log($_) for glob("$spool/*.log");
is($kept_records + $m->{reductrai_archive_dropped_total}, $acked_async,
   'async: every answered record is either in the spool or counted lost');

# a full disk is a syscall failure: logged at crit, once per episode
$t->check_error_log(allow => [ qr/\(28: No space left on device\)/ ]);

system('umount', $spool) == 0 and $mounted = 0;

done_testing;
