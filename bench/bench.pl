#!/usr/bin/perl

# make bench: where ngx_http_reductrai_module stands against plain nginx,
# against the archives its peers write (batched gzip -6) and against zstd's
# own limits, on a realistic Datadog corpus.  Prints a table and writes it
# to bench/results/latest.md.
#
#   bench/bench.pl [--quick] [--only proxy,latency,archive,sparse,encode,
#                  memory,scan,protobuf] [--seconds 8] [--rounds 3] [--seed 42] [--keep]
#                  [--level N] [--wlog N] [--ldm 0|1] [--ldm-rate N]
#                  [--sparse 300] [--pause-ms 3]
#
# Every comparison runs side by side in one run, as a ratio: plain nginx
# (A) and nginx with the module (B; for latency also C = durability async
# and F = durability fsync) are all running, forward to the same upstream,
# and are measured in turns A B, B A, A B ... so that drift on a shared
# machine hits both.  zstd's own cost, the reference of the CPU target, is
# measured in the same run with the module's level and window (read from
# its source unless --level, --wlog, --ldm, --ldm-rate say otherwise).
# bench/README.md describes the phases.
#
# CPU placement on the 2-core machine (taskset): wrk on CPU 1, the upstream
# nginx on CPU 1, nginx A and B (both workers and their threads) free to
# use both CPUs.  Override with BENCH_CPUS_WRK, BENCH_CPUS_UPSTREAM,
# BENCH_CPUS_NGINX ("" = no pinning).

use strict;
use warnings;

use FindBin qw($Bin);
use lib "$Bin/lib";

use Cwd qw(abs_path);
use File::Path qw(make_path rmtree);
use Getopt::Long qw(GetOptions);
use JSON::PP ();
use List::Util qw(max min sum);
use POSIX qw(ceil strftime);
use Time::HiRes qw(time sleep);
use Time::Local ();

use RdxBench;

my $TOP = abs_path("$Bin/..");
my %opt = (seconds => 8, rounds => 3, seed => 42, only => '',
           sparse => 300, 'pause-ms' => 3,
           out => "$TOP/bench/results/latest.md");

GetOptions(\%opt, 'quick', 'only=s', 'seconds=i', 'rounds=i', 'seed=i',
           'keep', 'out=s', 'level=i', 'wlog=i', 'ldm=i', 'ldm-rate=i',
           'sparse=i', 'pause-ms=i')
    or die "usage: $0 [--quick] [--only LIST] [--seconds N] [--rounds N] "
           . "[--seed N] [--keep] [--level N] [--wlog N] [--ldm 0|1] "
           . "[--ldm-rate N] [--sparse N] [--pause-ms N]\n";

if ($opt{quick}) {
    $opt{seconds} = 3;
    $opt{rounds} = 1;
}

my %only = map { $_ => 1 } split /,/, $opt{only};
sub want { !%only || $only{ $_[0] } }

my %CPUS = (
    wrk      => $ENV{BENCH_CPUS_WRK} // '1',
    upstream => $ENV{BENCH_CPUS_UPSTREAM} // '1',
    nginx    => $ENV{BENCH_CPUS_NGINX} // '',
);
$CPUS{$_} = undef for grep { $CPUS{$_} eq '' } keys %CPUS;

my $MODULE = $ENV{BENCH_MODULE} // "$TOP/objs/ngx_http_reductrai_module.so";
my $TOOL = "$TOP/objs/bench/rdxbench";
my $CORPUS = "$TOP/bench/corpus";
my $MIB = 1024 * 1024;
# seal jobs per worker: reductrai_seal_concurrency, its default
my $SEALS = 2;
my $NCPU = `nproc` + 0 || 2;

# targets of issue 11 (throughput: issue 6's, kept beside its prediction)
my %TARGET = (
    cpu_fixed  => 3,        # µs added per request, on top of ...
    cpu_zstd   => 1.3,      # ... this × zstd's one-shot cost of its line
    event_loop => 3,        # µs of event-loop CPU added per request
    added_p99  => 300,      # µs, at half of saturation, durability write
    throughput => 0.95,     # module req/s / plain req/s
    size       => 0.8,      # module archive / batched gzip -6
    sparse     => 1.05,     # sparse stream's archive / zstd one-shot
    grown      => 0.02,     # a ratio above today's by more than run-to-run
                            # spread (which records share an object)
    puts       => 1,        # storage PUTs per 8 MiB raw
    rss        => 64,       # MiB, a worker's peak under the proxy load
    pb_mbps    => 200,      # issue 12: protobuf decoded and printed, MB/s
                            # of protobuf per core
    pb_size    => 1.0,      # its archive / gzip -6 of the protobuf bytes
);

# Archive ÷ batched gzip -6 per stream at commit 083732b (levels 3 and 1),
# the last run before issue 11: no stream may grow against it.  The sparse
# stream's figures are the issue's (today's per-batch flushes).
my %TODAY = (
    series_v2 => [ 0.686, 0.672 ], series_v1 => [ 0.716, 0.687 ],
    check_run => [ 1.07, 1.06 ], logs => [ 0.842, 0.798 ],
    otlp => [ 0.85, 0.81 ], all => [ 0.82, 0.79 ],
    sparse_gzip => 1.6, sparse_zstd => 1.3,
);

# The module's segments seal this long after their first record, not 30 s
# (the default): after each load the bench waits until what it left
# behind is sealed and shipped, and counts that CPU too.
my $SEGMENT_AGE = '5s';

# The archive runs' segment age: longer than a replay of the fleet corpus,
# so that segments seal on size as they did before, and the wait for what
# a run left behind stays short.
my $ARCHIVE_AGE = '10s';

-x $TOOL && -f $MODULE or die "build first: make module $TOOL\n";

my $work = "/tmp/rdx-bench-$$";
my $bench = RdxBench->new(work => $work);
my %Z = module_zstd();

# a private copy: a rebuild of objs/ during the run must not change the
# code under running workers
system('cp', $MODULE, "$work/module.so") == 0 or die "cp $MODULE failed\n";
$MODULE = "$work/module.so";
my $started = time;
my (%R, @log);

$SIG{INT} = $SIG{TERM} = sub { die "interrupted\n" };

sub say { my $s = join '', @_; print "$s\n"; push @log, $s }


# ---------------------------------------------------------------- zstd

# The zstd settings the module seals with: its default level (the
# compression_level given to ngx_conf_init_value or ngx_conf_merge_value)
# and the segment's window and long-distance matching (core/: a *_WLOG or
# *_WINDOW_LOG and a *_LDM_RATE define, long_distance = 1), unless given
# on the command line.  The lead may change them; the reference moves
# with them.
sub module_zstd {
    my $src = join '', map { $bench->slurp($_) // '' }
              glob "$TOP/ngx_http_reductrai_module/*.[ch] "
                   . "$TOP/ngx_http_reductrai_module/core/*.[ch]";
    my %def = $src =~ /^#define\s+(NGX_HTTP_REDUCTRAI_\w+)\s+(\d+)\b/mg;
    my ($level) = $src =~ /ngx_conf_(?:init|merge)_value\(\s*[\w>-]*
                           compression_level,\s*(?:[\w>-]+,\s*)?
                           (\w+)\s*\)/x;
    my ($wlog) = map { $def{$_} } grep { /_(?:WLOG|WINDOW_LOG)$/ }
                 sort keys %def;
    my ($rate) = map { $def{$_} } grep { /_LDM_RATE$/ } sort keys %def;

    $level = $def{$level} if defined $level && $level !~ /^\d+$/;

    my %z = (
        level => $opt{level} // $level,
        wlog  => $opt{wlog} // $wlog // 0,
        ldm   => $opt{ldm} // ($src =~ /long_distance\s*=\s*1\s*;
                                     |enableLongDistanceMatching,\s*1\)/x
                               ? 1 : 0),
        rate  => $opt{'ldm-rate'} // $rate // 0,
        from  => (grep { defined $opt{$_} } qw(level wlog ldm ldm-rate))
                 ? 'given' : 'read from the source',
    );

    defined $z{level}
        or die "no default compression level found in the source: "
               . "give --level\n";

    # as an rdxbench sizes SPEC
    $z{spec} = $z{level} . ($z{ldm} ? "l$z{wlog}" : $z{wlog} ? "w$z{wlog}"
                                                               : '')
               . ($z{ldm} && $z{rate} ? "r$z{rate}" : '');
    $z{args} = [ '-l', $z{level}, '-w', $z{wlog}, '-m', $z{ldm},
                 '-r', $z{rate} ];
    $z{text} = "level $z{level}"
               . ($z{wlog} ? ", window 2^$z{wlog}" : '')
               . ($z{ldm} ? ', long-distance matching'
                            . ($z{rate} ? " (hash rate 2^$z{rate})" : '')
                          : '');

    return %z;
}


# ---------------------------------------------------------------- corpus

sub corpus {
    my $stamp = "$CORPUS/.seed";
    my $want = "seed=$opt{seed} gen=" . (stat "$Bin/corpus.pl")[9];

    if (!-f "$CORPUS/pb.req" || ($bench->slurp($stamp) // '') ne $want) {
        say "generating the corpus (seed $opt{seed})";
        rmtree($CORPUS);
        system('perl', "$Bin/corpus.pl", '--seed', $opt{seed},
               '--snappy', $TOOL, '--out', $CORPUS) == 0
            or die "corpus.pl failed\n";
        $bench->write_file($stamp, $want);
    }

    # per kind: requests, decoded, wire, per-request gzip -6
    for (split /\n/, $bench->run($TOOL, 'wire', "$CORPUS/mix.req")) {
        my %w = /(\w+)=(\S+)/g;
        $R{wire}{ $w{kind} } = \%w;
    }
}


# ---------------------------------------------------------------- configs

# What both the upstream and the proxies set: keepalive for the load
# generator, bodies up to 64 MiB, 1 MiB of them kept in memory.
my $HTTP_COMMON = <<'EOT';
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_buffer_size 1m;
    client_max_body_size 64m;
EOT

sub upstream_conf {
    my ($port) = @_;

    return <<"EOT";
worker_processes 1;
events { worker_connections 4096; }
http {
$HTTP_COMMON
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            default_type application/json;
            return 202 '{"errors":[]}';
        }
    }
}
EOT
}


