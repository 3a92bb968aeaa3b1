#!/usr/bin/perl
# Durability modes.  fsync: a request proceeds only after the fdatasync()
# of its batch, and concurrent requests share one (group commit).  write:
# the record is in the spool file (page cache) before the answer.  async:
# the answer does not wait for the write.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202, workers => 4);

# strace of the worker's threads: each fdatasync() and each answer sent
sub traced {
    my ($durability, $requests, $concurrency) = @_;

    $t->reductrai_config(directives => { durability => $durability,
                                         segment_age => '1h' });
    $t->start;

    my ($worker) = $t->worker_pids;
    my $trace = $t->path("strace-$durability.txt");
    my $pid = fork // die;
    if (!$pid) {
        exec 'strace', '-qq', '-f', '-tt', '-e', 'trace=fdatasync,writev,sendfile',
             '-o', $trace, '-p', $worker;
        exit 127;
    }
    # without a tracer "no fdatasync()" would hold for an empty trace
    ok(wait_for(sub { RdxTest::_slurp("/proc/$worker/status")
                      =~ /^TracerPid:\s+[1-9]/m }, 10, 'strace attached'),
       "$durability: strace attached to the worker");

    my $res = $t->load(n => $requests, concurrency => $concurrency);

    kill 'INT', $pid;
    waitpid $pid, 0;
    $t->stop;

    my @lines = split /\n/, $t->read_file("strace-$durability.txt");
    return ($res, \@lines);
}

my ($res, $lines) = traced('fsync', 400, 8);
my $acked = grep { $_ == 202 } values %$res;
my @syncs = grep { /fdatasync\(\d+\)\s+= 0/ } @$lines;

is($acked, 400, 'fsync: every request acknowledged');
ok(@syncs > 0, 'fsync: fdatasync() is called');
ok(@syncs < $acked, 'fsync: group commit, ' . scalar(@syncs)
   . " fdatasync() for $acked requests");

# every answer to a client follows an fdatasync(): the first answer comes
# after the first sync
my ($first_sync) = grep { $lines->[$_] =~ /fdatasync\(\d+\)\s+= 0/ }
                   0 .. $#$lines;
my ($first_answer) = grep { $lines->[$_] =~ /HTTP\/1\.1 202/ } 0 .. $#$lines;
ok(defined $first_answer && $first_sync < $first_answer,
   'fsync: the first answer follows the first fdatasync()');

my @archived = $t->archive_records($t->archive_dir);
is(scalar @archived, 400, 'fsync: all archived');

# write: no fdatasync() on the request path
system('rm', '-rf', $t->archive_dir . '/stream=default');
($res, $lines) = traced('write', 200, 4);
@syncs = grep { /fdatasync/ } @$lines;
is((grep { $_ == 202 } values %$res), 200, 'write: every request answered');
ok((grep { /HTTP\/1\.1 202/ } @$lines), 'write: the trace saw the answers');
is(scalar @syncs, 0, 'write: no fdatasync() while serving');

# async: answers do not wait for the encoder
system('rm', '-rf', $t->archive_dir . '/stream=default');
$t->reductrai_config(directives => { durability => 'async',
                                     commit_timeout => '1ms' });
$t->start;
my $slow = '[' . join(',', ('{"k":"v","n":12345}') x 400_000) . ']';
my $r = $t->http(path => '/async', body => $slow, timeout => 30);
is($r->{status}, 202,
   'async: a body that takes longer than commit_timeout to encode is not '
   . 'refused (nobody waits)');
my @recs = $t->wait_archived(1, 30);
is($recs[0]{size}, length $slow, 'async: and it is archived');

$t->check_error_log;

done_testing;
