#!/usr/bin/perl
# Under load, nothing is lost or archived twice across nginx -s reload, a
# binary upgrade (USR2, then WINCH and QUIT of the old master), a worker
# crash and nginx -s quit: exiting workers seal and ship, or leave sealed
# segments the new ones adopt, and a segment is locked while it uploads.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202, workers => 4);

$t->reductrai_config(
    main => 'worker_processes 2;',
    directives => { segment_age => '1h', segment_size => '256k' },
);
$t->start;

my $load = $t->load_start(n => 100_000, concurrency => 4, pause => 0.05);
sleep 1;

$t->reload;
sleep 0.5;
$t->reload;
sleep 0.5;

my @w = $t->worker_pids;
my $killed = $w[0];
ok($killed && kill('KILL', $killed), 'a worker killed with SIGKILL');
sleep 0.5;

# binary upgrade: a new master beside the old one, then the old goes away
my $old = $t->master_pid;
my $new = $t->upgrade(keep_old => 1);
isnt($new, $old, 'a new master runs beside the old one');
kill 'WINCH', $old;
sleep 0.5;
kill 'QUIT', $old;
ok(wait_for(sub { !RdxTest::_alive($old) }, 30, 'the old master exits'),
   'the old master is gone');
sleep 0.5;

$t->reload;
sleep 0.5;

ok($load->running, 'the load ran through reloads and the upgrade');
my $res = $load->stop;
$t->stop;

my @acked = grep { $res->{$_} == 202 } keys %$res;
my (%archived, %ids, %writers);
for my $r ($t->archive_records($t->archive_dir)) {
    $archived{ $r->{body}{id} }++;
    $ids{ $r->{id} }++;
    push @{ $writers{ $r->{body}{id} } }, (split /-/, $r->{id})[-3];
}

my @missing = grep { !$archived{$_} } @acked;

# the killed worker may have archived a request it never answered: the
# client sent it again (at least once); nothing else may appear twice
my @twice = grep { $archived{$_} > 1
                   && !grep { $_ == $killed } @{ $writers{$_} } }
            keys %archived;

ok(@acked > 1000, scalar(@acked) . ' requests acknowledged');
is(scalar(grep { !$_ } values %$res), 0, 'no request failed');
is(scalar @missing, 0, 'no acknowledged record missing');
is(scalar(grep { $_ > 1 } values %ids), 0, 'no record id archived twice');
is(scalar @twice, 0, 'no request archived twice but by the killed worker')
    or diag(join ' ', map { "$_ x$archived{$_}" } @twice);
is(scalar(keys %archived), scalar(@acked), 'the archive holds exactly them');
note(scalar(grep { $_ > 1 } values %archived)
     . ' requests sent again after the kill -9');

my @left = glob($t->path('spool') . '/*.*');
is(scalar @left, 0, 'the spool is empty after quit') or diag("@left");

my %keys;
$keys{$_->{key}}++ for $t->archive_objects($t->archive_dir);
is((grep { $_ > 1 } values %keys), 0, 'every object key is unique');

$t->check_error_log(allow => [ qr/exited on signal 9/ ]);

done_testing;
