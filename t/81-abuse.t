#!/usr/bin/perl
# The abuse suite, short version (make abuse runs the full one: 5 000 slow
# connections, 10 000 keepalive connections, larger floods and bombs):
# one nginx with the module (a forwarding and a store-only location,
# durability write, HTTP/1.1 and HTTP/2) under slowloris, bodies aborted
# at random offsets, pipelining, Content-Length + Transfer-Encoding
# smuggling, concurrent keepalive connections, HTTP/2 rapid reset and
# stream floods and decompression bombs, one after another and then all at
# once, while a steady client sends numbered records.  Asserted: no
# acknowledged record is missing from the archive (read back with
# reductrai cat), every steady request is answered, every smuggling
# attempt is rejected with a single answer and its inner request is
# neither archived nor forwarded, the workers' descriptors come back to
# the baseline, their RSS high-water stays under the bound the
# configuration gives, no worker crashed, error.log is clean.  Latency
# and error rate are reported (prove -v), not asserted: make abuse does.

use strict;
use warnings;
use Test::More;
use lib 't/lib', 'abuse/lib';
use RdxAbuse;

# the keepalive phase holds its connections in one process: fewer when the
# open-files limit (ulimit -n) is low
my $nofile = `sh -c 'ulimit -n'`;
chomp $nofile;
my %override;
$override{keepalive} = $nofile - 200
    if $nofile =~ /^\d+$/ && $nofile - 200 < RdxAbuse->new->param('keepalive');

my $a = RdxAbuse->new(profile => 'short', override => \%override,
                      log => sub { note @_ });
unless (eval { $a->setup; $a->run_phase($_) for $a->phase_names;
               $a->finish; 1 }) {
    fail("the abuse run completed: $@");
    done_testing;
    exit 1;
}

my $v = $a->verdict;
is(scalar @{ $v->{ack_missing} }, 0,
   "no acknowledged record is missing from the archive ($v->{acked} "
   . "acknowledged, $v->{records} records)")
    or diag "missing: @{ $v->{ack_missing} }[0 .. 19]";
is($v->{cat_rc}, 0, 'reductrai cat reads the whole archive');
ok($v->{steady}{sent} > 100, "the steady client ran ($v->{steady}{sent} "
   . "requests)");
is($v->{steady}{noanswer}, 0, 'every steady request was answered');

my ($sm) = grep { $_->{name} eq 'smuggling' } $a->results;
is($sm->{rejected}, $sm->{sent}, "every smuggling attempt rejected with "
   . "one answer ($sm->{rejected} of $sm->{sent})");
is_deeply($v->{smuggled_archived}, [], 'no smuggled request archived');
is(scalar @{ $v->{smuggled_upstream} }, 0, 'no smuggled request forwarded');

for my $ph ($a->results) {
    next unless $ph->{status};
    my @bad = grep { !/^2/ } keys %{ $ph->{status} };
    is("@bad", '', "$ph->{name}: every completed request got a 2xx");
}

my ($sl) = grep { $_->{name} eq 'slowloris' } $a->results;
is(join(' ', grep { !/^2/ } keys %{ $sl->{header_status} }), '',
   'slowloris: every request whose headers trickled, then completed, got '
   . 'a 2xx');

my ($all) = grep { $_->{name} eq 'together' } $a->results;
is($all->{errors}, 0, "together: every attack ran at once ($all->{sent})")
    or diag $all->{summary};
ok(scalar(grep { /^all-/ } keys %{ $a->{acked} }) > 100,
   'together: its acknowledged requests are counted in the archive check');

ok($v->{fd_ok}, 'worker descriptors back to the baseline')
    or diag explain $v->{fd_before}, $v->{fd_after};
ok($v->{rss_ok}, 'worker RSS high-water under the configured bound')
    or diag explain $v->{rss};
ok($v->{workers_same}, 'no worker replaced (none crashed)');

note $a->report_markdown;
$a->check_error_log;
$a->teardown;
done_testing;