# The proxy both A and B run; B adds the module (%m: its directives and
# the location's).
sub proxy_conf {
    my ($port, $up, %m) = @_;
    my $load = $m{module} ? "load_module $MODULE;\n" : '';
    my $http = $m{http} // '';
    my $loc = $m{location} // '';
    my $proxy = $m{forward} // 1
        ? "proxy_pass http://intake;\n"
          . "            proxy_http_version 1.1;\n"
          . "            proxy_set_header Connection \"\";"
        : '';
    my $metrics = $m{module}
        ? 'location = /metrics { reductrai_metrics; }' : '';

    return <<"EOT";
${load}worker_processes 2;
events { worker_connections 8192; }
http {
$HTTP_COMMON    client_body_temp_path %%DIR%%/tmp;

    upstream intake {
        server 127.0.0.1:$up;
        keepalive 64;
        keepalive_requests 1000000;
    }
$http
    server {
        listen 127.0.0.1:$port backlog=4096;

        location / {
$loc
            $proxy
        }

        location = /bench-idle { return 204; }
        $metrics
    }
}
EOT
}


# the module as an operator sets it up: defaults, a stream per intake
sub module_http {
    my ($name, %o) = @_;
    my $dir = "$work/$name";
    my $extra = join '', map { "    reductrai_$_ $o{$_};\n" } sort keys %o;

    $bench->worker_dir("$dir-data/spool");
    $bench->worker_dir("$dir-data/archive");

    return <<"EOT";
    reductrai_storage file://$dir-data/archive;
    reductrai_spool $dir-data/spool max_size=2g;
    reductrai_instance bench;
$extra
    map \$uri \$rdx_stream {
        ~^/api/v2/series     series_v2;
        ~^/api/v1/series     series_v1;
        ~^/api/v1/check_run  check_run;
        ~^/api/v2/logs       logs;
        ~^/v1/               otlp;
        default              other;
    }
EOT
}

my $TAP = "            reductrai on;\n"
        . "            reductrai_stream \$rdx_stream;\n";


# ---------------------------------------------------------------- runs

