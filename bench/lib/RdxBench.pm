package RdxBench;

# Plumbing for bench/bench.pl: nginx instances in a scratch directory, wrk
# runs, and what the kernel says about CPU time and memory (/proc).
#
#   my $b = RdxBench->new(work => $dir);
#   my $u = $b->nginx(name => 'upstream', conf => $text, cpus => '1');
#   my $r = $b->wrk(url => ..., script => ..., args => [...], threads => 1,
#                   connections => 32, seconds => 8, cpus => '1');
#   my $s = $b->cpu_snapshot($u, $a);   ... $b->cpu_delta($s0, $s1)
#   $b->stop($u);
#
# Only core Perl.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path rmtree);
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $TCK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my $NGINX = $ENV{NGINX} // '/usr/sbin/nginx';


sub new {
    my ($class, %o) = @_;
    my $self = bless { work => $o{work}, live => [] }, $class;

    make_path($self->{work});
    chmod 0755, $self->{work};

    return $self;
}


sub work { $_[0]{work} }


# a free TCP port on 127.0.0.1
sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or croak "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}


# a directory the workers (user nobody when started as root) can write
sub worker_dir {
    my ($self, $path) = @_;

    make_path($path);

    if ($> == 0) {
        my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
        chown $uid, $gid, $path;
    }

    return $path;
}


# ------------------------------------------------------------ nginx

# Starts nginx with conf (a string; %%DIR%% is its directory) pinned to
# cpus (a taskset list) when given.  Returns the instance.
sub nginx {
    my ($self, %o) = @_;
    my $dir = "$self->{work}/$o{name}";

    rmtree($dir);
    make_path("$dir/logs", "$dir/tmp");
    $self->worker_dir("$dir/tmp");

    (my $conf = $o{conf}) =~ s/%%DIR%%/$dir/g;
    $conf = "pid $dir/nginx.pid;\nerror_log $dir/logs/error.log;\n$conf";
    _write("$dir/nginx.conf", $conf);

    my @cmd = ($NGINX, '-p', "$dir/", '-c', "$dir/nginx.conf",
               '-e', "$dir/logs/error.log");
    unshift @cmd, 'taskset', '-c', $o{cpus} if defined $o{cpus};

    system(@cmd) == 0
        or croak "$o{name}: nginx failed to start: "
                 . _slurp("$dir/logs/error.log");

    my $inst = { %o, dir => $dir, pid_file => "$dir/nginx.pid" };

    _wait(sub { -s $inst->{pid_file} }, 10, "$o{name} pid file");
    $inst->{master} = 0 + _slurp($inst->{pid_file});
    push @{ $self->{live} }, $inst;

    _wait(sub { $self->workers($inst) }, 10, "$o{name} workers");

    return $inst;
}


sub workers {
    my ($self, $inst) = @_;
    my $master = $inst->{master} // (-s $inst->{pid_file}
                                     ? 0 + _slurp($inst->{pid_file}) : 0);
    return () unless $master;

    my @pids;

    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = _slurp($stat) // next;
        my ($pid, $rest) = $s =~ /^(\d+) \(.*?\) (.*)$/s or next;
        my @f = split ' ', $rest;
        push @pids, $pid if $f[1] == $master;
    }

    @pids = sort { $a <=> $b } @pids;

    return @pids;       # the count in scalar context

}


# QUIT (graceful: open segments are sealed and shipped) or TERM
sub stop {
    my ($self, $inst, %o) = @_;
    my $master = $inst->{master} or return;

    kill $o{fast} ? 'TERM' : 'QUIT', $master;
    _wait(sub { !kill 0, $master }, $o{timeout} // 60, "$inst->{name} exit");

    $self->{live} = [ grep { $_ != $inst } @{ $self->{live} } ];
    delete $inst->{master};
}


sub stop_all {
    my ($self) = @_;
    $self->stop($_, fast => 1, timeout => 10) for @{ $self->{live} };
}


# [alert], [crit], [emerg] lines of an instance's error log
sub log_problems {
    my ($self, $inst) = @_;
    my $log = _slurp("$inst->{dir}/logs/error.log") // '';
    return grep { /\[(alert|crit|emerg)\]/ } split /\n/, $log;
}


# /metrics as { name => value } (label sets summed by name)
sub metrics {
    my ($self, $port) = @_;
    my $body = http_get($port, '/metrics') // return {};
    my %m;

    for (split /\n/, $body) {
        next if /^#/;
        my ($name, $value) = /^([a-z_]+)(?:\{[^}]*\})?\s+(\S+)$/ or next;
        $m{$name} += $value;
    }

    return \%m;
}


