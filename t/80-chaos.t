#!/usr/bin/perl
# The HA chaos suite, short version (make chaos runs the full one, with
# 30 s outages): three nginx instances from conf/datadog.conf behind the
# nginx load balancer of conf/lb.conf and HAProxy with conf/haproxy.cfg,
# one s3rver bucket (through a proxy that takes it down), a primary and a
# backup vendor.  Under load, each scenario injects one fault: kill -9 of
# an instance and of a worker, nginx -s reload, a binary upgrade, a storage
# outage, a vendor outage (primary, then all), a full spool.  Then, per
# scenario: no acknowledged request is missing from the bucket, nor any
# request an instance accepted, and the vendors answered every
# acknowledged one; reductrai verify finds no gap and no corrupt object.
# The code is chaos/lib/RdxChaos.pm, shared with chaos/chaos.pl; the
# report goes to chaos/results/latest-short.md (prove -v prints it).

use strict;
use warnings;
use Test::More;
use lib 't/lib', 'chaos/lib';
use RdxChaos;
use RdxChaosCheck qw(check_scenarios check_summary);

my $c = RdxChaos->new(profile => 'short', log => sub { note @_ });
# a run that dies must fail a check, or RdxTest would remove the
# directories a post-mortem needs
unless (eval { $c->setup; $c->run_scenario($_) for $c->scenario_names;
               $c->finish; 1 }) {
    fail("the chaos run completed: $@");
    done_testing;
    exit 1;
}

check_scenarios($c);
$c->check_error_logs;

my $md = $c->report_markdown(checks => [ check_summary() ]);
note $md;
if (open my $fh, '>', 'chaos/results/latest-short.md') {
    print $fh $md;
    close $fh;
}

$c->teardown;
done_testing;