# one wrk run against an instance, with the CPU its processes used
sub measure {
    my ($inst, $port, %w) = @_;
    my @insts = grep { defined } ($inst, @w{qw(upstream)});
    my $m0 = $inst->{module} ? $bench->metrics($port) : {};
    my $s0 = $bench->cpu_snapshot(@insts);

    my $r = $bench->wrk(url => "http://127.0.0.1:$port", cpus => $CPUS{wrk},
                    seconds => $opt{seconds}, %w);

    my $s1 = $bench->cpu_snapshot(@insts);
    my $m1 = $inst->{module} ? $bench->metrics($port) : {};
    my $d = $bench->cpu_delta($s0, $s1);

    $r->{main} = $d->{ $inst->{name} }{main};
    $r->{threads} = $d->{ $inst->{name} }{threads};
    $r->{upstream_cpu} = $w{upstream}
        ? $d->{ $w{upstream}{name} }{main} : 0;
    $r->{other} = ($d->{_machine} - $r->{main} - $r->{threads}
                   - $r->{upstream_cpu} - $r->{cpu}) / $d->{_wall};
    $r->{other} = 0 if $r->{other} < 0;
    $r->{busy} = ($d->{_machine} / $d->{_wall} - $r->{other}) / $NCPU;
    $r->{wall} = $d->{_wall};

    for my $k (qw(bytes_archived_total requests_total archive_dropped_total
                  requests_errors_total)) {
        $r->{$k} = ($m1->{"reductrai_$k"} // 0) - ($m0->{"reductrai_$k"} // 0);
    }

    push @{ $R{other} }, $r->{other};

    return $r;
}

sub median {
    my @s = sort { $a <=> $b } @_;
    return undef unless @s;
    return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2;
}


# ---------------------------------------------------------------- proxy

sub phase_proxy {
    my $up_port = RdxBench::free_port();
    my $u = $bench->nginx(name => 'upstream', conf => upstream_conf($up_port),
                      cpus => $CPUS{upstream});
    my %side = (A => proxy_side('plain', $up_port),
                B => proxy_side('module', $up_port, 'write'));

    # for the latency runs: the module without waiting for the commit (C),
    # to tell the commit's own latency from the CPU the module takes, and
    # with group fsync (F)
    if (want('latency')) {
        $side{C} = proxy_side('module-async', $up_port, 'async');
        $side{F} = proxy_side('module-fsync', $up_port, 'fsync');
    }

    for my $size (qw(b4k b64k)) {
        my %w = (script => "$Bin/wrk/requests.lua",
                 args => [ "$CORPUS/$size.req" ],
                 threads => 1, connections => 32, upstream => $u);

        zstd_oneshot($size);
        saturation($size, \%side, %w);
        latency($size, \%side, %w) if want('latency');
    }

    # the highest RSS of every worker under this load, then what a
    # sustained load stored: requests to storage per raw byte
    for my $x (sort keys %side) {
        my $inst = $side{$x}[0];
        $R{rss}{$x} = [ map { RdxBench::rss_peak_kib($_) * 1024 }
                        $bench->workers($inst) ];
    }

    my $m = $side{B}[0];
    my $metrics = $bench->metrics($side{B}[1]);
    $bench->stop($_) for (map { $_->[0] } values %side), $u;

    storage_requests('proxy', $m, $metrics);
    check_logs((map { $_->[0] } @side{ sort keys %side }), $u);
}


# [instance, port] of nginx forwarding to the upstream: plain without
# durability, else the module (durability as given, otherwise its
# defaults, segments sealed by age after $SEGMENT_AGE)
sub proxy_side {
    my ($name, $up, $durability) = @_;
    my $port = RdxBench::free_port();
    my %m = !$durability ? () : (
        module => 1, location => $TAP,
        http => module_http($name, segment_age => $SEGMENT_AGE,
                            $durability eq 'write'
                            ? () : (durability => $durability)));

    my $inst = $bench->nginx(name => $name, module => $m{module},
                             cpus => $CPUS{nginx},
                             conf => proxy_conf($port, $up, %m));

    return [ $inst, $port ];
}


# zstd's own cost for each request's NDJSON line alone, one core, with the
# module's settings and with its level alone (for comparison)
sub zstd_oneshot {
    my ($size) = @_;
    my $t = $opt{quick} ? 0.5 : 1;

    for my $v ([ module => @{ $Z{args} } ],
               [ level => '-l', $Z{level}, '-w', 0, '-m', 0 ]) {
        my ($what, @args) = @$v;
        my $out = $bench->run($TOOL, 'oneshot', '-t', $t, @args,
                              "$CORPUS/$size.req");
        my %o = $out =~ /(\w+)=(\S+)/g;
        $R{oneshot}{$size}{$what} = \%o;
        say sprintf "zstd one-shot %-4s (%s): %.1f us per request, %d -> "
            . "%d bytes", $size, $what eq 'module' ? $Z{text}
                                 : "level $Z{level} alone",
            $o{us}, $o{ndjson}, $o{stored};
    }
}


# Saturation, A and B in turns.  B's CPU is counted from the end of its
# warm-up's leftovers to the end of this load's: every second its workers
# (event loops and threads) spent meanwhile, also while A ran and after
# the load stopped, until the seal and upload work left behind was done.
sub saturation {
    my ($size, $side, %w) = @_;
    my ($m, $port) = @{ $side->{B} };

    say "proxy $size: warm-up";
    measure(@{ $side->{$_} }, %w, seconds => 2) for qw(A B);
    drain($m, $port, "$size warm-up");

    my $m0 = $bench->metrics($port);
    my $s0 = $bench->cpu_snapshot($m);

    for my $round (1 .. $opt{rounds}) {
        for my $x ($round % 2 ? qw(A B) : qw(B A)) {
            my $r = measure(@{ $side->{$x} }, %w);
            push @{ $R{proxy}{$size}{$x} }, $r;
            say sprintf "proxy %-4s round %d %s: %8.0f req/s  p50 %6d us"
                . "  p99 %6d us  nginx cpu %.2f+%.2f s  other load %.2f"
                . "%s", $size, $round, $x, $r->{rps}, $r->{p50_us},
                $r->{p99_us}, $r->{main}, $r->{threads}, $r->{other},
                $r->{errors} ? "  ERRORS $r->{errors}" : '';
        }
    }

    my $s1 = $bench->cpu_snapshot($m);
    my $waited = drain($m, $port, "$size saturation");
    my $s2 = $bench->cpu_snapshot($m);
    my $m2 = $bench->metrics($port);

    # a check of the drain: an idle instance whose work is done uses next
    # to no CPU in the following second
    sleep 1;
    my $s3 = $bench->cpu_snapshot($m);

    $R{cpu}{$size} = {
        load   => $bench->cpu_delta($s0, $s1)->{ $m->{name} },
        after  => $bench->cpu_delta($s1, $s2)->{ $m->{name} },
        tail   => $bench->cpu_delta($s2, $s3)->{ $m->{name} },
        waited => $waited,
        archived => ($m2->{reductrai_bytes_archived_total} // 0)
                    - ($m0->{reductrai_bytes_archived_total} // 0),
    };

    say sprintf "proxy %-4s module CPU: %.2f+%.2f s during the runs, "
        . "%.2f+%.2f s in the %.1f s until the spool was empty, %.2f+%.2f "
        . "s in the second after", $size,
        @{ $R{cpu}{$size}{load} }{qw(main threads)},
        @{ $R{cpu}{$size}{after} }{qw(main threads)}, $waited // -1,
        @{ $R{cpu}{$size}{tail} }{qw(main threads)};
}


# The same fixed rate through every side: half of the lower saturation.
sub latency {
    my ($size, $side, %w) = @_;
    my $sat = min(map { median(map { $_->{rps} }
                               @{ $R{proxy}{$size}{$_} }) } qw(A B));
    my $rate = $sat / 2;
    my $mean_ms = 10;
    my $conns = ceil($rate * ($mean_ms + 0.5) / 1000);
    my @order = grep { $side->{$_} } qw(A B C F);

    $R{latency}{$size}{rate} = $rate;

    for my $round (1 .. max(2, $opt{rounds} - 1)) {
        for my $x ($round % 2 ? @order : reverse @order) {
            my $r = measure(@{ $side->{$x} }, %w,
                            script => "$Bin/wrk/paced.lua",
                            args => [ $w{args}[0], $mean_ms ],
                            threads => 2, connections => $conns);
            push @{ $R{latency}{$size}{$x} }, $r;
            say sprintf "latency %-4s round %d %s: %7.0f req/s (target"
                . " %.0f)  p50 %5d us  p99 %6d us", $size, $round, $x,
                $r->{rps}, $rate, $r->{p50_us}, $r->{p99_us};
        }
    }

    # the next size starts from an empty spool on every side
    drain(@{ $side->{$_} }, "$size latency") for grep { $_ ne 'A' } @order;
}


# Waits until an instance has sealed and shipped everything: /metrics
# says reductrai_spool_segments 0 and its spool directory holds no file
# (open, sealed or temporary), twice in a row.  Segments seal after their
# age ($SEGMENT_AGE unless given), so that is bounded; returns the seconds
# waited, undef when it did not drain within that age + 60 s.
sub drain {
    my ($inst, $port, $what, $segment_age) = @_;
    my $spool = "$work/$inst->{name}-data/spool";
    my ($age) = ($segment_age // $SEGMENT_AGE) =~ /^(\d+)s$/;
    my $t0 = time;
    my $empty = 0;

    while (time - $t0 < $age + 60) {
        my $m = $bench->metrics($port);
        my $n = ($m->{reductrai_spool_segments} // 1)
                + $bench->spool_files($spool);
        $empty = $n ? 0 : $empty + 1;
        return time - $t0 if $empty == 2;
        sleep 0.25;
    }

    say "WARNING: $inst->{name} ($what): the spool did not drain";
    $R{undrained}++;

    return undef;
}


# PUTs (one per object with file://) per raw byte archived
sub storage_requests {
    my ($what, $inst, $metrics) = @_;
    my @objects = object_info(archive_objects("$work/$inst->{name}-data/"
                                              . 'archive'));

    $R{puts}{$what} = {
        objects => scalar @objects,
        lull    => scalar(grep { $_->{lull} } @objects),
        spans   => scalar(grep { $_->{spans} } @objects),
        blind   => scalar(grep { !defined $_->{first} } @objects),
        uploads => $metrics->{reductrai_storage_uploads_total} // 0,
        raw     => $metrics->{reductrai_bytes_archived_total} // 0,
        dropped => $metrics->{reductrai_archive_dropped_total} // 0,
    };
}


# An archive object's key and trailer, and whether it sealed because its
# writer went quiet rather than on reductrai_segment_size: the last of its
# worker and stream, or the next one of them starts an hour later (the
# hour seals one too) or more than a second after its last record (a
# lull: the end of a run, or another side's turn, outlasted the segment
# age).  spans: its records leave the hour of its key.
sub object_info {
    my @o;

    for my $path (@_) {
        my ($stream, $hour, $writer, $seq) = $path =~
            m{/stream=([^/]+)/dt=([^/]+/hour=\d+)/(.+)-(\d+)\.ndjson\.zst$}
            or next;
        my $t = trailer($path) // {};
        my %x = (path => $path, stream => $stream, hour => $hour,
                 writer => "$writer/$stream", seq => $seq,
                 first => ts_ms($t->{first_ts}), last => ts_ms($t->{last_ts}));

        $x{spans} = defined $x{first}
                    && grep { hour_of($_) ne $hour } @x{qw(first last)};
        push @o, \%x;
    }

    my %by;
    push @{ $by{ $_->{writer} } }, $_ for @o;

    for my $list (values %by) {
        my @l = sort { $a->{seq} <=> $b->{seq} } @$list;
        for my $i (0 .. $#l) {
            my ($x, $next) = @l[$i, $i + 1];
            $x->{lull} = !$next || $next->{hour} ne $x->{hour}
                         || (defined $next->{first} && defined $x->{last}
                             && $next->{first} - $x->{last} >= 1000);
        }
    }

    return @o;
}


# the JSON index at an object's end: a skippable frame (magic, size: 8
# bytes) whose last 8 bytes are its length (LE) and "RDX1"; the JSON lies
# between, taken by offset (the size bytes may well hold a "{")
sub trailer {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    my $size = -s $fh;
    my $n = min($size, 4096);

    seek $fh, $size - $n, 0;
    read($fh, my $tail, $n) == $n or return undef;

    my ($len, $magic) = unpack 'V a4', substr($tail, -8);
    return undef unless $magic eq 'RDX1' && $len >= 16 && $len <= $n;

    return eval { JSON::PP::decode_json(substr($tail, -$len + 8, $len - 16)) };
}


sub ts_ms {
    my ($ts) = @_;
    my ($y, $mo, $d, $h, $mi, $s, $ms) = ($ts // '') =~
        /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/
        or return undef;
    return (Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) * 1000
            + substr(($ms // 0) . '00', 0, 3));
}

sub hour_of { strftime('%Y-%m-%d/hour=%H', gmtime($_[0] / 1000)) }

sub archive_objects {
    my ($dir) = @_;
    my @found;
    my @todo = ($dir);

    while (my $d = shift @todo) {
        opendir my $dh, $d or next;
        for my $e (readdir $dh) {
            next if $e =~ /^\./;
            if (-d "$d/$e") { push @todo, "$d/$e" }
            elsif ($e =~ /\.ndjson\.zst$/) { push @found, "$d/$e" }
        }
    }

    return sort @found;
}

sub check_logs {
    for my $inst (@_) {
        my @bad = $bench->log_problems($inst);
        say "WARNING: $inst->{name}/error.log: $_" for @bad[0 .. min(4, $#bad)];
        $R{log_problems} += @bad;
    }
}


# ---------------------------------------------------------------- archive

# the sizes SPEC suffixes of the splitter comparison: one call, the block
# splitter, a flush per 1 MiB, a flush per line (per record)
my @SPLIT = ('', 's', 'f1024', 'f0');
my %SPLIT = ('' => 'one call', s => 'one call, block splitter',
             f1024 => 'flushed per 1 MiB', f0 => 'flushed per record');

# The fleet corpus once through the module (forwarding, durability write),
# then what it stored, per stream, against gzip and zstd over the same
# batches.  Twice: with the module's defaults, and with
# reductrai_compression_level 1 (the level this benchmark recommends).
sub phase_archive {
    my $up_port = RdxBench::free_port();
    my $u = $bench->nginx(name => 'upstream', conf => upstream_conf($up_port),
                          cpus => $CPUS{upstream});

    for my $run ([ 'archive-l3', { compression_level => 3 } ],
                 [ 'archive-l1', { compression_level => 1 } ]) {
        my ($name, $directives) = @$run;
        my $port = RdxBench::free_port();
        my $c = $bench->nginx(name => $name, module => 1,
                              cpus => $CPUS{nginx},
                              conf => proxy_conf($port, $up_port, module => 1,
                                                 http => module_http($name,
                                                     %$directives,
                                                     segment_age
                                                       => $ARCHIVE_AGE),
                                                 location => $TAP));

        say "$name: the fleet corpus through the module";

        # CPU and bytes archived until the spool is empty: a module that
        # seals later archives (and counts) later
        my $m0 = $bench->metrics($port);
        my $s0 = $bench->cpu_snapshot($c);
        my $r = $bench->replay(file => "$CORPUS/mix.req", port => $port,
                               connections => 8);
        $r->{waited} = drain($c, $port, $name, $ARCHIVE_AGE);
        my $d = $bench->cpu_delta($s0, $bench->cpu_snapshot($c));
        my $m1 = $bench->metrics($port);

        say "WARNING: $name: the replay outlasted reductrai_segment_age "
            . "$ARCHIVE_AGE: segments may have sealed by age"
            if $r->{seconds} > ($ARCHIVE_AGE =~ /(\d+)/)[0];

        $r->{main} = $d->{$name}{main};
        $r->{threads} = $d->{$name}{threads};
        $r->{bytes_archived_total} = $m1->{reductrai_bytes_archived_total}
                                     - $m0->{reductrai_bytes_archived_total};
        $R{inmodule}{$name} = $r;

        say sprintf "$name: %d requests in %.1f s (%s), spool empty %.1f s "
            . "later, %.0f MiB archived, CPU: threads %.2f s, event loops "
            . "%.2f s", $r->{requests}, $r->{seconds},
            join(' ', map { "$_: $r->{status}{$_}" }
                      sort keys %{ $r->{status} }), $r->{waited} // -1,
            $r->{bytes_archived_total} / $MIB, $r->{threads}, $r->{main};

        $bench->stop($c);
        storage_requests($name, $c, $m1);
        check_logs($c);

        for my $obj (archive_objects("$work/$name-data/archive")) {
            my ($stream) = $obj =~ m{/stream=([^/]+)/};
            $R{stored}{$name}{$stream} += -s $obj;
        }
    }

    $bench->stop($u);
    check_logs($u);

    # the same batches (each object's NDJSON) compressed by others, two
    # processes at a time
    my @objects = archive_objects("$work/archive-l3-data/archive");
    my @half = ([], []);
    push @{ $half[$_ % 2] }, $objects[$_] for 0 .. $#objects;

    # and at the module's own settings: in one call, with zstd's block
    # splitter, and flushed per 1 MiB batch and per record as today's
    # writer flushes (the per-batch entropy tables that won 6-8 % on large
    # records)
    my @spec = ('3', '19', '9l23', map { "$Z{spec}$_" } @SPLIT);

    say "archive: sizing " . scalar(@objects) . " objects (gzip -6, "
        . "zstd -3, zstd -19, zstd -9 with the long window, $Z{text}: "
        . "one call, block splitter, flushed per 1 MiB and per record)";

    my @kids;
    for my $i (0, 1) {
        next unless @{ $half[$i] };
        open my $fh, '-|', $TOOL, 'sizes', '-z', join(',', @spec),
                    @{ $half[$i] }
            or die "$TOOL: $!";
        push @kids, $fh;
    }

    for my $fh (@kids) {
        while (<$fh>) {
            my %o = /(\w+)=(\S+)/g or next;
            my ($stream) = $o{file} =~ m{/stream=([^/]+)/};
            $R{size}{$stream}{$_} += $o{$_}
                for grep { $_ ne 'file' } keys %o;
            $R{size}{$stream}{objects}++;
        }
        close $fh or die "rdxbench sizes failed\n";
    }
}


# ---------------------------------------------------------------- sparse

# A stream whose requests arrive one at a time: check_run payloads of the
# fleet corpus, each sent after the previous one was answered and a pause,
# through the module with its defaults.  Its objects against zstd's own
# one-shot compression of the same NDJSON at the module's settings: a
# flush per record (a block header and fresh entropy tables each) is what
# such a stream pays today.
sub phase_sparse {
    my $up_port = RdxBench::free_port();
    my $port = RdxBench::free_port();
    my $u = $bench->nginx(name => 'upstream', conf => upstream_conf($up_port),
                          cpus => $CPUS{upstream});
    my $c = $bench->nginx(name => 'sparse', module => 1, cpus => $CPUS{nginx},
                          conf => proxy_conf($port, $up_port, module => 1,
                                             http => module_http('sparse'),
                                             location => $TAP));

    say "sparse: $opt{sparse} check_run requests one at a time, "
        . "$opt{'pause-ms'} ms apart";

    my $r = $bench->sparse(file => "$CORPUS/mix.req", port => $port,
                           kind => 'check_run', count => $opt{sparse},
                           pause_ms => $opt{'pause-ms'});
    my $metrics = $bench->metrics($port);

    $bench->stop($_) for $c, $u;
    storage_requests('sparse', $c, $metrics);
    check_logs($c, $u);

    my @objects = archive_objects("$work/sparse-data/archive");
    my %s = (requests => $r->{requests}, seconds => $r->{seconds},
             status => $r->{status});

    for (split /\n/, $bench->run($TOOL, 'sizes', '-z', $Z{spec}, @objects)) {
        my %o = /(\w+)=(\S+)/g or next;
        $s{$_} += $o{$_} for qw(stored ndjson body records gzip6);
        $s{zstd} += $o{"zstd$Z{spec}"};
        $s{objects}++;
    }

    $R{sparse} = \%s;

    say sprintf "sparse: %d requests in %.1f s (%s), %d objects, %d bytes "
        . "stored, zstd one-shot %d, batched gzip -6 %d", $s{requests},
        $s{seconds}, join(' ', map { "$_: $s{status}{$_}" }
                               sort keys %{ $s{status} }),
        $s{objects} // 0, $s{stored} // 0, $s{zstd} // 0, $s{gzip6} // 0;
}


# ---------------------------------------------------------------- encode

# the encode path on one core: level 3 (the module's default), the level
# recommended (1), and both without the long window (the format before
# this benchmark)
my @ENCODE = (
    [ 'level 3', [ '-l', 3 ] ],
    [ 'level 1', [ '-l', 1 ] ],
    [ 'level 3, no long window', [ '-w', 0, '-m', 0 ] ],
    [ 'level 1, no long window', [ '-l', 1, '-w', 0, '-m', 0 ] ],
);

sub phase_encode {
    my $t = $opt{quick} ? 0.5 : 1;

    say "encode: micro-benchmark of the encode path (one core)";

    for my $kind (qw(all series_v2 series_v1 check_run logs otlp)) {
        for (split /\n/, $bench->run($TOOL, 'encode', '-t', $t, '-k', $kind,
                                     "$CORPUS/mix.req")) {
            my %e = /(\w+)=(\S+)/g or next;
            $R{encode}{$kind}{ $e{stage} } = $e{mbps};
            $R{variant}{ $ENCODE[0][0] } = \%e
                if $kind eq 'all' && $e{stage} eq 'path';
        }
    }

    for my $v (@ENCODE[1 .. $#ENCODE]) {
        my ($name, $args) = @$v;
        for (split /\n/, $bench->run($TOOL, 'encode', '-t', $t, @$args,
                                     '-s', 'path', "$CORPUS/mix.req")) {
            my %e = /(\w+)=(\S+)/g or next;
            next unless $e{stage} eq 'path';
            $R{variant}{$name} = \%e;
        }
    }
}


# ---------------------------------------------------------------- protobuf

# issue 12: protobuf bodies (pb.req) decoded and printed as JSON, one core,
# and their archive at the module's zstd settings
sub phase_protobuf {
    say 'protobuf: decode and print per payload type (one core)';

    for (split /\n/, $bench->run($TOOL, 'protobuf', '-t',
                                 $opt{quick} ? 0.5 : 2, @{ $Z{args} },
                                 "$CORPUS/pb.req")) {
        my %p = /(\w+)=(\S+)/g or next;
        $R{protobuf}{ $p{kind} } = \%p;
    }
}


# ---------------------------------------------------------------- memory

# Sustained overload: a slow encoder (zstd -19, on the hot path or in the
# seal jobs, whichever the module has), durability async and local
# answers, so requests arrive faster than they are archived.  Worker RSS
# must level off: bounded by reductrai_buffer_size (records waiting, and
# the seal jobs' working memory).
sub phase_memory {
    my $secs = $opt{quick} ? 8 : 20;

    for my $buffer (qw(16m 64m)) {
        my $port = RdxBench::free_port();
        my $name = "memory-$buffer";
        my $inst = $bench->nginx(
            name => $name, module => 1, cpus => $CPUS{nginx},
            conf => proxy_conf($port, 1, module => 1, forward => 0,
                               http => module_http($name,
                                                   buffer_size => $buffer,
                                                   compression_level => 19,
                                                   durability => 'async'),
                               location => "            reductrai on;\n"
                                           . "            reductrai_stream "
                                           . "overload;\n"
                                           . "            reductrai_forward "
                                           . "off;\n"));

        my @workers = $bench->workers($inst);
        sleep 0.5;
        my %base = map { $_ => RdxBench::rss_kib($_) } @workers;
        my $m0 = $bench->metrics($port);

        say "memory: buffer $buffer, zstd -19 on the hot path, ${secs} s of "
            . "64 KiB bodies";

        my $pid = fork // die "fork: $!";

        if ($pid == 0) {
            open STDOUT, '>', "$work/$name.wrk" or die;
            exec('taskset', '-c', $CPUS{wrk} // '0-1', 'wrk', '-t1', '-c64',
                 "-d${secs}s", '-s', "$Bin/wrk/requests.lua",
                 "http://127.0.0.1:$port", '--', "$CORPUS/b64k.req");
            die "wrk: $!";
        }

        my %rss;
        my $t0 = time;

        while (waitpid($pid, POSIX::WNOHANG()) == 0) {
            push @{ $rss{$_} }, [ time - $t0, RdxBench::rss_kib($_) ]
                for @workers;
            sleep 0.25;
        }

        my $m1 = $bench->metrics($port);
        $bench->stop($inst, fast => 1);
        check_logs($inst);

        my $level19 = $bench->run($TOOL, 'zmem', 19);
        $level19 =~ s/\s+//g;

        $R{memory}{$buffer} = {
            base     => \%base,
            rss      => \%rss,
            ctx      => $level19,
            accepted => ($m1->{reductrai_requests_total} // 0)
                        - ($m0->{reductrai_requests_total} // 0),
            rejected => ($m1->{reductrai_requests_errors_total} // 0)
                        - ($m0->{reductrai_requests_errors_total} // 0),
            received => ($m1->{reductrai_bytes_received_total} // 0)
                        - ($m0->{reductrai_bytes_received_total} // 0),
            buffer   => $buffer =~ /^(\d+)m$/ ? $1 * $MIB : 0,
        };
    }
}


# 100 000 sealed segments waiting through an outage: event-loop stalls
# and /health latency (issue 13, item 4), measured by bench/scan.pl
sub phase_scan {
    say 'scan: 100000 sealed segments, storage down, then back';
    $R{scan} = $bench->run("$Bin/scan.pl", '--module', $MODULE,
                           '--work', "$work/scan",
                           '--seconds', $opt{quick} ? 5 : 10);
}


# ---------------------------------------------------------------- report

sub f0 { defined $_[0] ? sprintf('%.0f', $_[0]) : '–' }
sub f1 { defined $_[0] ? sprintf('%.1f', $_[0]) : '–' }
sub f2 { defined $_[0] ? sprintf('%.2f', $_[0]) : '–' }
sub mib { defined $_[0] ? sprintf('%.1f', $_[0] / $MIB) : '–' }
sub ms { defined $_[0] ? sprintf('%.2f', $_[0] / 1000) : '–' }
sub ok { $_[0] ? '**met**' : '**missed**' }

sub table {
    my ($head, @rows) = @_;
    my $s = '| ' . join(' | ', @$head) . " |\n"
          . '|' . join('|', map { /^(?:stream|body|what|target|run|kind|
                                        setting|buffer|wanted|side)/xi
                                  ? '---' : '---:' } @$head) . "|\n";
    $s .= '| ' . join(' | ', @$_) . " |\n" for @rows;
    return $s;
}

sub report {
    my (@targets, $md, %N);

    my $lscpu = `lscpu`;
    my ($cpu) = $lscpu =~ /^Model name:\s*(.*)$/m;
    my ($hv) = $lscpu =~ /^Hypervisor vendor:\s*(.*)$/m;
    my $rev = `git -C $TOP rev-parse --short HEAD 2>/dev/null` // '';
    chomp $rev;
    my $zstd = (split ' ', `zstd --version` =~ s/.*v(\S+),.*/$1/sr)[0];
    chomp(my $nginx = `nginx -v 2>&1`);
    $nginx =~ s/.*version: //;
    my $other = median(@{ $R{other} // [] });

    $R{zstd_version} = $zstd;

    $md .= "# make bench — results\n\n"
        . sprintf("%s, %d CPUs (%s), %s, %s, zstd %s, commit %s, "
                  . "%s UTC, %.0f s.  Corpus seed %d.  Load on the machine "
                  . "from other processes during the runs: median %.2f "
                  . "CPUs.\n\n",
                  $cpu // '?', $NCPU, $hv ? "$hv guest" : 'bare metal',
                  "Linux " . (`uname -r` =~ s/\s//gr),
                  $nginx, $zstd, $rev || '?',
                  strftime('%Y-%m-%d %H:%M', gmtime), time - $started,
                  $opt{seed}, $other // 0)
        . "The module seals with zstd $Z{text} ($Z{from}); zstd's own "
        . "costs and sizes below are measured with the same.\n\n";

    my @sections;

    # CPU first in the targets, its section after the runs it comes from
    my $per_request = $R{cpu} ? report_cpu(\@targets) : '';

    # proxy overhead
    if ($R{proxy}) {
        my @rows;
        for my $size (qw(b4k b64k)) {
            my $p = $R{proxy}{$size} or next;
            my ($ra, $rb) = map { median(map { $_->{rps} } @{ $p->{$_} }) }
                            qw(A B);
            my ($ca, $cb) = map {
                my $x = $_;
                median(map { ($_->{main} + $_->{threads}) / $_->{requests}
                             * 1e6 } @{ $p->{$x} })
            } qw(A B);

            # the module's: until the work its load left behind was done
            my $c = cpu_per_request($size);
            ($ca, $cb) = ($c->{plain}, $c->{all}) if $c;
            my $ratio = $rb / $ra;
            my $label = $size eq 'b4k' ? '4 KiB' : '64 KiB';
            my @each = map { sprintf '%.2f', $p->{B}[$_]{rps}
                                             / $p->{A}[$_]{rps} }
                       0 .. $#{ $p->{B} };

            # the machine's CPU per request at plain saturation (what other
            # processes took aside), and what a CPU-bound machine predicts
            # once the module adds its own
            my $machine = median(map { ($NCPU - $_->{other}) * $_->{wall}
                                       / $_->{requests} * 1e6 } @{ $p->{A} });
            $N{$size} = { ratio => $ratio, machine => $machine,
                          added => $cb - $ca, plain => $ca,
                          predicted => $machine / ($machine + $cb - $ca),
                          threads => $c ? $c->{threads}
                                     : median(map { $_->{threads}
                                                    / $_->{requests} * 1e6 }
                                              @{ $p->{B} }),
                          kib => $size eq 'b4k' ? 4 : 64 };
            push @rows, [ $label, f0($ra), f0($rb), sprintf('**%.2f**',
                          $ratio), join(' ', @each),
                          sprintf('%.2f', $N{$size}{predicted}),
                          f0(median(map { $_->{p50_us} } @{ $p->{A} })) . ' / '
                          . f0(median(map { $_->{p50_us} } @{ $p->{B} })),
                          f0(median(map { $_->{p99_us} } @{ $p->{A} })) . ' / '
                          . f0(median(map { $_->{p99_us} } @{ $p->{B} })),
                          f1($ca) . ' / ' . f1($cb) ];
            push @targets, [ "throughput, $label bodies",
                             "≥ $TARGET{throughput}× plain nginx (issue "
                             . '6), beside the CPU-bound prediction',
                             sprintf('%.2f× (predicted %.2f×)', $ratio,
                                     $N{$size}{predicted}),
                             ok($ratio >= $TARGET{throughput}) ];
        }

        push @sections, "## Proxy overhead at saturation\n\n"
            . "wrk -t1 -c32, keepalive, identity JSON bodies of the corpus "
            . "(the five kinds in turn), $opt{rounds} rounds of "
            . "$opt{seconds} s each side, interleaved.  Plain nginx = the "
            . "same configuration without `load_module`; both forward to "
            . "the same upstream nginx (`return 202`).  CPU = nginx "
            . "workers' CPU time (event loop + threads) per request, the "
            . "module's counted until the work its load left behind was "
            . "done (below).  "
            . "Predicted = the ratio of a CPU-bound machine: the whole "
            . "machine's CPU time per request at plain saturation, over "
            . "that plus what the module adds.\n\n"
            . table([ 'body', 'plain req/s', 'module req/s',
                      'ratio', 'ratio per round', 'predicted',
                      'p50 µs plain / module', 'p99 µs plain / module',
                      'CPU µs/req plain / module' ], @rows);
    }

    push @sections, $per_request if $per_request;

    if ($R{latency}) {
        my @rows;
        for my $size (qw(b4k b64k)) {
            my $l = $R{latency}{$size} or next;
            my %p = map {
                my $x = $_;
                ($x => { map { my $k = $_;
                               ($k => median(map { $_->{$k} } @{ $l->{$x} }))
                         } qw(rps p50_us p99_us p999_us busy) })
            } grep { $l->{$_} } qw(A B C F);
            my $added = $p{B}{p99_us} - $p{A}{p99_us};
            my $fsync = $p{F} ? $p{F}{p99_us} - $p{A}{p99_us} : undef;
            my $label = $size eq 'b4k' ? '4 KiB' : '64 KiB';
            push @rows, [ $label, f0($l->{rate}),
                          f0($p{A}{rps}) . ' / ' . f0($p{B}{rps}),
                          ms($p{A}{p50_us}) . ' / ' . ms($p{B}{p50_us}),
                          ms($p{A}{p99_us}) . ' / ' . ms($p{B}{p99_us}),
                          sprintf('**%+.2f**', $added / 1000),
                          $p{F} ? ms($p{F}{p50_us}) . ' / '
                                  . ms($p{F}{p99_us}) : '–',
                          defined $fsync
                          ? sprintf('**%+.2f**', $fsync / 1000) : '–',
                          $p{C} ? ms($p{C}{p50_us}) . ' / '
                                  . ms($p{C}{p99_us}) : '–',
                          sprintf('%.0f%% / %.0f%%', 100 * $p{A}{busy},
                                  100 * $p{B}{busy}) ];
            $N{"lat_$size"} = { added => $added, busyA => $p{A}{busy},
                                busyB => $p{B}{busy},
                                async => $p{C} ? $p{C}{p99_us}
                                                 - $p{A}{p99_us} : undef };
            push @targets, [ "added p99 at half saturation, $label, "
                             . 'durability write',
                             '≤ ' . ms($TARGET{added_p99}) . ' ms',
                             sprintf('%+.2f ms', $added / 1000),
                             ok($added <= $TARGET{added_p99}) ];
            push @targets, [ "added p99 at half saturation, $label, "
                             . 'durability fsync', 'reported beside write',
                             sprintf('%+.2f ms', $fsync / 1000), '–' ]
                if defined $fsync;
        }

        push @sections, "## Latency at half of saturation\n\n"
            . "The same fixed rate through every side: half of the lower "
            . "saturation throughput above (wrk -t2, exponential gaps of "
            . "mean 10 ms per connection).  module = durability `write` "
            . "(the default: a request proceeds once its record is in the "
            . "spool file); fsync = the same with `reductrai_durability "
            . "fsync` (once it is on disk, group fdatasync); async = "
            . "`reductrai_durability async` (requests do not wait for "
            . "their record), for what the commit itself adds.  Added = "
            . "p99 minus plain nginx's.\n\n"
            . table([ 'body', 'target req/s', 'req/s plain / module',
                      'p50 ms plain / module', 'p99 ms plain / module',
                      'added p99 ms', 'fsync p50 / p99 ms',
                      'added p99 ms, fsync', 'async p50 / p99 ms',
                      'CPUs busy plain / module' ], @rows);
    }

    # encode throughput
    if ($R{encode} || $R{inmodule} || $R{proxy}) {
        my (@rows, @vrows, @irows, @inm);
        my $e = $R{encode} // {};

        for my $kind (qw(all series_v2 series_v1 check_run logs otlp)) {
            my $s = $e->{$kind} or next;
            # identity bodies are not decoded: that stage is a no-op
            my $dec = $s->{decode} > 1e5 ? 'identity' : f0($s->{decode});
            push @rows, [ $kind, f0($s->{path}), $dec,
                          f0($s->{minify}), f0($s->{zstd}), f0($s->{sha256}) ];
        }

        for my $v (@ENCODE) {
            my $x = $R{variant}{ $v->[0] } or next;
            push @vrows, [ $v->[0], f0($x->{mbps}),
                           sprintf('%.4f', $x->{stored} / $x->{decoded}) ];
        }

        for my $name (qw(archive-l3 archive-l1)) {
            my $r = $R{inmodule}{$name} or next;
            push @inm, [ 'fleet corpus, level ' . substr($name, -1),
                         $r->{bytes_archived_total}, $r->{threads},
                         $r->{main} ];
        }

        # from the start of the saturation runs to the drain after them
        for my $size (qw(b4k b64k)) {
            my $c = $R{cpu}{$size} or next;
            push @inm, [ 'proxy runs, '
                         . ($size eq 'b4k' ? '4 KiB' : '64 KiB')
                         . ' identity bodies', $c->{archived},
                         $c->{load}{threads} + $c->{after}{threads},
                         $c->{load}{main} + $c->{after}{main} ];
        }

        for (@inm) {
            my ($what, $bytes, $thr, $main) = @$_;
            push @irows, [ $what, mib($bytes), f2($thr), f2($main),
                           $thr ? f0($bytes / 1e6 / $thr) : '–',
                           $thr + $main ? f0($bytes / 1e6 / ($thr + $main))
                                        : '–' ];
        }

        push @sections, "## Archive encode throughput\n\n"
            . "MB/s of raw (decoded) body per CPU second, on the fleet "
            . "corpus.  The micro-benchmark (`rdxbench encode`) runs the "
            . "module's own code on one core as a writer does: record head, "
            . "decode, minify, zstd, SHA-256, write() to a spool segment, a "
            . "flush per 1 MiB batch, a seal per 8 MiB; then each stage "
            . "alone (a stage column includes the decode that feeds it).\n\n"
            . table([ 'kind', 'whole path', 'decode', '+ minify',
                      '+ zstd -3 (plain)', '+ SHA-256' ], @rows)
            . "\nThe whole path by zstd setting (stored ÷ raw = archive "
            . "size; \"long window\" = the 8 MiB window with long-distance "
            . "matching that segments now use):\n\n"
            . table([ 'setting', 'MB/s per core', 'stored ÷ raw' ], @vrows)
            . "\nInside the module under load: "
            . "`reductrai_bytes_archived_total` over the CPU time of the "
            . "workers' threads (encode or seal, and upload pools, from "
            . "/proc/PID/task), and over the whole workers (event loops "
            . "included: reading bodies, proxying, appending or handing "
            . "records over), both until the spool was empty after the "
            . "load.\n\n"
            . table([ 'run', 'archived MiB', 'thread CPU s',
                      'event loop CPU s', 'MB/s per thread core',
                      'MB/s per worker core' ], @irows);
    }

    # archive size
    if ($R{size}) {
        my (@rows, @grown);
        my %tot;
        my $l3 = $R{stored}{'archive-l3'} // {};
        my $l1 = $R{stored}{'archive-l1'} // {};

        for my $stream (qw(series_v2 series_v1 check_run logs otlp)) {
            my $s = $R{size}{$stream} or next;
            my $w = $R{wire}{$stream} // {};
            my $g = $s->{gzip6};
            push @rows, [ $stream, $s->{records}, mib($s->{body}),
                          mib($w->{wire}), mib($w->{gzip6}), mib($g),
                          mib($s->{zstd3}), mib($s->{zstd19}),
                          mib($s->{stored}), mib($l1->{$stream}),
                          sprintf('**%.2f**', $s->{stored} / $g),
                          $l1->{$stream}
                          ? sprintf('**%.2f**', $l1->{$stream} / $g) : '–',
                          today($stream, $s->{stored} / $g,
                                $l1->{$stream} && $l1->{$stream} / $g,
                                \@grown),
                          sprintf('%.2f', $s->{zstd19} / $g),
                          sprintf('%.2f', $s->{zstd9l23} / $g) ];
            $tot{$_} += $s->{$_} // 0 for keys %$s;
            $tot{wire} += $w->{wire} // 0;
            $tot{pergz} += $w->{gzip6} // 0;
            $tot{l1} += $l1->{$stream} // 0;

            next unless $stream =~ /^(series|logs)/;

            push @targets, [ "archive size, $stream, level 3" . dflt(3),
                             '≤ 0.8× batched gzip -6',
                             sprintf('%.3f×', $s->{stored} / $g),
                             ok($s->{stored} / $g <= $TARGET{size}) ];
            push @targets, [ "archive size, $stream, level 1" . dflt(1),
                             '≤ 0.8× batched gzip -6',
                             sprintf('%.3f×', $l1->{$stream} / $g),
                             ok($l1->{$stream} / $g <= $TARGET{size}) ]
                if $l1->{$stream};
        }

        push @rows, [ 'all', $tot{records}, mib($tot{body}), mib($tot{wire}),
                      mib($tot{pergz}), mib($tot{gzip6}), mib($tot{zstd3}),
                      mib($tot{zstd19}), mib($tot{stored}), mib($tot{l1}),
                      sprintf('**%.2f**', $tot{stored} / $tot{gzip6}),
                      $tot{l1} ? sprintf('**%.2f**', $tot{l1} / $tot{gzip6})
                               : '–',
                      today('all', $tot{stored} / $tot{gzip6},
                            $tot{l1} && $tot{l1} / $tot{gzip6}, \@grown),
                      sprintf('%.2f', $tot{zstd19} / $tot{gzip6}),
                      sprintf('%.2f', $tot{zstd9l23} / $tot{gzip6}) ]
            if $tot{gzip6};

        push @sections, "## Archive size per stream\n\n"
            . "The fleet corpus sent once through the module; sizes in MiB. "
            . "raw = decoded bodies; wire = as the agents sent them "
            . "(deflate, zstd, gzip, identity); per-request gzip -6 = each "
            . "body alone.  The batch columns compress exactly what each "
            . "stored object holds (its NDJSON: records with their "
            . "metadata), object by object: gzip -6 is what Vector, Fluent "
            . "Bit or Cribl write by default; zstd -3 and -19 are zstd's "
            . "own limits with their default parameters.  module = the "
            . "stored objects with `reductrai_compression_level` 3 and "
            . "1.  today = level 3 / level 1 at commit 083732b, the last "
            . "run before issue 11 (a ratio more than $TARGET{grown} above "
            . "it is marked GREW: which records share an object varies "
            . "from run to run, and moves a small stream's ratio by about "
            . "that much).\n\n"
            . table([ 'stream', 'records', 'raw', 'wire',
                      'per-request gzip -6', 'batched gzip -6',
                      'zstd -3 batch', 'zstd -19 batch', 'module, level 3',
                      'module, level 1', 'level 3 ÷ gzip -6 batch',
                      'level 1 ÷ gzip -6 batch',
                      'today, level 3 / 1', 'zstd -19 ÷ gzip -6 batch',
                      'recompressed ÷ gzip -6 batch' ], @rows)
            . sprintf("\nrecompressed = the idea of recompressing a "
                      . "sealed segment in the upload thread, here with "
                      . "zstd -9 and the same long window: %.0f MB/s of "
                      . "NDJSON per core on top of the hot path (zstd -19: "
                      . "%.1f MB/s).\n", $tot{ndjson} / 1e6
                      / ($tot{zstd9l23_cpu} || 1), $tot{ndjson} / 1e6
                      / ($tot{zstd19_cpu} || 1));

        push @targets, [ 'archive size, every stream, against today '
                         . '(083732b)', 'no ratio to batched gzip -6 above '
                         . "today's", @grown ? 'grew: ' . join('; ', @grown)
                                             : 'none grew',
                         ok(!@grown) ];
        push @sections, report_split();
    }

    push @sections, report_sparse(\@targets) if $R{sparse};
    push @sections, report_rss(\@targets) if $R{rss};
    push @sections, report_protobuf(\@targets) if $R{protobuf};

    # memory
    if ($R{memory}) {
        my (@rows, %verdict);
        for my $buffer (sort { $R{memory}{$a}{buffer} <=> $R{memory}{$b}{buffer} }
                        keys %{ $R{memory} }) {
            my $m = $R{memory}{$buffer};
            for my $pid (sort keys %{ $m->{rss} }) {
                my @s = map { $_->[1] } @{ $m->{rss}{$pid} };
                next unless @s >= 8;
                my $q = int(@s / 4);
                # High-water marks, not means: a sealed segment frees its
                # encoder and the next one allocates it again, a sawtooth
                # of several MiB whose mean depends on where a quarter
                # cuts it; a leak raises the high-water mark.
                my $third = max(@s[2 * $q .. 3 * $q - 1]);
                my $last = max(@s[-$q .. -1]);
                my $peak = max(@s);
                my $bound = $m->{base}{$pid} * 1024 + $m->{buffer}
                            + $SEALS * $m->{ctx} + 16 * $MIB;
                my $flat = ($last - $third) * 1024 < 2 * $MIB;
                my $under = $peak * 1024 <= $bound;
                push @rows, [ $buffer, $pid, mib($m->{base}{$pid} * 1024),
                              mib($third * 1024), mib($last * 1024),
                              mib($peak * 1024), mib($bound),
                              ($flat ? 'flat' : 'GROWING') . ', '
                              . ($under ? 'within' : 'ABOVE') ];
                $verdict{$buffer}{ok} //= 1;
                $verdict{$buffer}{ok} &&= $flat && $under;
                $verdict{$buffer}{peak} = max($verdict{$buffer}{peak} // 0,
                                              $peak * 1024);
                $verdict{$buffer}{bound} = $bound;
                $verdict{$buffer}{growth} = max($verdict{$buffer}{growth}
                                                // -1e9,
                                                ($last - $third) * 1024);
            }

            if (my $v = $verdict{$buffer}) {
                push @targets, [ "worker RSS under overload, "
                                 . "reductrai_buffer_size $buffer",
                                 'flat, bounded by the configuration',
                                 sprintf('peak %.0f MiB ≤ %.0f, last quarter '
                                         . 'high-water %+.1f MiB', $v->{peak} / $MIB,
                                         $v->{bound} / $MIB,
                                         $v->{growth} / $MIB),
                                 ok($v->{ok}) ];
            }
            push @rows, [ $buffer, 'requests', sprintf('%d accepted',
                          $m->{accepted}), sprintf('%d refused (503)',
                          $m->{rejected}), '', '', '', '' ];
        }

        push @sections, "## Memory under sustained overload\n\n"
            . "Requests arrive faster than the module can archive them: "
            . "zstd -19 (`reductrai_compression_level 19`: on the request "
            . "path where records are encoded as they arrive, in the seal "
            . "jobs where they are appended as received), "
            . "`reductrai_durability async`, answered locally "
            . "(`reductrai_forward off`), wrk -c64 with 64 KiB bodies.  "
            . "The buffer or the spool fills, then the spool-full policy "
            . "refuses (503) what does not fit.  RSS per worker in MiB: at "
            . "start, the "
            . "highest in the third and in the last quarter of the run "
            . "(flat: the last is less than 2 MiB above the third; "
            . "highest, not mean, because each sealed segment frees its "
            . "encoder and the next allocates it again), peak.  "
            . "Bound = RSS at start + `reductrai_buffer_size` + a zstd "
            . "-19 context (`ZSTD_estimateCStreamSize`) per seal job "
            . "(`reductrai_seal_concurrency`, $SEALS) + 16 MiB of writer "
            . "scratch (kept up to 4 MiB per buffer).\n\n"
            . table([ 'buffer', 'worker', 'start', '3rd quarter',
                      'last quarter', 'peak', 'bound', 'verdict' ], @rows);
    }

    # storage requests
    if ($R{puts}) {
        my @rows;
        for my $what (qw(proxy archive-l3 archive-l1 sparse)) {
            my $p = $R{puts}{$what} or next;
            next unless $p->{raw};
            my $per8 = $p->{objects} / ($p->{raw} / (8 * $MIB));
            push @rows, [ $what, mib($p->{raw}), $p->{objects},
                          f0($p->{objects} / ($p->{raw} / 1e9)),
                          sprintf('%.2f', $per8), $p->{dropped} ];
        }

        # sustained load: every segment that did not seal in a lull must
        # have sealed on reductrai_segment_size of raw body, so there are
        # at most raw / 8 MiB of them
        if (my $p = $R{puts}{proxy}) {
            my $steady = ($p->{objects} - $p->{lull})
                         / ($p->{raw} / (8 * $MIB));
            push @rows, [ 'proxy, without the segments sealed in a lull',
                          mib($p->{raw}), $p->{objects} - $p->{lull}, '',
                          sprintf('**%.2f**', $steady), '' ];

            # runs too short to fill a segment (--quick) prove nothing
            push @targets, [ 'storage PUTs, sustained load', '≤ 1 per 8 '
                             . 'MiB raw', $p->{objects} > $p->{lull}
                             ? sprintf('%.2f', $steady)
                             : 'no segment filled: runs too short',
                             $p->{objects} > $p->{lull}
                             ? ok($steady <= $TARGET{puts}) : '–' ];
        }

        my ($n, $spans, $blind) = (0, 0, 0);
        for (values %{ $R{puts} }) {
            $n += $_->{objects};
            $spans += $_->{spans};
            $blind += $_->{blind};
        }

        push @targets, [ 'objects spanning an hour', 'none',
                         sprintf('%d of %d objects%s', $spans, $n,
                                 $blind ? " ($blind without a readable "
                                          . 'trailer)' : ''),
                         ok(!$spans && !$blind) ];

        push @sections, "## Storage requests\n\n"
            . "Objects written (one PUT each) for the raw bytes archived "
            . "(`reductrai_bytes_archived_total`, decoded bodies), after a "
            . "graceful stop sealed and shipped everything, with "
            . "`reductrai_segment_size 8m` and `reductrai_segment_age` "
            . "$SEGMENT_AGE (proxy), $ARCHIVE_AGE (archive), 30s (sparse).  "
            . "A segment seals short when its "
            . "writer goes quiet: at the end of a run, while other sides "
            . "have their turn (longer than the segment age), at an hour "
            . "change.  Such a lull shows in the objects' trailers: the "
            . "last object of a worker and stream, or one whose next "
            . "starts in another hour or more than 1 s after its last "
            . "record.  The last row leaves those out of the proxy run, a "
            . "sustained load, whose other segments must each have sealed "
            . "on 8 MiB of raw body.  Every object's first and last record "
            . "(trailer) must lie in the hour of its key.\n\n"
            . table([ 'run', 'raw MiB', 'PUTs', 'PUTs per GB',
                      'PUTs per 8 MiB raw', 'records bypassed' ], @rows);
    }

    $md .= "## Targets\n\n"
        . table([ 'target', 'wanted', 'measured', 'verdict' ], @targets)
        . "\n" . notes(\%N, \@targets)
        . join("\n", @sections)
        . "\n## How to reproduce\n\n"
        . "`make bench` (installs wrk and the rest with tools/deps.sh, "
        . "builds the module and `objs/bench/rdxbench`, generates the "
        . "corpus with seed $opt{seed}, runs bench/bench.pl).  CPU "
        . "placement: wrk and the upstream nginx on CPU "
        . ($CPUS{wrk} // 'any') . ", nginx A and B on "
        . ($CPUS{nginx} // 'any CPU') . ".\n";

    $md .= "\nWARNING: $R{log_problems} [alert]/[crit]/[emerg] lines in "
        . "the error logs (see the run's output).\n"
        if $R{log_problems};

    my $errors = sum(0, map { $_->{errors} }
                        map { map { @{ $_ // [] } } @$_{qw(A B C)} }
                        values %{ $R{proxy} // {} },
                        values %{ $R{latency} // {} });
    $md .= "\nWARNING: $errors requests failed (non-2xx or socket errors) "
        . "in the proxy and latency runs.\n" if $errors;

    $md .= sprintf "\nWARNING: other processes used %.2f CPUs during the "
        . "runs: the proxy and latency figures are noisy.\n", $other
        if ($other // 0) > 0.1;

    return $md;
}


# " (default)" when a level is the module's default
sub dflt { $_[0] == $Z{level} ? ' (default)' : '' }


# today's ratios of a stream beside this run's; a grown one is listed
sub today {
    my ($stream, $r3, $r1, $grown) = @_;
    my $t = $TODAY{$stream} or return '–';
    my @cell;

    for ([ 3, $r3, $t->[0] ], [ 1, $r1, $t->[1] ]) {
        my ($level, $now, $then) = @$_;
        my $grew = defined $now && $now > $then + $TARGET{grown};
        push @$grown, sprintf('%s level %d %.2f > %.2f', $stream, $level,
                              $now, $then) if $grew;
        push @cell, sprintf('%.2f', $then) . ($grew ? ' GREW' : '');
    }

    return join ' / ', @cell;
}


# The module's CPU per request of one body size, from the saturation
# runs: its workers' seconds from the start of its first round until the
# spool was empty after the last, over the requests of its rounds; plain
# nginx's over its own rounds (it leaves nothing behind).
sub cpu_per_request {
    my ($size) = @_;
    my $c = $R{cpu}{$size} or return undef;
    my $p = $R{proxy}{$size};
    my $n = sum(map { $_->{requests} } @{ $p->{B} }) or return undef;
    my $na = sum(map { $_->{requests} } @{ $p->{A} }) or return undef;
    my %x = (
        plain      => sum(map { $_->{main} + $_->{threads} } @{ $p->{A} })
                      / $na * 1e6,
        plain_main => sum(map { $_->{main} } @{ $p->{A} }) / $na * 1e6,
        requests   => $n,
        waited     => $c->{waited},
        tail       => ($c->{tail}{main} + $c->{tail}{threads}) * 1e3,
    );

    for my $k (qw(main threads)) {
        $x{$k} = ($c->{load}{$k} + $c->{after}{$k}) / $n * 1e6;
        $x{"after_$k"} = $c->{after}{$k} / $n * 1e6;
    }

    $x{all} = $x{main} + $x{threads};
    $x{added} = $x{all} - $x{plain};
    $x{added_main} = $x{main} - $x{plain_main};
    $x{zstd} = $R{oneshot}{$size}{module}{us};
    $x{zstd_level} = $R{oneshot}{$size}{level}{us};
    $x{budget} = defined $x{zstd}
                 ? $TARGET{cpu_fixed} + $TARGET{cpu_zstd} * $x{zstd} : undef;

    return \%x;
}


sub report_cpu {
    my ($targets) = @_;
    my @rows;

    for my $size (qw(b4k b64k)) {
        my $c = cpu_per_request($size) or next;
        my $label = $size eq 'b4k' ? '4 KiB' : '64 KiB';
        my $drained = defined $c->{waited};
        my $note = $drained ? '' : ' (spool not drained)';

        push @rows, [ $label, $c->{requests}, f1($c->{plain}),
                      f1($c->{main}) . ' / ' . f1($c->{threads}),
                      f1($c->{after_main}) . ' / ' . f1($c->{after_threads})
                      . ($drained ? sprintf(' (%.1f s)', $c->{waited})
                                  : ' (not drained)'),
                      f0($c->{tail}),
                      sprintf('**%.1f**', $c->{added}),
                      sprintf('**%.1f**', $c->{added_main}),
                      f1($c->{zstd}), f1($c->{zstd_level}),
                      f1($c->{budget}) ];
        push @$targets, [ "CPU added per request, $label, until the work "
                          . 'left behind is done',
                          sprintf('≤ %g µs + %g × zstd one-shot (%.1f µs) '
                                  . '= %.1f µs', $TARGET{cpu_fixed},
                                  $TARGET{cpu_zstd}, $c->{zstd} // 0,
                                  $c->{budget} // 0),
                          sprintf('%.1f µs', $c->{added}) . $note,
                          ok($drained && defined $c->{budget}
                             && $c->{added} <= $c->{budget}) ];
        push @$targets, [ "event-loop CPU added per request, $label",
                          "≤ $TARGET{event_loop} µs",
                          sprintf('%.1f µs', $c->{added_main}) . $note,
                          ok($drained
                             && $c->{added_main} <= $TARGET{event_loop}) ];
    }

    return "## CPU per request, until the work left behind is done\n\n"
        . "From the saturation runs above.  The module's workers' CPU time "
        . "(/proc/PID/task/*/stat: event loops and thread pools) from the "
        . "start of its first round until, after its last, /metrics said "
        . "`reductrai_spool_segments 0` and its spool directory held no "
        . "file, twice in a row 0.25 s apart (segments sealed by age after "
        . "`reductrai_segment_age $SEGMENT_AGE`; the warm-up's leftovers "
        . "were drained the same way before), over its requests; so "
        . "sealing, compressing and uploading what the load left behind "
        . "is counted, also while plain nginx had its turn; the CPU "
        . "ms its workers used in the second after the drain (not "
        . "counted) shows that nothing was left.  Plain "
        . "nginx's over its own rounds.  Event loop = the workers' main "
        . "threads (/proc/PID/task/PID/stat).  zstd one-shot = `rdxbench "
        . "oneshot`: each request's NDJSON line as the module writes it, "
        . "compressed alone in one ZSTD_compress2() call, one core, with "
        . "the module's settings ($Z{text}) and, for comparison, with "
        . "level $Z{level} alone.  Budget = $TARGET{cpu_fixed} µs + "
        . "$TARGET{cpu_zstd} × the former.  µs per request.\n\n"
        . table([ 'body', 'module requests', 'plain', 'module: event '
                  . 'loop / threads', 'of which after the load',
                  'ms in the second after', 'added',
                  'added in the event loop', 'zstd one-shot',
                  "zstd one-shot, level $Z{level} alone", 'budget' ], @rows);
}


# zstd at the module's settings over the fleet corpus's objects: one call,
# with the block splitter, flushed per batch and per record
sub report_split {
    my (@rows, %tot);

    for my $stream (qw(series_v2 series_v1 check_run logs otlp), 'all') {
        my $s = $stream eq 'all' ? \%tot : $R{size}{$stream} or next;
        my $one = $s->{"zstd$Z{spec}"} or next;

        if ($stream ne 'all') {
            $tot{$_} += $s->{$_} // 0 for keys %$s;
        }

        push @rows, [ $stream, mib($s->{ndjson}), mib($one),
                      map({ sprintf('%.4f', $s->{"zstd$Z{spec}$_"} / $one) }
                          @SPLIT[1 .. $#SPLIT]),
                      f0($s->{ndjson} / 1e6 / ($s->{"zstd$Z{spec}_cpu"} || 1)),
                      f0($s->{ndjson} / 1e6
                         / ($s->{"zstd$Z{spec}s_cpu"} || 1)) ];
    }

    return '' unless @rows;

    return "## One stream per segment, and zstd's block splitter\n\n"
        . "Each object's NDJSON of the fleet corpus (level 3 run) "
        . "compressed with the module's settings ($Z{text}): in one call "
        . "(a seal job's stream without flushes), the same with "
        . "`ZSTD_c_useBlockSplitter` forced on (zstd $R{zstd_version}; "
        . "an experimental parameter, `ZSTD_STATIC_LINKING_ONLY`, "
        . "accepted by Debian's libzstd; on its own zstd uses it only "
        . "from btopt strategies, levels 16 and up), and flushed per 1 "
        . "MiB and per record as today's writer flushes each batch; "
        . "sizes as a ratio to one call (below 1 = smaller).  MB/s of "
        . "NDJSON per core.\n\n"
        . table([ 'stream', 'NDJSON MiB', 'one call MiB',
                  map({ "$SPLIT{$_} ÷ one call" } @SPLIT[1 .. $#SPLIT]),
                  'MB/s one call', 'MB/s block splitter' ], @rows);
}


sub report_sparse {
    my ($targets) = @_;
    my $s = $R{sparse};
    my $ok = $s->{zstd} && $s->{stored};
    my $r = $ok ? $s->{stored} / $s->{zstd} : undef;

    push @$targets, [ 'archive size, sparse stream (check_run sent one at '
                      . 'a time)', "≤ $TARGET{sparse}× zstd one-shot of the "
                      . 'same NDJSON', $ok ? sprintf('%.3f×', $r) : '–',
                      ok($ok && $r <= $TARGET{sparse}) ];

    return "## A sparse stream\n\n"
        . "$s->{requests} check_run payloads of the fleet corpus (deflate), "
        . "one at a time over one keepalive connection: each sent once "
        . "the previous one was answered and $opt{'pause-ms'} ms had "
        . "passed, through the module with its defaults (durability "
        . "write).  Its objects (trailer included) against the same "
        . "NDJSON compressed by zstd in one call with the module's "
        . "settings ($Z{text}), and by gzip -6, object by object.  today "
        . "= as issue 11 measured today's module (a flush per record).\n\n"
        . table([ 'stream', 'requests', 'seconds', 'objects', 'raw KiB',
                  'NDJSON KiB', 'stored KiB', 'zstd one-shot KiB',
                  'batched gzip -6 KiB', 'stored ÷ zstd one-shot',
                  'stored ÷ gzip -6 batch', 'today ÷ zstd / ÷ gzip -6' ],
                [ 'check_run, sparse', $s->{requests}, f1($s->{seconds}),
                  $s->{objects} // 0, map({ f1(($_ // 0) / 1024) }
                                          @$s{qw(body ndjson stored zstd
                                                 gzip6)}),
                  $ok ? sprintf('**%.3f**', $r) : '–',
                  $s->{gzip6} ? sprintf('%.2f', $s->{stored} / $s->{gzip6})
                              : '–',
                  "~$TODAY{sparse_zstd} / $TODAY{sparse_gzip}" ]);
}


# decode-and-print speed and archive size of each protobuf payload type
sub report_protobuf {
    my ($targets) = @_;
    my @rows;

    for my $kind (qw(pb_series pb_prom_write pb_otlp_metrics pb_otlp_logs
                     pb_otlp_traces)) {
        my $p = $R{protobuf}{$kind} or next;
        my $ratio = $p->{stored} / $p->{gzip6};
        push @rows, [ $p->{format}, $p->{requests}, mib($p->{pb}),
                      mib($p->{json}), sprintf('**%.0f**', $p->{median}),
                      f0($p->{mbps}), f0($p->{best}),
                      mib($p->{gzip6}), mib($p->{stored}),
                      sprintf('**%.2f**', $ratio) ];
        push @$targets, [ "protobuf decode and print, $p->{format}",
                          "≥ $TARGET{pb_mbps} MB/s of protobuf per core",
                          sprintf('%.0f MB/s (median pass)', $p->{median}),
                          ok($p->{median} >= $TARGET{pb_mbps}) ];
        push @$targets, [ "protobuf archive size, $p->{format}",
                          "≤ $TARGET{pb_size}× gzip -6 of the protobuf",
                          sprintf('%.3f×', $ratio),
                          ok($ratio <= $TARGET{pb_size}) ];
    }

    return "## Protobuf bodies (issue 12)\n\n"
        . "The fleet's protobuf senders (`pb.req`, sizes in MiB): each "
        . "body decoded from its Content-Encoding first, then, on one "
        . "core, checked, unpacked and printed as the archive's JSON "
        . "(`rdxbench protobuf`, the module's code); MB/s of protobuf "
        . "bytes per CPU second, of the median pass over all the type's "
        . "bodies (the steadier figure on a shared machine), beside all "
        . "passes together and the fastest.  The archive: the same "
        . "records written to spool segments at the module's settings, "
        . "against gzip -6 of all the type's protobuf bytes in one "
        . "member.\n\n"
        . table([ 'body', 'requests', 'protobuf', 'JSON',
                  'MB/s per core, median pass', 'all passes', 'fastest',
                  'gzip -6 of protobuf', 'module', 'module ÷ gzip -6' ],
                @rows);
}


# workers' peak RSS (VmHWM) over the whole proxy phase
sub report_rss {
    my ($targets) = @_;
    my %name = (A => 'plain nginx', B => 'module (defaults, write)',
                C => 'module, async', F => 'module, fsync');
    my @rows;

    for my $x (sort keys %{ $R{rss} }) {
        push @rows, [ $name{$x}, join(' / ', map { mib($_) } @{ $R{rss}{$x} }) ];
    }

    my $peak = max(@{ $R{rss}{B} // [] }) // 0;

    push @$targets, [ 'worker peak RSS under the proxy load, defaults',
                      "≤ $TARGET{rss} MiB", sprintf('%.1f MiB',
                                                    $peak / $MIB),
                      ok($peak && $peak <= $TARGET{rss} * $MIB) ];

    return "## Memory under the proxy load\n\n"
        . "Each worker's peak RSS over the whole proxy phase (saturation "
        . "and latency runs, both body sizes), in MiB: VmHWM from "
        . "/proc/PID/status, the kernel's high-water mark, which no "
        . "sampling interval can miss.  The module runs with its "
        . "defaults (`reductrai_buffer_size 64m`, `reductrai_segment_size "
        . "8m`) but `reductrai_segment_age $SEGMENT_AGE`.\n\n"
        . table([ 'side', 'peak RSS per worker' ], @rows);
}


# What the misses mean, from this run's numbers.
sub notes {
    my ($n, $targets) = @_;
    my %missed = map { ($_->[0] =~ /^(\w+)/)[0] => 1 }
                 grep { $_->[3] =~ /missed/ } @$targets;
    my $s = '';

    if ($missed{throughput} && $n->{b4k} && $n->{b64k}) {
        my ($k, $l) = @$n{qw(b4k b64k)};
        my $budget = $k->{machine} * (1 / $TARGET{throughput} - 1);

        $s .= sprintf "**Throughput.**  At saturation this machine is "
            . "CPU-bound: wrk, the upstream and nginx share its %d CPUs, so "
            . "every microsecond the module adds to a request is taken from "
            . "the requests plain nginx would have served.  Plain nginx "
            . "gets a request through for %.0f µs of the machine's CPU "
            . "(%.0f µs at 64 KiB); the module adds %.0f µs (%.0f µs) of "
            . "worker CPU, counted until the work it left behind was done, "
            . "%.0f µs (%.0f µs) of it in its threads (encoding or "
            . "sealing, compressing, uploading) and the rest in the event "
            . "loop.  A CPU-bound machine then predicts %.2f× (%.2f×), "
            . "against the %.2f× (%.2f×) measured.  0.95× would need the "
            . "module to add at most %.1f µs to a 4 KiB request, %.1f GB/s "
            . "per core for everything it does to a body; zstd's own "
            . "one-shot cost of that request's line is %s µs.  The target "
            . "can hold only where nginx has CPU to spare for its thread "
            . "pools, which a 2-CPU machine shared with the load generator "
            . "has not; what the module can do is spend less CPU per byte "
            . "and per request.\n\n",
            $NCPU, $k->{machine}, $l->{machine}, $k->{added}, $l->{added},
            $k->{threads}, $l->{threads}, $k->{predicted}, $l->{predicted},
            $k->{ratio}, $l->{ratio}, $budget, 4096 / $budget / 1e3,
            f1($R{oneshot}{b4k}{module}{us});
    }

    if ($missed{added}) {
        my @l = grep { defined } @$n{qw(lat_b4k lat_b64k)};
        my @async = grep { defined } map { $_->{async} } @l;

        $s .= sprintf "**Latency.**  Half of the module's saturation rate "
            . "still keeps the machine's CPUs %s busy (plain nginx at the "
            . "same rate: %s), and the module's threads compete with the "
            . "event loops, wrk and the upstream for 2 CPUs.  %s"
            . "Less CPU per byte shortens both.\n\n",
            join(' / ', map { sprintf '%.0f%%', 100 * $_->{busyB} } @l),
            join(' / ', map { sprintf '%.0f%%', 100 * $_->{busyA} } @l),
            @async == @l
            ? sprintf('With durability async, where requests do not wait '
                      . 'for their record, the module adds %s ms to p99, '
                      . 'against %s ms with write: the difference is the '
                      . 'commit itself (what a request waits for before it '
                      . 'may proceed), the rest is waiting for a CPU.  ',
                      join(' / ', map { sprintf '%+.2f', $_ / 1000 } @async),
                      join(' / ', map { sprintf '%+.2f', $_->{added} / 1000 }
                                  @l))
            : '';
    }

    # encode and size, by level
    my %by;
    for (grep { $_->[0] =~ /^(encode|archive size)/ } @$targets) {
        my ($level) = $_->[0] =~ /level (\d+)/ or next;
        push @{ $by{$level} }, $_->[0] if $_->[3] =~ /missed/;
    }

    if ($by{3} || $by{1}) {
        $s .= "**Encode and size.**  Segments use an 8 MiB zstd window "
            . "with long-distance matching: what agents repeat from one "
            . "payload to the next (series names, tag sets, log "
            . "attributes) lies megabytes apart in a segment.  With it, "
            . "level 1 compresses this telemetry as well as level 3 for "
            . "less CPU.  ";
        $s .= 'Missed at level 3: ' . join('; ', @{ $by{3} }) . '.  '
            if $by{3};
        $s .= $by{1}
            ? 'Missed at level 1 too: ' . join('; ', @{ $by{1} }) . ".\n\n"
            : "Level 1 meets every size target: it should be "
              . "the default `reductrai_compression_level`.\n\n";
    }

    if ($missed{storage}) {
        $s .= "**Storage requests.**  Some segments of the proxy run "
            . "sealed before they held `reductrai_segment_size` of raw "
            . "body, other than the last of a worker and stream: by "
            . "`reductrai_segment_age` in a lull between the runs, or "
            . "because the writer no longer seals on body bytes.\n\n";
    }

    return $s ? "## What the misses mean\n\n$s" : '';
}


# ---------------------------------------------------------------- main

my $ok = eval {
    corpus();
    phase_encode() if want('encode');
    # one core's speed: before the phases that leave the disk writing back
    # (scan: 100 000 files), which took up to half of it in runs here
    phase_protobuf() if want('protobuf');
    phase_proxy() if want('proxy') || want('latency');
    phase_archive() if want('archive');
    phase_sparse() if want('sparse');
    phase_memory() if want('memory');
    phase_scan() if want('scan');
    1;
};

my $err = $@;
$bench->stop_all;

die "bench failed: $err" unless $ok;

my $md = report();
$md .= "\n## Spool scan under a long storage outage (bench/scan.pl)\n\n"
       . $R{scan} if $R{scan};
make_path("$TOP/bench/results");
$bench->write_file($opt{out}, $md);
$bench->write_file("$TOP/bench/results/latest.log", join("\n", @log) . "\n");

print "\n$md";
print "\nwritten to $opt{out} in ", sprintf('%.0f', time - $started), " s\n";

rmtree($work) unless $opt{keep};