sub http_get {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return undef;
    print $s "GET $path HTTP/1.0\r\nHost: bench\r\n\r\n";
    local $/;
    my $r = <$s>;
    close $s;
    return undef unless defined $r && $r =~ m{^HTTP/1\.\d 200};
    $r =~ s/^.*?\r\n\r\n//s;
    return $r;
}


# ------------------------------------------------------------ /proc

# CPU ticks of every process of the instances: the main thread (the event
# loop) apart from the other threads (thread pools).
sub cpu_snapshot {
    my ($self, @insts) = @_;
    my %s;

    for my $inst (@insts) {
        for my $pid ($self->workers($inst)) {
            for my $task (glob "/proc/$pid/task/*") {
                my $ticks = _ticks("$task/stat") // next;
                my $kind = $task =~ m{/$pid$} ? 'main' : 'threads';
                $s{ $inst->{name} }{$kind} += $ticks;
            }
        }
    }

    $s{_machine} = machine_busy();
    $s{_time} = time;

    return \%s;
}


# seconds of CPU between two snapshots: { name => { main, threads } }
sub cpu_delta {
    my ($self, $s0, $s1) = @_;
    my %d;

    for my $name (keys %$s1) {
        next if $name =~ /^_/;
        for my $kind (qw(main threads)) {
            $d{$name}{$kind} = (($s1->{$name}{$kind} // 0)
                                - ($s0->{$name}{$kind} // 0)) / $TCK;
        }
    }

    $d{_machine} = ($s1->{_machine} - $s0->{_machine}) / $TCK;
    $d{_wall} = $s1->{_time} - $s0->{_time};

    return \%d;
}


# busy ticks of the whole machine (all CPUs)
sub machine_busy {
    my ($line) = grep { /^cpu / } split /\n/, _slurp('/proc/stat');
    my (undef, @f) = split ' ', $line;
    # user nice system idle iowait irq softirq steal
    return $f[0] + $f[1] + $f[2] + $f[5] + $f[6] + $f[7];
}


sub rss_kib {
    my ($pid) = @_;
    my $s = _slurp("/proc/$pid/status") // return 0;
    return $s =~ /^VmRSS:\s+(\d+)/m ? $1 : 0;
}


# the highest RSS a process has had (the kernel's high-water mark: a peak
# between two samples is not missed)
sub rss_peak_kib {
    my ($pid) = @_;
    my $s = _slurp("/proc/$pid/status") // return 0;
    return $s =~ /^VmHWM:\s+(\d+)/m ? $1 : 0;
}


# non-empty files in a spool directory (open and sealed segments,
# temporary files; an empty file holds no work, a lock file say),
# quarantine/ left out: 0 once everything written has been shipped
sub spool_files {
    my ($self, $dir) = @_;
    my @todo = ($dir);
    my $n = 0;

    while (my $d = shift @todo) {
        opendir my $dh, $d or next;
        for my $e (readdir $dh) {
            next if $e eq '.' || $e eq '..' || $e eq 'quarantine';
            if (-d "$d/$e") { push @todo, "$d/$e" }
            elsif (-s _) { $n++ }
        }
    }

    return $n;
}


sub _ticks {
    my $s = _slurp($_[0]) // return undef;
    $s =~ s/^.*\) //s;
    my @f = split ' ', $s;
    return $f[11] + $f[12];
}


# ------------------------------------------------------------ wrk

# Runs wrk; returns its "wrk key=value" line as a hash, plus the CPU
# seconds wrk itself used (cpu) and rps.
sub wrk {
    my ($self, %o) = @_;
    my @cmd = ('wrk', '-t', $o{threads} // 1, '-c', $o{connections} // 32,
               '-d', ($o{seconds} // 8) . 's', '--timeout', '10s',
               '-s', $o{script}, $o{url}, '--', @{ $o{args} // [] });
    unshift @cmd, 'taskset', '-c', $o{cpus} if defined $o{cpus};

    my @t0 = times;
    my $out = _run(@cmd);
    my @t1 = times;

    my ($line) = grep { /^wrk / } split /\n/, $out;
    croak "wrk gave no result:\n$out" unless $line;

    my %r = $line =~ /(\w+)=(\S+)/g;
    $r{cpu} = ($t1[2] + $t1[3]) - ($t0[2] + $t0[3]);
    $r{rps} = $r{requests} / ($r{duration_us} / 1e6);
    $r{errors} = $r{status_errors} + $r{connect_errors} + $r{read_errors}
                 + $r{write_errors} + $r{timeouts};

    return \%r;
}


# Sends every request of a corpus file exactly once (wrk cannot: it runs
# for a duration) over $conns keepalive connections, one process each:
# connection i sends requests i, i + conns, ...  Returns { requests,
# seconds, status => { code => count } }.
sub replay {
    my ($self, %o) = @_;
    my $conns = $o{connections} // 8;
    my @reqs = read_corpus($o{file});
    my (@kids, %status);
    my $t0 = time;

    for my $i (0 .. $conns - 1) {
        pipe my $r, my $w or croak "pipe: $!";
        my $pid = fork // croak "fork: $!";

        if ($pid == 0) {
            close $r;
            my %st;
            my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$o{port}")
                or die "connect: $!";
            setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
            binmode $s;

            for (my $n = $i; $n < @reqs; $n += $conns) {
                _send($s, _request(@{ $reqs[$n] }));
                $st{ _response($s) }++;
            }

            print $w join(' ', %st), "\n";
            close $w;
            POSIX::_exit(0);
        }

        close $w;
        push @kids, [ $pid, $r ];
    }

    for (@kids) {
        my ($pid, $r) = @$_;
        my %st = split ' ', (<$r> // '');
        $status{$_} += $st{$_} for keys %st;
        waitpid $pid, 0;
    }

    return { requests => scalar @reqs, seconds => time - $t0,
             status => \%status };
}


# A sparse stream: count requests of one kind of a corpus file, sent one
# at a time over one keepalive connection, each after the answer to the
# previous one and a pause of pause_ms, as a check or an event arrives
# from a quiet source.  Returns { requests, seconds, status }.
sub sparse {
    my ($self, %o) = @_;
    my @reqs = grep { $_->[0] eq $o{kind} } read_corpus($o{file});
    my %status;
    my $t0 = time;

    splice @reqs, $o{count} if @reqs > $o{count};

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$o{port}")
        or croak "connect: $!";
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;

    for (@reqs) {
        _send($s, _request(@$_));
        $status{ _response($s) }++;
        sleep $o{pause_ms} / 1000;
    }

    close $s;

    return { requests => scalar @reqs, seconds => time - $t0,
             status => \%status };
}


# one corpus request as an agent sends it
sub _request {
    my ($kind, $uri, $enc, $body) = @_;

    return "POST $uri HTTP/1.1\r\nHost: intake.bench\r\n"
        . "Content-Type: application/json\r\n"
        . "DD-API-KEY: 0123456789abcdef0123456789abcdef\r\n"
        . "User-Agent: datadog-agent/7.52.0\r\n"
        . ($enc ne 'identity' ? "Content-Encoding: $enc\r\n" : '')
        . 'Content-Length: ' . length($body) . "\r\n\r\n" . $body;
}


sub _send {
    my ($s, $data) = @_;
    my $off = 0;

    while ($off < length $data) {
        my $n = syswrite($s, $data, length($data) - $off, $off);
        die "send: $!" unless defined $n;
        $off += $n;
    }
}


# one HTTP/1.1 response: its status (the body is read and dropped)
sub _response {
    my ($s) = @_;
    my $head = '';

    while ($head !~ /\r\n\r\n/) {
        sysread($s, $head, 4096, length $head) or return 'eof';
    }

    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
    my $have = length($head) - (index($head, "\r\n\r\n") + 4);
    my $buf;

    while ($have < ($len // 0)) {
        $have += sysread($s, $buf, $len - $have) || return 'eof';
    }

    return $status // 'bad';
}


# a corpus file as [kind, uri, encoding, body] each
sub read_corpus {
    my ($path) = @_;
    my @reqs;

    open my $fh, '<:raw', $path or croak "$path: $!";

    while (my $line = <$fh>) {
        my ($kind, $uri, $enc, $len) = split ' ', $line;
        read($fh, my $body, $len) == $len or croak "$path: short body";
        push @reqs, [ $kind, $uri, $enc, $body ];
    }

    return @reqs;
}


# runs a command, returns its stdout (croaks on failure)
sub _run {
    my @cmd = @_;
    open my $fh, '-|', @cmd or croak "$cmd[0]: $!";
    local $/;
    my $out = <$fh>;
    close $fh or croak "@cmd: exit " . ($? >> 8);
    return $out // '';
}


sub run { my ($self, @cmd) = @_; return _run(@cmd) }


# ------------------------------------------------------------ helpers

sub _wait {
    my ($cond, $secs, $what) = @_;
    my $end = time + $secs;

    until ($cond->()) {
        croak "timed out waiting for $what" if time > $end;
        sleep 0.05;
    }
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s;
}


sub _write {
    my ($path, $s) = @_;
    open my $fh, '>:raw', $path or croak "$path: $!";
    print $fh $s;
    close $fh or croak "$path: $!";
}


sub slurp { _slurp($_[1]) }
sub write_file { _write($_[1], $_[2]) }
sub wait_for { my ($self, @a) = @_; _wait(@a) }


sub DESTROY {
    my ($self) = @_;
    local ($?, $@);
    $self->stop_all if @{ $self->{live} // [] };
}


1;
