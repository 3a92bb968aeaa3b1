#!/usr/bin/perl

# make bench: where ngx_http_reductrai_module stands against plain nginx,
# against the archives its peers write (batched gzip -6) and against zstd's
# own limits, on a realistic Datadog corpus.  Prints a table and writes it
# to bench/results/latest.md.
#
#   bench/bench.pl [--quick] [--only proxy,latency,archive,encode,memory]
#                  [--seconds 8] [--rounds 3] [--seed 42] [--keep]
#
# Every comparison runs side by side in one run, as a ratio: plain nginx
# (A) and nginx with the module (B; C = the same with durability async, for
# latency) are all running, forward to the same upstream, and are measured
# in turns A B, B A, A B ... so that drift on a shared machine hits both.
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
use List::Util qw(max min sum);
use POSIX qw(ceil strftime);
use Time::HiRes qw(time sleep);

use RdxBench;

my $TOP = abs_path("$Bin/..");
my %opt = (seconds => 8, rounds => 3, seed => 42, only => '',
           out => "$TOP/bench/results/latest.md");

GetOptions(\%opt, 'quick', 'only=s', 'seconds=i', 'rounds=i', 'seed=i',
           'keep', 'out=s')
    or die "usage: $0 [--quick] [--only LIST] [--seconds N] [--rounds N] "
           . "[--seed N] [--keep]\n";

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
my $NCPU = `nproc` + 0 || 2;

# targets of issue 6
my %TARGET = (
    throughput => 0.95,     # module req/s / plain req/s
    added_p99  => 1000,     # µs, at half of saturation
    encode     => 150,      # MB/s of raw body per core
    size       => 0.8,      # module archive / batched gzip -6
    puts       => 1,        # storage PUTs per 8 MiB raw
);

-x $TOOL && -f $MODULE or die "build first: make module $TOOL\n";

my $work = "/tmp/rdx-bench-$$";
my $bench = RdxBench->new(work => $work);

# a private copy: a rebuild of objs/ during the run must not change the
# code under running workers
system('cp', $MODULE, "$work/module.so") == 0 or die "cp $MODULE failed\n";
$MODULE = "$work/module.so";
my $started = time;
my (%R, @log);

$SIG{INT} = $SIG{TERM} = sub { die "interrupted\n" };

sub say { my $s = join '', @_; print "$s\n"; push @log, $s }


# ---------------------------------------------------------------- corpus

