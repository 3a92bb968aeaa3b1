#!/usr/bin/perl
# The abuse suite (make abuse): one nginx with the module under hostile
# clients (slowloris, aborted bodies, pipelining, request smuggling, 10 000
# keepalive connections, HTTP/2 rapid reset and stream floods,
# decompression bombs) while a steady client sends numbered records; then
# the archive is read back with reductrai cat.  The code is
# abuse/lib/RdxAbuse.pm, shared with t/81-abuse.t (the short version).
#
#   abuse/abuse.pl [--short] [--only PHASE,PHASE] [--report FILE]
#
# The report (Markdown, also printed) goes to abuse/results/latest.md, or
# latest-short.md with --short.  Exit status 0 only when every check
# passed, the steady client's error rate and p99 against their targets
# included (t/81-abuse.t asserts no timing).  Run as root (nginx drops to
# nobody; worker_rlimit_nofile needs it), after make and make cli; the
# soft limit of open files must allow the 10 000 connections (abuse.mk
# raises it).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Getopt::Long qw(GetOptions);
use Test::More;

my $DIR;
BEGIN { $DIR = dirname(abs_path(__FILE__)) }
use lib "$DIR/lib";
use RdxAbuse;

my ($short, $only, $report);
GetOptions('short' => \$short, 'only=s' => \$only, 'report=s' => \$report)
    or die "usage: $0 [--short] [--only PHASE,...] [--report FILE]\n";

my $profile = $short ? 'short' : 'full';
$report //= "$DIR/results/latest" . ($short ? '-short' : '') . '.md';

my @names = RdxAbuse->phase_names;
if ($only) {
    my %want = map { $_ => 1 } split /,/, $only;
    my @bad = grep { my $w = $_; !grep { $_ eq $w } @names } keys %want;
    die "unknown phase(s): @bad (known: @names)\n" if @bad;
    @names = grep { $want{$_} || $_ eq 'baseline' } @names;
}

my $a = RdxAbuse->new(profile => $profile, log => sub { diag(@_) });

# a run that dies must fail a check, or RdxTest would remove the
# directory a post-mortem needs
unless (eval { $a->setup; $a->run_phase($_) for @names; $a->finish; 1 }) {
    fail("the abuse run completed: $@");
    done_testing;
    exit 1;
}

ok($_->[1], "$_->[0] ($_->[2])") for $a->report_checks(targets => 1);
$a->check_error_log;

my $md = $a->report_markdown(targets => 1);
if (open my $fh, '>', $report) {
    print $fh $md;
    close $fh;
}
print "\n$md\nreport saved to $report\n";

$a->teardown;
done_testing;
