#!/usr/bin/perl
# The HA chaos suite (make chaos): three nginx instances with the module
# behind a load balancer, one shared S3 bucket, a primary and a backup
# vendor; under load, each scenario injects a fault, then the bucket and
# the vendors' logs are checked against what the clients were told.
#
#   chaos/chaos.pl [--short] [--only NAME,NAME] [--outage S] [--down S]
#                  [--pace S] [--lb-conf FILE] [--haproxy-cfg FILE]
#                  [--report FILE]
#
# --short runs the profile t/80-chaos.t uses (5 s outages); the default is
# the full one (30 s outages).  --lb-conf and --haproxy-cfg test other
# load balancer configurations in place of conf/lb.conf and
# conf/haproxy.cfg (same substitutions: the three 10.0.1.x:8080 servers
# become the instances, TLS is dropped).  The report
# (a Markdown table, also printed) goes to chaos/results/latest.md, or
# latest-short.md with --short.  Exit status 0 only when every check
# passed (known failures are TODO checks, listed in the report).  Run as
# root (nginx drops to nobody for its workers), after make and make node.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Getopt::Long qw(GetOptions);
use Test::More;

my $DIR;
BEGIN { $DIR = dirname(abs_path(__FILE__)) }
use lib "$DIR/lib";
use RdxChaos;
use RdxChaosCheck qw(check_scenarios check_summary);

my ($short, $only, $report, $lb_conf, $haproxy_cfg, %override);
GetOptions(
    'short'         => \$short,
    'only=s'        => \$only,
    'report=s'      => \$report,
    'lb-conf=s'     => \$lb_conf,
    'haproxy-cfg=s' => \$haproxy_cfg,
    'outage=f'      => \$override{outage},
    'down=f'        => \$override{down},
    'pace=f'        => \$override{pace},
) or die "usage: $0 [--short] [--only NAME,...] [--outage S] [--down S]"
         . " [--pace S] [--lb-conf FILE] [--haproxy-cfg FILE]"
         . " [--report FILE]\n";
delete @override{ grep { !defined $override{$_} } keys %override };

my $profile = $short ? 'short' : 'full';
$report //= "$DIR/results/latest" . ($short ? '-short' : '') . '.md';

my @names = RdxChaos->scenario_names;
if ($only) {
    my %want = map { $_ => 1 } split /,/, $only;
    my @bad = grep { my $w = $_; !grep { $_ eq $w } @names } keys %want;
    die "unknown scenario(s): @bad (known: @names)\n" if @bad;
    @names = grep { $want{$_} } @names;
}

my $c = RdxChaos->new(profile => $profile, override => \%override,
                      lb_conf => $lb_conf && abs_path($lb_conf),
                      haproxy_cfg => $haproxy_cfg && abs_path($haproxy_cfg),
                      log => sub { diag(@_) });

# a run that dies must fail a check, or RdxTest would remove the
# directories a post-mortem needs
unless (eval { $c->setup; $c->run_scenario($_) for @names; $c->finish; 1 }) {
    fail("the chaos run completed: $@");
    done_testing;
    exit 1;
}

check_scenarios($c);
$c->check_error_logs;

my $md = $c->report_markdown(checks => [ check_summary() ]);
if (open my $fh, '>', $report) {
    print $fh $md;
    close $fh;
}
print "\n$md\nreport saved to $report\n";

$c->teardown;
done_testing;
