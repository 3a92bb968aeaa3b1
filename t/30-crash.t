#!/usr/bin/perl
# With durability "write" (and "fsync"), a kill -9 of a worker or of the
# whole instance under load loses nothing that was acknowledged: the spool
# is recovered (a torn tail cut at the last complete record) and shipped.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202, workers => 4);

sub run_scenario {
    my ($durability, $kill) = @_;

    $t->reductrai_config(
        main => 'worker_processes 2;',
        directives => { durability => $durability, segment_age => '1h' },
    );
    $t->start;

    # more requests than the scenario has time for: stopped after it
    my $load = $t->load_start(n => 100_000, concurrency => 6, pause => 0.05,
        body => sub {
            my $id = shift;
            ([ 'Content-Type' => 'application/json' ],
             qq({"id":$id,"pad":") . ('p' x (200 + $id % 700)) . '"}');
        });

    $kill->();
    ok($load->running, "$durability: the load ran through the kills");

    my $res = $load->stop;
    $t->stop;

    my @acked = grep { $res->{$_} == 202 } keys %$res;
    my %archived;
    $archived{ $_->{body}{id} }++
        for grep { ref $_->{body} } $t->archive_records($t->archive_dir);

    my @missing = grep { !$archived{$_} } @acked;
    my $dups = grep { $_ > 1 } values %archived;

    ok(@acked > 500, "$durability: " . scalar(@acked)
       . ' of ' . scalar(keys %$res) . ' requests acknowledged');
    is(scalar @missing, 0, "$durability: no acknowledged record missing")
        or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
    note("$durability: $dups duplicates (client retries after a kill)");

    my @left = glob($t->path('spool') . '/*.*');
    is(scalar @left, 0, "$durability: the spool is empty after the stop")
        or diag("@left");

    # every object is whole and its trailer agrees with it
    my @bad = grep { !$_->{trailer} || $_->{error}
                     || $_->{trailer}{count} != @{ $_->{records} }
                     || $_->{trailer}{raw_bytes} != $_->{raw_bytes} }
              $t->archive_objects($t->archive_dir);
    is(scalar @bad, 0, "$durability: every object has a matching trailer");

    my $m = $t->metrics_after_start;
    is($m->{reductrai_spool_quarantined_total} // 0, 0,
       "$durability: nothing quarantined");

    return \%archived;
}

# a worker, then the other, then the whole instance
run_scenario('write', sub {
    sleep 1;
    my @w = $t->worker_pids;
    ok(@w && kill('KILL', $w[0]), 'write: a worker killed');
    sleep 1;
    @w = $t->worker_pids;
    ok(@w && kill('KILL', $w[-1]), 'write: another worker killed');
    sleep 1;
    $t->kill_master9;
    sleep 0.5;
    $t->start;
    sleep 1;
});

ok($t->grep_log(qr/recovered \d+ open segment/),
   'the new workers recovered the open segments');

system('rm', '-rf', $t->archive_dir . '/stream=default');

run_scenario('fsync', sub {
    sleep 1;
    $t->kill_master9;
    sleep 0.5;
    $t->start;
    sleep 1;
    my @w = $t->worker_pids;
    ok(@w && kill('KILL', $w[0]), 'fsync: a worker killed');
    sleep 1;
});

$t->check_error_log(allow => [ qr/exited on signal 9/ ]);

done_testing;
