#!/usr/bin/perl
# The spool scan under a long storage outage (issue 13, item 4): a spool
# holding --segments sealed segments (100 000: a day of outage) while
# storage refuses every upload, then while it drains once storage is back.
# A probe request (return 204) every 10 ms on a new connection measures
# how long the event loops stall; /health is asked beside it.  The first
# phase, with an empty spool, is the noise floor of the machine and of the
# client: the other phases are to be read against it.
#
#   bench/scan.pl --module objs/ngx_http_reductrai_module.so
#       [--work DIR] [--segments N] [--seconds S] [--workers N]
#
# Prints a Markdown table (called by bench.pl for `--only scan`).  Wanted:
# the longest probe ≤ 5 ms and /health p99 ≤ 10 ms.

use strict;
use warnings;

use FindBin qw($Bin);
use lib "$Bin/lib", "$Bin/../t/lib";

use File::Path qw(rmtree);
use Getopt::Long qw(GetOptions);
use IO::Socket::INET;
use POSIX qw(ceil);
use Time::HiRes qw(time sleep);

use RdxBench;
use RdxTest ();

my %opt = (segments => 100_000, seconds => 10, workers => 2,
           work => "/tmp/rdx-scan-$$");
GetOptions(\%opt, 'module=s', 'work=s', 'segments=i', 'seconds=i',
           'workers=i', 'keep')
    or die "usage: $0 --module SO [--work DIR] [--segments N] "
           . "[--seconds S] [--workers N] [--keep]\n";
die "--module is required\n" unless $opt{module};

my $bench = RdxBench->new(work => $opt{work});
my $port = RdxBench::free_port();
my $data = "$opt{work}/data";
my $spool = $bench->worker_dir("$data/spool");
my $store = "$data/store";

# a store the workers (nobody) cannot write to: every upload fails
mkdir $store, 0755 or die "mkdir $store: $!";

my $inst = $bench->nginx(name => 'scan', conf => <<"EOT");
load_module $opt{module};
worker_processes $opt{workers};
events { worker_connections 1024; }
http {
    access_log off;
    reductrai_storage file://$store/archive;
    reductrai_spool $spool max_size=64g;
    reductrai_instance bench;

    server {
        listen 127.0.0.1:$port;
        location = /probe { return 204; }
        location = /health { reductrai_health; }
        location = /metrics { reductrai_metrics; }
    }
}
EOT

my @rows;
my $m;

push @rows, [ 'empty spool', probe_for($opt{seconds}), 0 ];

RdxTest::write_sealed_segments($spool, $opt{segments});

$bench->wait_for(sub {
    $m = $bench->metrics($port);
    return ($m->{reductrai_spool_segments} // 0) >= $opt{segments};
}, 120, 'the scan to count the spool');

push @rows, [ 'outage', probe_for($opt{seconds}),
              $m->{reductrai_spool_segments} ];

my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
chown $uid, $gid, $store or die "chown $store: $!";

# the workers back off (up to a minute) while storage fails: the drain is
# measured from its first upload
$bench->wait_for(sub {
    $m = $bench->metrics($port);
    return ($m->{reductrai_storage_uploads_total} // 0) > 0;
}, 90, 'the first upload after the outage');

my $before = $m->{reductrai_spool_segments} // 0;
my $t0 = time;
my @drain = probe_for($opt{seconds});
$m = $bench->metrics($port);
my $left = $m->{reductrai_spool_segments} // 0;
push @rows, [ 'draining', @drain, $left ];

my $rate = sprintf '%.0f', ($before - $left) / (time - $t0);

$bench->stop($inst, fast => 1);
my @problems = $bench->log_problems($inst);

print "| phase | probes | longest probe ms | probe p99 ms | /health p99 ms "
      . "| longest /health ms | segments in the spool |\n"
      . "|---|---:|---:|---:|---:|---:|---:|\n";
print '| ', join(' | ', @$_), " |\n" for @rows;
print "\n$opt{segments} sealed segments, $opt{workers} worker(s), probes "
      . "every 10 ms for $opt{seconds} s per phase; $rate segments/s shipped "
      . "while draining (file:// storage on the same disk).  Wanted: "
      . "longest probe ≤ 5 ms, /health p99 ≤ 10 ms.\n";
print "\nerror.log: $_\n" for @problems;

rmtree($opt{work}) unless $opt{keep};


# A probe and a /health request every 10 ms for $secs seconds, each on a
# new connection so that every worker gets its share.  Returns the probe
# count, the longest probe, its p99, /health's p99 and its longest (ms).
sub probe_for {
    my ($secs) = @_;
    my (@probe, @health);
    my $end = time + $secs;
    my $next = time;

    while (time < $end) {
        push @probe, request('/probe');
        push @health, request('/health');

        $next += 0.01;
        my $wait = $next - time;
        sleep $wait if $wait > 0;
    }

    return (scalar @probe, ms(max_of(@probe)), ms(p99(@probe)),
            ms(p99(@health)), ms(max_of(@health)));
}


sub request {
    my ($path) = @_;
    my $t = time;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or die "connect: $!";
    print $s "GET $path HTTP/1.0\r\nHost: bench\r\n\r\n";
    local $/;
    my $r = <$s>;
    close $s;
    die "$path: no answer\n" unless defined $r && $r =~ m{^HTTP/1\.\d \d};
    return time - $t;
}


sub p99 {
    my @s = sort { $a <=> $b } @_;
    return $s[ ceil(@s * 0.99) - 1 ];
}


sub max_of {
    my @s = sort { $a <=> $b } @_;
    return $s[-1];
}


sub ms { sprintf '%.2f', $_[0] * 1000 }