sub corpus {
    my $stamp = "$CORPUS/.seed";
    my $want = "seed=$opt{seed} gen=" . (stat "$Bin/corpus.pl")[9];

    if (!-f "$CORPUS/mix.req" || ($bench->slurp($stamp) // '') ne $want) {
        say "generating the corpus (seed $opt{seed})";
        rmtree($CORPUS);
        system('perl', "$Bin/corpus.pl", '--seed', $opt{seed},
               '--out', $CORPUS) == 0 or die "corpus.pl failed\n";
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
    my ($pa, $pb) = (RdxBench::free_port(), RdxBench::free_port());

    my $u = $bench->nginx(name => 'upstream', conf => upstream_conf($up_port),
                      cpus => $CPUS{upstream});
    my $a = $bench->nginx(name => 'plain', conf => proxy_conf($pa, $up_port),
                      cpus => $CPUS{nginx});
    my $m = $bench->nginx(name => 'module', module => 1, cpus => $CPUS{nginx},
                      conf => proxy_conf($pb, $up_port, module => 1,
                                         http => module_http('module'),
                                         location => $TAP));
    my %side = (A => [ $a, $pa ], B => [ $m, $pb ]);

    # for the latency runs: the module without waiting for the commit, to
    # tell the commit's own latency from the CPU the module takes
    my $pc = RdxBench::free_port();
    my $c = $bench->nginx(name => 'module-async', module => 1,
                          cpus => $CPUS{nginx},
                          conf => proxy_conf($pc, $up_port, module => 1,
                                             http => module_http('module-async',
                                                     durability => 'async'),
                                             location => $TAP));
    $side{C} = [ $c, $pc ];

    for my $size (qw(b4k b64k)) {
        my $file = "$CORPUS/$size.req";
        my %w = (script => "$Bin/wrk/requests.lua", args => [ $file ],
                 threads => 1, connections => 32, upstream => $u);

        say "proxy $size: warm-up";
        measure(@{ $side{$_} }, %w, seconds => 2) for qw(A B);

        for my $round (1 .. $opt{rounds}) {
            for my $x ($round % 2 ? qw(A B) : qw(B A)) {
                my $r = measure(@{ $side{$x} }, %w);
                push @{ $R{proxy}{$size}{$x} }, $r;
                say sprintf "proxy %-4s round %d %s: %8.0f req/s  p50 %6d us"
                    . "  p99 %6d us  nginx cpu %.2f+%.2f s  other load %.2f"
                    . "%s", $size, $round, $x, $r->{rps}, $r->{p50_us},
                    $r->{p99_us}, $r->{main}, $r->{threads}, $r->{other},
                    $r->{errors} ? "  ERRORS $r->{errors}" : '';
            }
        }

        next unless want('latency');

        # the module's spool drained: no uploads left from the runs above
        settle($m, $pb);

        # the same fixed rate through both: half of the lower saturation
        my $sat = min(map { median(map { $_->{rps} }
                                   @{ $R{proxy}{$size}{$_} }) } qw(A B));
        my $rate = $sat / 2;
        my $mean_ms = 10;
        my $conns = ceil($rate * ($mean_ms + 0.5) / 1000);
        $R{latency}{$size}{rate} = $rate;

        for my $round (1 .. max(2, $opt{rounds} - 1)) {
            for my $x ($round % 2 ? qw(A B C) : qw(C B A)) {
                my $r = measure(@{ $side{$x} }, %w,
                                script => "$Bin/wrk/paced.lua",
                                args => [ $file, $mean_ms ],
                                threads => 2, connections => $conns);
                push @{ $R{latency}{$size}{$x} }, $r;
                say sprintf "latency %-4s round %d %s: %7.0f req/s (target"
                    . " %.0f)  p50 %5d us  p99 %6d us", $size, $round, $x,
                    $r->{rps}, $rate, $r->{p50_us}, $r->{p99_us};
            }
        }
    }

    # what a sustained load stored: requests to storage per raw byte
    my $metrics = $bench->metrics($pb);
    $bench->stop($_) for $a, $m, $c, $u;

    storage_requests('proxy', $m, $metrics);
    check_logs($a, $m, $c, $u);
}


# Waits (up to 30 s) until an instance has shipped what it sealed: at most
# one open segment per worker and stream left in its spool.
sub settle {
    my ($inst, $port) = @_;
    my $end = time + 30;

    while (time < $end) {
        my $m = $bench->metrics($port);
        last if ($m->{reductrai_spool_segments} // 0) <= 2 * 5;
        sleep 0.5;
    }
}


# PUTs (one per object with file://) per raw byte archived
sub storage_requests {
    my ($what, $inst, $metrics) = @_;
    my @objects = archive_objects("$work/$inst->{name}-data/archive");

    # the segments a run may end with below reductrai_segment_size: the
    # last of each worker, stream and hour (the hour seals one too)
    my %last;
    for (@objects) {
        $last{"$1/$2"} = 1
            if m{/(stream=[^/]+/dt=[^/]+/hour=[^/]+)/(.+)-\d+\.ndjson\.zst$};
    }

    $R{puts}{$what} = {
        objects => scalar @objects,
        last    => scalar keys %last,
        uploads => $metrics->{reductrai_storage_uploads_total} // 0,
        raw     => $metrics->{reductrai_bytes_archived_total} // 0,
        dropped => $metrics->{reductrai_archive_dropped_total} // 0,
    };
}

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
                                                             %$directives),
                                                 location => $TAP));

        say "$name: the fleet corpus through the module";

        my $m0 = $bench->metrics($port);
        my $s0 = $bench->cpu_snapshot($c);
        my $r = $bench->replay(file => "$CORPUS/mix.req", port => $port,
                               connections => 8);
        my $d = $bench->cpu_delta($s0, $bench->cpu_snapshot($c));
        my $m1 = $bench->metrics($port);

        $r->{main} = $d->{$name}{main};
        $r->{threads} = $d->{$name}{threads};
        $r->{bytes_archived_total} = $m1->{reductrai_bytes_archived_total}
                                     - $m0->{reductrai_bytes_archived_total};
        $R{inmodule}{$name} = $r;

        say sprintf "$name: %d requests in %.1f s (%s), %.0f MiB archived, "
            . "CPU: threads %.2f s, event loops %.2f s", $r->{requests},
            $r->{seconds}, join(' ', map { "$_: $r->{status}{$_}" }
                                     sort keys %{ $r->{status} }),
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

    say "archive: sizing " . scalar(@objects) . " objects (gzip -6, "
        . "zstd -3, zstd -19, zstd -9 with the long window)";

    my @kids;
    for my $i (0, 1) {
        next unless @{ $half[$i] };
        open my $fh, '-|', $TOOL, 'sizes', '-z', '3,19,9l23',
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


# ---------------------------------------------------------------- memory

# Sustained overload: a slow encoder (zstd -19 on the hot path), durability
# async and local answers, so requests arrive faster than records are
# written.  Worker RSS must level off: bounded by reductrai_buffer_size.
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
                                        setting|buffer|wanted)/xi
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

    $md .= "# make bench — results\n\n"
        . sprintf("%s, %d CPUs (%s), %s, %s, zstd %s, commit %s, "
                  . "%s UTC, %.0f s.  Corpus seed %d.  Load on the machine "
                  . "from other processes during the runs: median %.2f "
                  . "CPUs.\n\n",
                  $cpu // '?', $NCPU, $hv ? "$hv guest" : 'bare metal',
                  "Linux " . (`uname -r` =~ s/\s//gr),
                  $nginx, $zstd, $rev || '?',
                  strftime('%Y-%m-%d %H:%M', gmtime), time - $started,
                  $opt{seed}, $other // 0);

    my @sections;

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
                          threads => median(map { $_->{threads}
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
                             "≥ $TARGET{throughput}× plain nginx",
                             sprintf('%.2f×', $ratio),
                             ok($ratio >= $TARGET{throughput}) ];
        }

        push @sections, "## Proxy overhead at saturation\n\n"
            . "wrk -t1 -c32, keepalive, identity JSON bodies of the corpus "
            . "(the five kinds in turn), $opt{rounds} rounds of "
            . "$opt{seconds} s each side, interleaved.  Plain nginx = the "
            . "same configuration without `load_module`; both forward to "
            . "the same upstream nginx (`return 202`).  CPU = nginx "
            . "workers' CPU time (event loop + threads) per request.  "
            . "Predicted = the ratio of a CPU-bound machine: the whole "
            . "machine's CPU time per request at plain saturation, over "
            . "that plus what the module adds.\n\n"
            . table([ 'body', 'plain req/s', 'module req/s',
                      'ratio', 'ratio per round', 'predicted',
                      'p50 µs plain / module', 'p99 µs plain / module',
                      'CPU µs/req plain / module' ], @rows);
    }

    if ($R{latency}) {
        my @rows;
        for my $size (qw(b4k b64k)) {
            my $l = $R{latency}{$size} or next;
            my %p = map {
                my $x = $_;
                ($x => { map { my $k = $_;
                               ($k => median(map { $_->{$k} } @{ $l->{$x} }))
                         } qw(rps p50_us p99_us p999_us busy) })
            } grep { $l->{$_} } qw(A B C);
            my $added = $p{B}{p99_us} - $p{A}{p99_us};
            my $label = $size eq 'b4k' ? '4 KiB' : '64 KiB';
            push @rows, [ $label, f0($l->{rate}),
                          f0($p{A}{rps}) . ' / ' . f0($p{B}{rps}),
                          ms($p{A}{p50_us}) . ' / ' . ms($p{B}{p50_us}),
                          ms($p{A}{p99_us}) . ' / ' . ms($p{B}{p99_us}),
                          sprintf('**%+.2f**', $added / 1000),
                          $p{C} ? ms($p{C}{p50_us}) . ' / '
                                  . ms($p{C}{p99_us}) : '–',
                          sprintf('%.0f%% / %.0f%%', 100 * $p{A}{busy},
                                  100 * $p{B}{busy}) ];
            $N{"lat_$size"} = { added => $added, busyA => $p{A}{busy},
                                busyB => $p{B}{busy},
                                async => $p{C} ? $p{C}{p99_us}
                                                 - $p{A}{p99_us} : undef };
            push @targets, [ "added p99 at half saturation, $label",
                             '≤ 1 ms', sprintf('%+.2f ms', $added / 1000),
                             ok($added <= $TARGET{added_p99}) ];
        }

        push @sections, "## Latency at half of saturation\n\n"
            . "The same fixed rate through both: half of the lower "
            . "saturation throughput above (wrk -t2, exponential gaps of "
            . "mean 10 ms per connection).  async = the module with "
            . "`reductrai_durability async` (requests do not wait for "
            . "their record), for what the commit itself adds.\n\n"
            . table([ 'body', 'target req/s', 'req/s plain / module',
                      'p50 ms plain / module', 'p99 ms plain / module',
                      'added p99 ms', 'async p50 / p99 ms',
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

        for my $size (qw(b4k b64k)) {
            my $runs = $R{proxy}{$size}{B} or next;
            push @inm, [ 'proxy runs, '
                         . ($size eq 'b4k' ? '4 KiB' : '64 KiB')
                         . ' identity bodies',
                         sum(map { $_->{bytes_archived_total} } @$runs),
                         sum(map { $_->{threads} } @$runs),
                         sum(map { $_->{main} } @$runs) ];
        }

        for (@inm) {
            my ($what, $bytes, $thr, $main) = @$_;
            push @irows, [ $what, mib($bytes), f2($thr), f2($main),
                           f0($bytes / 1e6 / $thr),
                           f0($bytes / 1e6 / ($thr + $main)) ];
        }

        for my $v (@ENCODE[0, 1]) {
            my $x = $R{variant}{ $v->[0] } or next;
            push @targets, [ "encode, micro-benchmark, $v->[0]",
                             '≥ 150 MB/s per core', f0($x->{mbps}) . ' MB/s',
                             ok($x->{mbps} >= $TARGET{encode}) ];
        }

        for my $name (qw(archive-l3 archive-l1)) {
            my $r = $R{inmodule}{$name} or next;
            my $v = $r->{bytes_archived_total} / 1e6 / $r->{threads};
            push @targets, [ 'encode in the module, level '
                             . substr($name, -1)
                             . ', per core of its threads',
                             '≥ 150 MB/s per core', f0($v) . ' MB/s',
                             ok($v >= $TARGET{encode}) ];
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
            . "workers' threads (encode and upload pools, from "
            . "/proc/PID/task), and over the whole workers (event loops "
            . "included: reading bodies, proxying, handing records "
            . "over).\n\n"
            . table([ 'run', 'archived MiB', 'thread CPU s',
                      'event loop CPU s', 'MB/s per thread core',
                      'MB/s per worker core' ], @irows);
    }

    # archive size
    if ($R{size}) {
        my @rows;
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
                          sprintf('%.2f', $s->{zstd19} / $g),
                          sprintf('%.2f', $s->{zstd9l23} / $g) ];
            $tot{$_} += $s->{$_} // 0 for keys %$s;
            $tot{wire} += $w->{wire} // 0;
            $tot{pergz} += $w->{gzip6} // 0;
            $tot{l1} += $l1->{$stream} // 0;

            next unless $stream =~ /^(series|logs)/;

            push @targets, [ "archive size, $stream, level 3",
                             '≤ 0.8× batched gzip -6',
                             sprintf('%.3f×', $s->{stored} / $g),
                             ok($s->{stored} / $g <= $TARGET{size}) ];
            push @targets, [ "archive size, $stream, level 1",
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
            . "1.\n\n"
            . table([ 'stream', 'records', 'raw', 'wire',
                      'per-request gzip -6', 'batched gzip -6',
                      'zstd -3 batch', 'zstd -19 batch', 'module, level 3',
                      'module, level 1', 'level 3 ÷ gzip -6 batch',
                      'level 1 ÷ gzip -6 batch', 'zstd -19 ÷ gzip -6 batch',
                      'recompressed ÷ gzip -6 batch' ], @rows)
            . sprintf("\nrecompressed = the idea of recompressing a "
                      . "sealed segment in the upload thread, here with "
                      . "zstd -9 and the same long window: %.0f MB/s of "
                      . "NDJSON per core on top of the hot path (zstd -19: "
                      . "%.1f MB/s).\n", $tot{ndjson} / 1e6
                      / ($tot{zstd9l23_cpu} || 1), $tot{ndjson} / 1e6
                      / ($tot{zstd19_cpu} || 1));
    }

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
                            + $m->{ctx} + 16 * $MIB;
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
            . "Requests arrive faster than records are written: zstd -19 "
            . "on the hot path (`reductrai_compression_level 19`), "
            . "`reductrai_durability async`, answered locally "
            . "(`reductrai_forward off`), wrk -c64 with 64 KiB bodies.  The "
            . "buffer fills, then the spool-full policy refuses (503) "
            . "what does not fit.  RSS per worker in MiB: at start, the "
            . "highest in the third and in the last quarter of the run "
            . "(flat: the last is less than 2 MiB above the third; "
            . "highest, not mean, because each sealed segment frees its "
            . "encoder and the next allocates it again), peak.  "
            . "Bound = RSS at start + `reductrai_buffer_size` + the zstd "
            . "-19 context (`ZSTD_estimateCStreamSize`) + 16 MiB of writer "
            . "scratch (kept up to 4 MiB per buffer).\n\n"
            . table([ 'buffer', 'worker', 'start', '3rd quarter',
                      'last quarter', 'peak', 'bound', 'verdict' ], @rows);
    }

    # storage requests
    if ($R{puts}) {
        my @rows;
        for my $what (qw(proxy archive-l3 archive-l1)) {
            my $p = $R{puts}{$what} or next;
            next unless $p->{raw};
            my $per8 = $p->{objects} / ($p->{raw} / (8 * $MIB));
            push @rows, [ $what, mib($p->{raw}), $p->{objects},
                          f0($p->{objects} / ($p->{raw} / 1e9)),
                          sprintf('%.2f', $per8), $p->{dropped} ];
        }

        # sustained load: every segment but the last of each worker,
        # stream and hour must have sealed on reductrai_segment_size of
        # raw body, so there are at most raw / 8 MiB of them
        if (my $p = $R{puts}{proxy}) {
            my $steady = ($p->{objects} - $p->{last})
                         / ($p->{raw} / (8 * $MIB));
            push @rows, [ 'proxy, without the last segment of each worker, '
                          . 'stream and hour', mib($p->{raw}),
                          $p->{objects} - $p->{last}, '',
                          sprintf('**%.2f**', $steady), '' ];
            push @targets, [ 'storage PUTs, sustained load', '≤ 1 per 8 '
                             . 'MiB raw', sprintf('%.2f', $steady),
                             ok($steady <= $TARGET{puts}) ];
        }

        push @sections, "## Storage requests\n\n"
            . "Objects written (one PUT each) for the raw bytes archived "
            . "(`reductrai_bytes_archived_total`, decoded bodies), after a "
            . "graceful stop sealed and shipped everything, with "
            . "`reductrai_segment_size 8m` and `reductrai_segment_age 30s`. "
            . "A run ends with a partial segment per worker and stream "
            . "(and an hour change seals one too); the last row leaves "
            . "those out of the proxy run, a sustained load, whose other "
            . "segments must each have sealed on 8 MiB of raw body.\n\n"
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
            . "worker CPU, %.0f µs (%.0f µs) of it in the encode threads "
            . "and the rest in the event loop (building the record, "
            . "handing it to the thread pool and back).  A CPU-bound "
            . "machine then predicts %.2f× (%.2f×), close to the %.2f× "
            . "(%.2f×) measured.  0.95× would need the module to add at "
            . "most %.1f µs to a 4 KiB request, an encode of %.1f GB/s per "
            . "core: no zstd level is that fast.  The target can hold only "
            . "where nginx has CPU to spare for its thread pool, which a "
            . "2-CPU machine shared with the load generator has not; what "
            . "the module can do is spend less CPU per byte (see level 1 "
            . "below) and per request (handing records to the thread pool "
            . "and back: a prototype encoding in the event loop instead "
            . "used about 15%% less CPU per 4 KiB request).\n\n",
            $NCPU, $k->{machine}, $l->{machine}, $k->{added}, $l->{added},
            $k->{threads}, $l->{threads}, $k->{predicted}, $l->{predicted},
            $k->{ratio}, $l->{ratio}, $budget,
            4096 / $budget / 1e3;
    }

    if ($missed{added}) {
        my @l = grep { defined } @$n{qw(lat_b4k lat_b64k)};
        my @async = grep { defined } map { $_->{async} } @l;

        $s .= sprintf "**Latency.**  Half of the module's saturation rate "
            . "still keeps the machine's CPUs %s busy (plain nginx at the "
            . "same rate: %s), and the encode threads compete with the "
            . "event loops, wrk and the upstream for 2 CPUs.  %s"
            . "Less CPU per byte shortens both.\n\n",
            join(' / ', map { sprintf '%.0f%%', 100 * $_->{busyB} } @l),
            join(' / ', map { sprintf '%.0f%%', 100 * $_->{busyA} } @l),
            @async == @l
            ? sprintf('With durability async, where requests do not wait '
                      . 'for their record, the module adds %s ms to p99, '
                      . 'against %s ms with write: the difference is the '
                      . 'commit itself (hand-over, encode of the batch, '
                      . 'write, hand-back), the rest is waiting for a '
                      . 'CPU.  ',
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
            : "Level 1 meets every encode and size target: it should be "
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
    phase_proxy() if want('proxy') || want('latency');
    phase_archive() if want('archive');
    phase_memory() if want('memory');
    1;
};

my $err = $@;
$bench->stop_all;

die "bench failed: $err" unless $ok;

my $md = report();
make_path("$TOP/bench/results");
$bench->write_file($opt{out}, $md);
$bench->write_file("$TOP/bench/results/latest.log", join("\n", @log) . "\n");

print "\n$md";
print "\nwritten to $opt{out} in ", sprintf('%.0f', time - $started), " s\n";

rmtree($work) unless $opt{keep};
