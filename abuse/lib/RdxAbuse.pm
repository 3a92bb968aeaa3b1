package RdxAbuse;

# The abuse suite: one nginx with the module (worker_processes 2,
# durability write) under hostile clients, while a steady client sends
# numbered records.  Used by abuse/abuse.pl (make abuse, the full
# version) and t/81-abuse.t (the short version make test runs): the same
# code, other sizes.
#
#   my $a = RdxAbuse->new(profile => 'short', log => sub { note @_ });
#   $a->setup;
#   $a->run_phase($_) for $a->phase_names;
#   $a->finish;              # stop the steady client, fds, RSS, stop
#                            # nginx, read the archive with reductrai cat
#   my $v = $a->verdict;     # {ack_missing => [...], steady => {...}, ...}
#   print $a->report_markdown;
#
# The instance: a tapped forwarding location /api/ (proxy_pass to a
# RdxTest mock upstream) and a store-only location /store/ (reductrai_forward
# off), HTTP/1.1 on one port, HTTP/2 (prior knowledge) on another.
#
# Every request that carries a record the suite can recognise is
# "acknowledged" when it got a 2xx, and must then be in the archive: the
# steady client's bodies carry "abuse_seq":N, the attacks' requests go to
# /api/a/KIND-N or /store/a/KIND-N (the archived "uri").  Decompression
# bombs are kept raw (decode_error "too_large"), so they are recognised by
# their uri too.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Compress::Gzip qw($GzipError);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use List::Util qw(max sum);
use POSIX qw(strftime WNOHANG);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);

my $REPO;
BEGIN { $REPO = abs_path(dirname(__FILE__) . '/../..') }

use lib "$REPO/t/lib";
use RdxTest qw(wait_for);
use RdxCli qw(cli_path);

my $MIB = 1024 * 1024;

# sizes and durations (seconds) of each profile
my %PROFILE = (
    short => {
        slow          => 1000,    # slowloris connections
        slow_secs     => 8,       # how long they trickle
        aborted       => 500,     # bodies cut at a random offset
        pipe_conns    => 20,      # connections of pipelined requests
        pipe_depth    => 10,      # requests in each
        smuggle_reps  => 2,       # each smuggling variant, per location
        keepalive     => 3000,    # concurrent keepalive connections
        ka_hold       => 3,       # held idle this long between requests
        h2_reset      => 10000,   # streams opened and reset at once
        h2_flood      => 10000,   # h2load requests (-m 100 per connection)
        bombs         => 2,       # per kind (gzip, zstd) and location
        bomb_mib      => 256,     # what one inflates to
        steady        => 2,       # steady clients per location
        pace          => 0.02,    # their pause before each request
        worker_conns  => 8192,
    },
    full => {
        slow          => 5000,
        slow_secs     => 30,
        aborted       => 3000,
        pipe_conns    => 200,
        pipe_depth    => 20,
        smuggle_reps  => 10,
        keepalive     => 10000,
        ka_hold       => 10,
        h2_reset      => 50000,
        h2_flood      => 50000,
        bombs         => 10,
        bomb_mib      => 1024,
        steady        => 2,
        pace          => 0.01,
        worker_conns  => 16384,
    },
);

# what make abuse's report asserts as numbers (t/81-abuse.t asserts none)
our %TARGET = (
    error_rate => 0.001,    # steady requests without a 2xx
    p99_ms     => 1000,     # steady client's 99th percentile
);

# the module's limits in the configuration below; the RSS bound is
# derived from them
my %CONF = (
    buffer_size      => 16 * $MIB,    # reductrai_buffer_size
    max_decoded_size => 16 * $MIB,    # reductrai_max_decoded_size
    seal_concurrency => 2,            # reductrai_seal_concurrency
    segment_size     => 8 * $MIB,     # reductrai_segment_size (default)
    body_buffer      => 16 * 1024,    # client_body_buffer_size
    header_buffer    => 1024,         # client_header_buffer_size
    request_pool     => 4096,         # request_pool_size
    connection_pool  => 512,          # connection_pool_size
);

my @PHASES = (
    [ baseline   => 'the steady client alone' ],
    [ slowloris  => '%slow% connections trickling headers (half) or '
                    . 'bodies (half) a byte per connection a second for '
                    . '%slow_secs% s; then half complete, half vanish' ],
    [ aborted    => '%aborted% bodies (Content-Length and chunked) cut '
                    . 'at a random offset, half with a RST' ],
    [ pipelined  => '%pipe_conns% connections of %pipe_depth% pipelined '
                    . 'requests' ],
    [ smuggling  => 'Content-Length + Transfer-Encoding and other framing '
                    . 'conflicts, %smuggle_reps% of each per location, an '
                    . 'inner request hidden in the body' ],
    [ keepalive  => '%keepalive% concurrent keepalive connections: a '
                    . 'request each, %ka_hold% s idle, a second request' ],
    [ 'h2-reset' => 'HTTP/2 rapid reset: %h2_reset% streams opened '
                    . '(HEADERS and part of a body) and reset at once' ],
    [ 'h2-flood' => 'HTTP/2 stream flood: h2load, %h2_flood% requests, '
                    . '100 concurrent streams per connection' ],
    [ bombs      => 'decompression bombs: gzip and zstd bodies inflating '
                    . 'to %bomb_mib% MiB, %bombs% of each per location' ],
    [ together   => 'every attack above at once, each in its own process '
                    . '(their ids start with "all-")' ],
);


sub new {
    my ($class, %opt) = @_;
    my $profile = $opt{profile} // 'short';
    my $p = $PROFILE{$profile} or croak "unknown profile $profile";

    return bless {
        profile => $profile,
        p       => { %$p, %{ $opt{override} // {} } },
        log     => $opt{log} // sub { print STDERR "# @_\n" },
        t0      => time,
        done    => [],
        acked   => {},      # id => status, of every recognisable request
        tag     => '',      # before every attack's ids ("all-": together)
        steady  => [],
    }, $class;
}


sub phase_names { map { $_->[0] } @PHASES }
sub param       { $_[0]{p}{$_[1]} }
sub lab         { $_[0]{t} }
sub results     { @{ $_[0]{done} } }
sub verdict     { $_[0]{verdict} }


sub progress {
    my ($self, $msg) = @_;
    $self->{log}->(sprintf '[%5.1f s] %s', time - $self->{t0}, $msg);
}


sub describe {
    my ($self, $name) = @_;
    my ($ph) = grep { $_->[0] eq $name } @PHASES or croak "no phase $name";
    (my $d = $ph->[1]) =~ s/%(\w+)%/$self->{p}{$1}/g;
    return $d;
}


# ------------------------------------------------------------------ setup

sub setup {
    my ($self) = @_;
    my $p = $self->{p};
    my $t = $self->{t} = RdxTest->new;

    $t->mkdir_worker('archive');
    $t->mkdir_worker('spool');
    $self->{vendor} = $t->start_upstream(name => 'vendor', workers => 8);

    # nginx cannot raise its workers' limit above the hard one without
    # CAP_SYS_RESOURCE
    my $wc = $p->{worker_conns};
    my $hard = `sh -c 'ulimit -Hn'`;
    chomp $hard;
    my $nofile = 2 * $wc + 1024;
    $nofile = $hard if $hard =~ /^\d+$/ && $hard < $nofile;

    $t->write_config(main => <<"EOT", http => <<"EOT");
worker_processes 2;
worker_rlimit_nofile $nofile;
events {
    worker_connections $wc;
}
EOT
    reductrai_storage file://%%DIR%%/archive;
    reductrai_spool %%DIR%%/spool;
    reductrai_segment_age 1s;
    reductrai_durability write;
    reductrai_buffer_size $CONF{buffer_size};
    reductrai_max_decoded_size $CONF{max_decoded_size};
    reductrai_seal_concurrency $CONF{seal_concurrency};

    client_body_buffer_size $CONF{body_buffer};
    client_header_buffer_size $CONF{header_buffer};
    request_pool_size $CONF{request_pool};
    connection_pool_size $CONF{connection_pool};
    client_max_body_size 8m;
    client_header_timeout 20s;
    client_body_timeout 20s;
    keepalive_timeout 120s;

    upstream vendor {
        server 127.0.0.1:%%PORT_vendor%%;
    }

    server {
        listen 127.0.0.1:%%PORT_http%% backlog=4096;
        listen 127.0.0.1:%%PORT_h2%% http2 backlog=4096;

        location /api/ {
            reductrai on;
            reductrai_stream fwd;
            proxy_pass http://vendor;
        }

        location /store/ {
            reductrai on;
            reductrai_stream store;
            reductrai_forward off;
        }

        location = /health {
            reductrai_health;
        }

        location = /metrics {
            reductrai_metrics;
        }
    }
EOT

    $t->start;
    $self->note_rss_base;
    $self->progress('nginx started: workers ' . join(' ', $t->worker_pids));

    # the steady client: numbered records to both locations
    for my $path ('/api/steady', '/store/steady') {
        push @{ $self->{steady} }, $t->load_start(
            path => $path, n => 1_000_000, concurrency => $p->{steady},
            timeout => 60, pause => 0.1, body => sub {
                sleep $p->{pace};
                ([ 'Content-Type' => 'application/json' ],
                 qq({"abuse_seq":$_[0],"msg":"steady record $_[0]"}));
            });
    }

    # the baseline of descriptors once every worker has served both
    # locations (a worker opens its spool files on its first record)
    sleep 2;
    $self->{fd_before} = $self->worker_fds;
    $self->{workers} = [ $t->worker_pids ];
    $self->progress('baseline fds: ' . _fd_text($self->{fd_before}));

    return $self;
}


# descriptors of each worker: {pid => {total, socket, spool, other}}
sub worker_fds {
    my ($self) = @_;
    my $spool = $self->{t}->path('spool');
    my %fds;

    for my $pid ($self->{t}->worker_pids) {
        my %n = (total => 0, socket => 0, spool => 0, other => 0);
        opendir my $dh, "/proc/$pid/fd" or next;
        for my $fd (grep { /^\d+$/ } readdir $dh) {
            my $to = readlink "/proc/$pid/fd/$fd" // next;
            $n{total}++;
            if ($to =~ /^socket:/) { $n{socket}++ }
            elsif (index($to, $spool) == 0) { $n{spool}++ }
            else { $n{other}++ }
        }
        $fds{$pid} = \%n;
    }

    return \%fds;
}


sub _fd_text {
    my ($fds) = @_;
    return join ', ', map {
        "$_: $fds->{$_}{total} ($fds->{$_}{socket} sockets, "
        . "$fds->{$_}{spool} spool)"
    } sort keys %$fds;
}


# ----------------------------------------------------------------- phases

sub run_phase {
    my ($self, $name) = @_;
    (my $sub = "ph_$name") =~ s/-/_/g;
    my $ph = { name => $name, what => $self->describe($name), t0 => time };

    $self->progress("$name: $ph->{what}");
    my $out = $self->$sub($ph) // {};
    $ph->{secs} = time - $ph->{t0};
    @$ph{ keys %$out } = values %$out;

    # a crashed worker is replaced with a new pid
    my @now = $self->{t}->worker_pids;
    $ph->{workers_changed} = join(' ', sort @now)
                             ne join(' ', sort @{ $self->{workers} });
    $self->progress(sprintf '%s done in %.1f s: %s', $name, $ph->{secs},
                    $ph->{summary} // '');

    push @{ $self->{done} }, $ph;
    return $ph;
}


sub ph_baseline {
    sleep 2;
    return { summary => 'steady client only' };
}


sub _connect {
    my ($self, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port // $self->{t}->port('http'), Proto => 'tcp',
        Timeout => 10) or return;
    binmode $s;
    return $s;
}


# Reads one response (or everything until close, with all => 1); returns
# the bytes read.
sub _read_all {
    my ($s, $timeout, $all) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $timeout;
    my $buf = '';

    while (time < $deadline) {
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
        next if $all;
        if ($buf =~ /\r\n\r\n/ && $buf =~ /^Content-Length:\s*(\d+)/mi) {
            my $len = $1;
            last if length($buf) >= index($buf, "\r\n\r\n") + 4 + $len;
        }
    }

    return $buf;
}


sub _status { $_[0] =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0 }


# Runs code in $n children, each given its index; each returns a list of
# "id status" lines; returns {id => status} of them all.
sub _in_children {
    my ($self, $n, $code) = @_;
    my $dir = $self->{t}->dir;
    my $run = ++$self->{child_run};
    my @pids;

    for my $k (0 .. $n - 1) {
        my $pid = fork // croak "fork: $!";
        if (!$pid) {
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
            $SIG{PIPE} = 'IGNORE';
            my @lines = eval { $code->($k) };
            print STDERR "abuse child: $@" if $@;
            if (open my $fh, '>', "$dir/child-$run-$k.out") {
                print $fh "$_\n" for @lines;
                close $fh;
            }
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }

    waitpid $_, 0 for @pids;

    my %res;
    for my $k (0 .. $n - 1) {
        open my $fh, '<', "$dir/child-$run-$k.out" or next;
        while (<$fh>) {
            $res{$1} = $2 if /^(\S+) (\d+)$/;
        }
        unlink "$dir/child-$run-$k.out";
    }

    return \%res;
}


# remembers what the attacks were told: id => status
sub _acked {
    my ($self, $res) = @_;
    @{ $self->{acked} }{ keys %$res } = values %$res;
    my %st;
    $st{$_}++ for values %$res;
    return \%st;
}


sub _statuses {
    my ($st) = @_;
    return join ' ', map { "$_ x$st->{$_}" } sort keys %$st;
}


sub ph_slowloris {
    my ($self, $ph) = @_;
    my $p = $self->{p};
    my $procs = 2;

    my $res = $self->_in_children($procs, sub {
        my ($k) = @_;
        my (@c, @out);

        for my $i (grep { $_ % $procs == $k } 0 .. $p->{slow} - 1) {
            my $s = $self->_connect
                or do { push @out, "$self->{tag}slow-$i 0"; next };
            $s->blocking(0);
            # slowh: headers trickled, slowb: the body
            my $id = $self->{tag} . ($i % 2 ? 'slowb' : 'slowh') . "-$i";
            # the children split by parity, completion too: by i / 4
            my $loc = int($i / 4) % 2 ? 'api' : 'store';
            my $body = qq({"msg":"slow $id",) . '"pad":"'
                       . ('x' x 200) . '"}';
            my $head = "POST /$loc/a/$id HTTP/1.1\r\nHost: abuse\r\n"
                     . "Content-Type: application/json\r\n"
                     . "X-Slow-Padding: " . ('y' x 100) . "\r\n"
                     . "Content-Length: " . length($body) . "\r\n\r\n";
            # even: headers a byte at a time; odd: headers at once, then
            # the body a byte at a time
            my $sent = $i % 2 ? length $head : 0;
            syswrite($s, $head) if $i % 2;
            push @c, { s => $s, id => $id, wire => $head . $body,
                       sent => $sent };
        }

        my $end = time + $p->{slow_secs};
        while (time < $end) {
            my $tick = time;
            for my $c (@c) {
                next if $c->{sent} >= length($c->{wire}) - 1;
                my $n = syswrite($c->{s}, substr($c->{wire}, $c->{sent}, 1));
                $c->{sent} += $n if $n;
            }
            sleep max(0, 1 - (time - $tick));
        }

        # half complete their requests and must get an answer; half
        # vanish (the last byte never comes)
        my @finish;
        for my $j (0 .. $#c) {
            my $c = $c[$j];
            if ($j % 2) {
                close $c->{s};
                next;
            }
            $c->{s}->blocking(1);
            my $rest = substr($c->{wire}, $c->{sent});
            (syswrite($c->{s}, $rest) // -1) == length $rest
                or do { push @out, "$c->{id} 0"; next };
            push @finish, $c;
        }
        for my $c (@finish) {
            push @out, "$c->{id} " . _status(_read_all($c->{s}, 30));
            close $c->{s};
        }

        return @out;
    });

    $self->_acked($res);
    my (%h, %b);
    for my $id (keys %$res) {
        ($id =~ /^\Q$self->{tag}\Eslowh/ ? \%h : \%b)->{ $res->{$id} }++;
    }

    # nginx's client_header_timeout (20 s) bounds the whole header, while
    # client_body_timeout is between two reads: headers trickled longer
    # are cut (408, the connection closed: status 0 here)
    return { sent => scalar keys %$res, status => \%b,
             header_status => \%h, header_cut => $p->{slow_secs} >= 20,
             summary => 'completed half: headers trickled ' . _statuses(\%h)
                        . ($p->{slow_secs} >= 20 ? ' (over '
                           . 'client_header_timeout 20 s: closed by nginx)'
                           : '')
                        . '; bodies trickled ' . _statuses(\%b) };
}


sub ph_aborted {
    my ($self, $ph) = @_;
    my $p = $self->{p};
    my $procs = 2;

    my $res = $self->_in_children($procs, sub {
        my ($k) = @_;
        my @out;
        srand($$);

        for my $i (grep { $_ % $procs == $k } 0 .. $p->{aborted} - 1) {
            my $s = $self->_connect or do { push @out, "cut-$i 0"; next };
            my $len = 1000 + int rand 60_000;
            my $body = 'z' x $len;
            my $loc = $i % 2 ? 'api' : 'store';
            my $cut = int rand $len;
            my $wire;

            if ($i % 3 == 0) {
                $wire = "POST /$loc/a/cut-$i HTTP/1.1\r\nHost: abuse\r\n"
                      . "Transfer-Encoding: chunked\r\n\r\n"
                      . sprintf('%x', $len) . "\r\n" . substr($body, 0, $cut);
            } else {
                $wire = "POST /$loc/a/cut-$i HTTP/1.1\r\nHost: abuse\r\n"
                      . "Content-Length: $len\r\n\r\n"
                      . substr($body, 0, $cut);
            }

            syswrite($s, $wire);
            sleep rand 0.005 if $i % 5 == 0;
            # half end with a RST (SO_LINGER 0), half with a FIN
            setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0))
                if $i % 2;
            close $s;
            push @out, "cut-$i 1";
        }

        return @out;
    });

    return { sent => scalar keys %$res,
             summary => scalar(keys %$res) . ' bodies cut short' };
}


sub ph_pipelined {
    my ($self, $ph) = @_;
    my $p = $self->{p};
    my $t = $self->{t};
    my $procs = 4;

    my $res = $self->_in_children($procs, sub {
        my ($k) = @_;
        my @out;

        for my $c (grep { $_ % $procs == $k } 0 .. $p->{pipe_conns} - 1) {
            my @ids = map { "$self->{tag}pipe-$c-$_" } 1 .. $p->{pipe_depth};
            my @r = $t->pipeline(timeout => 30, requests => [ map {
                my $loc = /-(\d+)$/ && $1 % 2 ? 'api' : 'store';
                { path => "/$loc/a/$_", body => qq({"msg":"$_"}),
                  headers => [ 'Content-Type' => 'application/json' ] }
            } @ids ]);
            push @out, map { "$ids[$_] " . ($r[$_]{status} // 0) }
                       0 .. $#ids;
        }

        return @out;
    });

    my $st = $self->_acked($res);
    return { sent => scalar keys %$res, status => $st,
             summary => _statuses($st) };
}


# Each variant: [name, head lines, body, statuses that count as rejected].
# The body always holds a whole inner request for /store/a/smuggled-...,
# which must never be served nor archived, and must not leave the
# connection out of step (one answer, then the connection closes).
sub _smuggle_variants {
    my ($inner) = @_;
    my $chunked0 = "0\r\n\r\n" . $inner;
    my $n = length $chunked0;
    return (
        [ 'cl-te', [ "Content-Length: 5", "Transfer-Encoding: chunked" ],
          $chunked0, [ 400 ] ],
        [ 'te-cl', [ "Transfer-Encoding: chunked", "Content-Length: $n" ],
          $chunked0, [ 400 ] ],
        # nginx keeps the tab in the value: an unknown coding, 501
        [ 'te-tab', [ "Content-Length: 5", "Transfer-Encoding:\tchunked" ],
          $chunked0, [ 400, 501 ] ],
        [ 'cl-cl', [ "Content-Length: 5", "Content-Length: $n" ],
          $chunked0, [ 400 ] ],
        [ 'cl-plus', [ "Content-Length: +5" ], $chunked0, [ 400 ] ],
        [ 'te-te', [ "Transfer-Encoding: chunked",
                     "Transfer-Encoding: identity" ],
          $chunked0, [ 400, 501 ] ],
        [ 'te-x', [ "Content-Length: 5", "Transfer-Encoding: xchunked" ],
          $chunked0, [ 400, 501 ] ],
        [ 'chunk-overflow', [ "Transfer-Encoding: chunked" ],
          "fffffffffffffffff0\r\n" . $inner, [ 400, 413 ] ],
    );
}


sub ph_smuggling {
    my ($self, $ph) = @_;
    my $p = $self->{p};
    my (@rows, $bad);

    for my $rep (1 .. $p->{smuggle_reps}) {
        for my $loc (qw(store api)) {
            my $inner_id = "$self->{tag}smuggled-$loc-$rep";
            my $inner = "POST /store/a/$inner_id HTTP/1.1\r\nHost: abuse"
                      . "\r\nContent-Length: 2\r\n\r\n{}";

            for my $v (_smuggle_variants($inner)) {
                my ($name, $lines, $body, $want) = @$v;
                my $s = $self->_connect or next;
                my $wire = "POST /$loc/a/$self->{tag}smuggle-$name-$rep "
                         . "HTTP/1.1\r\n"
                         . "Host: abuse\r\n" . join('', map { "$_\r\n" }
                                                   @$lines)
                         . "\r\n" . $body;
                syswrite($s, $wire);
                # everything the server sends until it closes
                my $got = _read_all($s, 10, 1);
                close $s;

                my @answers = $got =~ m{^HTTP/1\.\d (\d{3})}mg;
                my $closed = 1;
                my $ok = @answers == 1 && grep { $_ == $answers[0] } @$want;
                push @rows, { variant => $name, loc => $loc,
                              answers => \@answers, ok => $ok ? 1 : 0 };
                $bad++ unless $ok;
                $self->{smuggled_ids}{$inner_id} = 1;
            }
        }
    }

    my %by;
    for my $r (@rows) {
        my $k = $r->{variant};
        $by{$k}{n}++;
        $by{$k}{ok} += $r->{ok};
        $by{$k}{got}{ join('+', @{ $r->{answers} }) || 'none' }++;
    }

    return {
        sent     => scalar @rows,
        rejected => scalar grep({ $_->{ok} } @rows),
        variants => \%by,
        summary  => sprintf('%d of %d rejected with one answer',
                            scalar grep({ $_->{ok} } @rows), scalar @rows),
    };
}


sub ph_keepalive {
    my ($self, $ph) = @_;
    my $p = $self->{p};
    my $n = $p->{keepalive};

    # one process holds every connection (the test's ulimit -n must allow
    # it: abuse.pl raises the soft limit)
    my $res = $self->_in_children(1, sub {
        my (@c, @out);

        for my $i (0 .. $n - 1) {
            my $s = $self->_connect
                or do { push @out, "$self->{tag}ka-$i 0"; next };
            push @c, [ $s, $i ];
        }

        for my $round (1, 2) {
            for my $c (@c) {
                my ($s, $i) = @$c;
                my $id = "$self->{tag}ka$round-$i";
                my $loc = $i % 10 ? 'store' : 'api';
                my $body = qq({"msg":"$id"});
                syswrite($s, "POST /$loc/a/$id HTTP/1.1\r\nHost: abuse\r\n"
                             . "Content-Type: application/json\r\n"
                             . "Content-Length: " . length($body)
                             . "\r\n\r\n$body");
            }
            for my $c (@c) {
                my ($s, $i) = @$c;
                push @out, "$self->{tag}ka$round-$i " . _status(_read_all($s, 30));
            }
            sleep $p->{ka_hold} if $round == 1;
        }

        close $_->[0] for @c;
        return @out;
    });

    my $st = $self->_acked($res);
    return { sent => scalar keys %$res, status => $st,
             summary => "$n connections, " . _statuses($st) };
}


sub ph_h2_reset {
    my ($self, $ph) = @_;
    my $port = $self->{t}->port('h2');
    my $out = `node $REPO/abuse/h2reset.js $port $self->{p}{h2_reset} 2>&1`;
    my %r = $out =~ /^(\w+)=(\S+)$/mg;

    # afterwards the port still serves HTTP/2
    my $after = $self->{t}->http2(port => $port,
                                  path => "/store/a/$self->{tag}h2-after",
                                  body => '{"msg":"after the reset"}');
    $self->_acked({ "$self->{tag}h2-after" => $after->{status} });

    return { sent => $r{streams} // 0, node => \%r,
             after => $after->{status},
             summary => ($out =~ s/\n/; /gr) . "after: $after->{status}" };
}


sub ph_h2_flood {
    my ($self, $ph) = @_;
    my $t = $self->{t};
    my $body = $t->write_file('h2flood.json', '{"msg":"h2 flood"}');
    my $n = $self->{p}{h2_flood};

    # nginx ends a connection after keepalive_requests (1000) streams
    my $c = int(($n + 999) / 1000);
    my $out = `h2load -n $n -c $c -m 100 -d $body -H 'content-type: application/json' http://127.0.0.1:@{[ $t->port('h2') ]}/store/h2flood 2>&1`;
    my ($ok, $failed, $errored) =
        $out =~ /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/;
    my ($s2xx) = $out =~ /status codes: (\d+) 2xx/;

    return { sent => $n, h2load_2xx => $s2xx // 0, failed => $failed // 0,
             summary => sprintf('%d requests over %d connections: %d 2xx, '
                                . '%d failed', $n, $c, $s2xx // 0,
                                $failed // 0) };
}


# Every attack at once: what the module meets in production is their sum.
# Each runs in a child of its own with the ids tagged "all-"; what it was
# told (acked, the smuggled inner ids) comes back through a file.
sub ph_together {
    my ($self, $ph) = @_;
    my $dir = $self->{t}->dir;
    my @attacks = grep { !/^(?:baseline|together)$/ } $self->phase_names;
    my (@pids, %out);

    for my $k (0 .. $#attacks) {
        my $pid = fork // croak "fork: $!";
        if (!$pid) {
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
            $SIG{PIPE} = 'IGNORE';
            # scratch files of _in_children apart from the other attacks'
            @$self{qw(tag child_run acked smuggled_ids)} =
                ('all-', 1000 * ($k + 1), {}, {});
            (my $sub = "ph_$attacks[$k]") =~ s/-/_/g;
            my $r = eval { $self->$sub({}) } // { error => "$@" };
            $self->{t}->write_file("together-$k.json", JSON::PP->new->encode({
                result => { summary => $r->{summary}, error => $r->{error},
                            status => $r->{status},
                            # headers trickled past client_header_timeout
                            # are cut by nginx (status 0): not counted
                            $r->{header_cut} ? ()
                                : (header_status => $r->{header_status}) },
                acked => $self->{acked},
                smuggled => $self->{smuggled_ids} }));
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }

    waitpid $_, 0 for @pids;

    my (%st, @summary);
    for my $k (0 .. $#attacks) {
        my $got = eval { JSON::PP->new->decode(
                             RdxTest::_slurp("$dir/together-$k.json")) }
            // { result => { error => 'no result' } };
        my $r = $got->{result};
        @{ $self->{acked} }{ keys %{ $got->{acked} // {} } } =
            values %{ $got->{acked} // {} };
        @{ $self->{smuggled_ids} }{ keys %{ $got->{smuggled} // {} } } =
            values %{ $got->{smuggled} // {} };
        for my $h ($r->{status}, $r->{header_status}) {
            $st{$_} += $h->{$_} for keys %{ $h // {} };
        }
        push @summary, "$attacks[$k]: "
                       . ($r->{error} ? "FAILED $r->{error}" : $r->{summary});
    }

    $self->{together_ran} = 1;

    return { sent => scalar @attacks, status => \%st,
             errors => scalar grep({ /: FAILED/ } @summary),
             summary => join('; ', @summary) };
}


sub _bomb {
    my ($self, $kind) = @_;
    my $t = $self->{t};
    my $path = $t->path("bomb.$kind");
    return $path if -s $path;

    my $mib = $self->{p}{bomb_mib};
    my $prog = $kind eq 'gzip' ? 'gzip -1' : 'zstd -q -1';
    system("head -c ${mib}M /dev/zero | $prog > $path") == 0
        or croak "making the $kind bomb failed";
    return $path;
}


sub ph_bombs {
    my ($self, $ph) = @_;
    my $t = $self->{t};
    my (%res, %sizes);

    for my $kind (qw(gzip zstd)) {
        my $bytes = $t->read_file($self->_bomb($kind));
        $sizes{$kind} = length $bytes;
        for my $i (1 .. $self->{p}{bombs}) {
            for my $loc (qw(store api)) {
                my $id = "$self->{tag}bomb-$kind-$loc-$i";
                my $r = $t->http(path => "/$loc/a/$id", body => $bytes,
                                 timeout => 60, headers => [
                                     'Content-Type' => 'application/json',
                                     'Content-Encoding' => $kind ]);
                $res{$id} = $r->{status} // 0;
            }
        }
    }

    my $st = $self->_acked(\%res);
    return { sent => scalar keys %res, status => $st,
             summary => sprintf('gzip %d bytes, zstd %d bytes, each '
                                . '%d MiB inflated: %s', $sizes{gzip},
                                $sizes{zstd}, $self->{p}{bomb_mib},
                                _statuses($st)) };
}


# ----------------------------------------------------------------- finish

# The bound of a worker's RSS high-water mark, from the configuration:
# its RSS at start, the module's buffer (records waiting), per seal job a
# decoded body at the cap and a zstd window of a segment, and per
# connection its pools and buffers (the most any phase
# held at once, as if all went to this worker), plus 16 MiB of slack for
# the allocator.
sub rss_bound {
    my ($self, $base_kib) = @_;
    my $p = $self->{p};
    # all at once: the slow, keepalive, pipelined and h2load connections
    my $held = $self->{together_ran}
               ? $p->{keepalive} + $p->{slow} + $p->{pipe_conns}
                 + int(($p->{h2_flood} + 999) / 1000)
               : max($p->{keepalive}, $p->{slow});
    my $conns = $held + 2 * $p->{steady} + 64;
    my $per_conn = $CONF{connection_pool} + $CONF{header_buffer}
                   + $CONF{request_pool} + $CONF{body_buffer};

    my $bound = $base_kib * 1024 + $CONF{buffer_size}
                + $CONF{seal_concurrency}
                  * ($CONF{max_decoded_size} + $CONF{segment_size})
                + $conns * $per_conn + 16 * $MIB;

    # Under ASan (make test-asan) freed memory waits in a quarantine of
    # 256 MiB, every allocation has redzones and every byte a shadow:
    # memory the module does not hold.  The bound then takes the
    # quarantine and twice the rest, still far below what an unbounded
    # growth over the phases reaches.
    $bound = 2 * $bound + 256 * $MIB if $ENV{TEST_NGINX_ASAN};

    return $bound;
}


sub finish {
    my ($self) = @_;
    my $t = $self->{t};
    my %v;

    # the steady client
    my (%res, %ms);
    for my $l (@{ $self->{steady} }) {
        my $r = $l->stop;
        my $m = $l->latencies;
        @res{ keys %$r } = values %$r;
        @ms{ keys %$m } = values %$m;
    }
    my @ids = keys %res;
    my @lat = sort { $a <=> $b } map { $ms{$_} // () } @ids;
    $v{steady} = {
        sent    => scalar @ids,
        ok      => scalar(grep { $res{$_} =~ /^2/ } @ids),
        noanswer => scalar(grep { $res{$_} == 0 } @ids),
        p50     => @lat ? $lat[int(0.50 * $#lat)] : undef,
        p99     => @lat ? $lat[int(0.99 * $#lat)] : undef,
        max     => @lat ? $lat[-1] : undef,
    };
    $v{steady}{errors} = $v{steady}{sent} - $v{steady}{ok};
    $v{steady}{error_rate} = @ids ? $v{steady}{errors} / @ids : 1;
    my %st;
    $st{$_}++ for values %res;
    $v{steady}{status} = \%st;
    $self->{acked}{"steady-$_"} = $res{$_} for @ids;
    $self->progress(sprintf 'steady client: %d requests, %d errors, p99 '
                    . '%.1f ms', scalar @ids, $v{steady}{errors},
                    $v{steady}{p99} // -1);

    # descriptors back to the baseline once the connections are gone
    my $fd_after;
    wait_for(sub {
        $fd_after = $self->worker_fds;
        return !grep {
            my $b = $self->{fd_before}{$_};
            !$b || $fd_after->{$_}{socket} > $b->{socket}
                || $fd_after->{$_}{other} > $b->{other}
        } keys %$fd_after;
    }, 30);
    $v{fd_before} = $self->{fd_before};
    $v{fd_after} = $fd_after;
    $v{fd_ok} = !grep {
        my $b = $self->{fd_before}{$_};
        !$b || $fd_after->{$_}{socket} > $b->{socket}
            || $fd_after->{$_}{other} > $b->{other}
            || $fd_after->{$_}{spool} > 2      # a log per stream at most
    } keys %$fd_after;
    $self->progress('fds after: ' . _fd_text($fd_after));

    # RSS high-water of each worker against the bound
    for my $pid ($t->worker_pids) {
        my $s = RdxTest::_slurp("/proc/$pid/status") // next;
        my ($hwm) = $s =~ /^VmHWM:\s+(\d+)/m;
        $v{rss}{$pid} = { hwm => $hwm * 1024,
                          bound => $self->rss_bound($self->{rss_base}{$pid}
                                                    // 0) };
    }
    $v{rss_ok} = %{ $v{rss} // {} }
                 && !grep { $_->{hwm} > $_->{bound} } values %{ $v{rss} };
    $v{workers_same} = join(' ', sort $t->worker_pids)
                       eq join(' ', sort @{ $self->{workers} });
    $self->progress('RSS high-water: ' . join(', ', map {
        sprintf '%s %.1f MiB (bound %.1f)', $_, $v{rss}{$_}{hwm} / $MIB,
                $v{rss}{$_}{bound} / $MIB } sort keys %{ $v{rss} }));

    # a graceful stop seals and ships the rest; then the archive, read by
    # the CLI
    $t->stop;
    my $cat = $t->path('archive.ndjson');
    my $rc = system(cli_path() . ' cat file://' . $t->path('archive')
                    . " > $cat 2> $cat.err") >> 8;
    $v{cat_rc} = $rc;

    my (%arch, $records, %uris);
    open my $fh, '<', $cat or croak "$cat: $!";
    while (my $line = <$fh>) {
        $records++;
        my ($uri) = $line =~ /"uri":"([^"]*)"/;
        $uris{$uri}++ if defined $uri;
        if ($line =~ /"abuse_seq":(\d+)/) {
            $arch{"steady-$1"}++;
        } elsif (defined $uri && $uri =~ m{^/(?:api|store)/a/([^"?]+)}) {
            $arch{$1}++;
        }
    }
    close $fh;

    my @acked = grep { $self->{acked}{$_} =~ /^2/ } keys %{ $self->{acked} };
    $v{records} = $records // 0;
    $v{acked} = scalar @acked;
    $v{ack_missing} = [ sort grep { !$arch{$_} } @acked ];
    $v{dup} = [ sort grep { $arch{$_} > 1 } keys %arch ];
    $v{smuggled_archived} = [ sort grep { $arch{$_} }
                              keys %{ $self->{smuggled_ids} // {} } ];
    $v{smuggled_upstream} = [ grep { ($_->{uri} // '') =~ /smuggled-/ }
                              $self->{vendor}->requests ];
    $v{bombs_too_large} = () = RdxTest::_slurp($cat) =~ /"decode_error":"too_large"/g;
    $self->progress(sprintf 'archive: %d records (reductrai cat exit %d); '
                    . '%d acknowledged, %d missing', $v{records}, $rc,
                    $v{acked}, scalar @{ $v{ack_missing} });

    $self->{verdict} = \%v;
    $self->{total_s} = time - $self->{t0};
    return $self;
}


# the RSS of each worker right after setup, for the bound
sub note_rss_base {
    my ($self) = @_;
    for my $pid ($self->{t}->worker_pids) {
        my $s = RdxTest::_slurp("/proc/$pid/status") // next;
        $self->{rss_base}{$pid} = $1 if $s =~ /^VmRSS:\s+(\d+)/m;
    }
}


sub check_error_log {
    my ($self) = @_;
    return $self->{t}->check_error_log;
}


sub teardown {
    my ($self) = @_;
    $self->{t}->_cleanup(0) if $self->{t};
}


# ----------------------------------------------------------------- report

sub _ncpu { my $n = `nproc 2>/dev/null`; chomp $n; $n || '?' }


# [name, ok, text] of every numbered check the report shows
sub report_checks {
    my ($self, %o) = @_;
    my $v = $self->{verdict};
    my $s = $v->{steady};
    my @c = (
        [ 'acknowledged records missing from the archive', 
          !@{ $v->{ack_missing} }, scalar @{ $v->{ack_missing} } ],
        [ 'every steady request answered', !$s->{noanswer},
          "$s->{noanswer} without an answer" ],
        [ 'file descriptors back to the baseline', $v->{fd_ok},
          'see the table' ],
        [ 'worker RSS high-water within the bound', $v->{rss_ok},
          'see the table' ],
        [ 'no worker replaced (no crash)', $v->{workers_same}, '' ],
        [ 'smuggled inner requests neither archived nor forwarded',
          !@{ $v->{smuggled_archived} } && !@{ $v->{smuggled_upstream} },
          scalar(@{ $v->{smuggled_archived} }) . ' archived, '
          . scalar(@{ $v->{smuggled_upstream} }) . ' forwarded' ],
    );

    if ($o{targets}) {
        push @c,
            [ "steady error rate ≤ $TARGET{error_rate}",
              $s->{error_rate} <= $TARGET{error_rate},
              sprintf('%.4f', $s->{error_rate}) ],
            [ "steady p99 ≤ $TARGET{p99_ms} ms",
              ($s->{p99} // 1e9) <= $TARGET{p99_ms},
              sprintf('%.1f ms', $s->{p99} // -1) ];
    }

    return @c;
}


sub report_markdown {
    my ($self, %o) = @_;
    my $v = $self->{verdict};
    my $s = $v->{steady};
    my $md = '';

    my $rev = `git -C $REPO describe --always --dirty 2>/dev/null` // '';
    chomp $rev;
    my ($nginx) = `nginx -v 2>&1` =~ m{nginx/(\S+)};

    $md .= "# Abuse suite report ($self->{profile})\n\n";
    $md .= sprintf "%s, commit %s, nginx %s, %s CPUs; whole run %.0f s.  "
        . "One nginx (worker_processes 2, worker_connections %d, "
        . "durability write, reductrai_buffer_size %d MiB, "
        . "reductrai_max_decoded_size %d MiB): /api/ forwards to a mock "
        . "vendor, /store/ answers itself; HTTP/2 on a second port.  A "
        . "steady client (%d per location) sends numbered records "
        . "throughout.\n\n",
        strftime('%Y-%m-%d %H:%M UTC', gmtime($self->{t0})), $rev || '?',
        $nginx // '?', _ncpu(), $self->{total_s} // 0,
        $self->{p}{worker_conns}, $CONF{buffer_size} / $MIB,
        $CONF{max_decoded_size} / $MIB, $self->{p}{steady};

    my @checks = $self->report_checks(targets => $o{targets});
    $md .= "| check | verdict | measured |\n|---|---|---|\n";
    $md .= "| $_->[0] | " . ($_->[1] ? 'ok' : '**FAILED**') . " | $_->[2] |\n"
        for @checks;

    $md .= "\n## Steady client\n\n";
    $md .= sprintf "%d requests, %d with a 2xx, %d errors (rate %.4f), "
        . "%d never answered; latency p50 %.1f ms, p99 %.1f ms, max %.1f "
        . "ms.  Statuses: %s.\n", $s->{sent}, $s->{ok}, $s->{errors},
        $s->{error_rate}, $s->{noanswer}, $s->{p50} // -1,
        $s->{p99} // -1, $s->{max} // -1, _statuses($s->{status});

    $md .= "\n## Phases\n\n| phase | what | seconds | outcome |\n"
         . "|---|---|--:|---|\n";
    for my $ph ($self->results) {
        $md .= sprintf "| %s | %s | %.1f | %s%s |\n", $ph->{name},
            $ph->{what}, $ph->{secs}, $ph->{summary} // '',
            $ph->{workers_changed} ? ' **(a worker was replaced)**' : '';
    }

    if (my ($sm) = grep { $_->{name} eq 'smuggling' } $self->results) {
        $md .= "\n## Smuggling variants\n\n| variant | sent | rejected "
             . "with one answer | answers |\n|---|--:|--:|---|\n";
        for my $k (sort keys %{ $sm->{variants} }) {
            my $b = $sm->{variants}{$k};
            $md .= "| $k | $b->{n} | $b->{ok} | "
                . _statuses($b->{got}) . " |\n";
        }
    }

    $md .= "\n## Workers\n\n| worker | RSS high-water (MiB) | bound (MiB) "
         . "| fds before | fds after |\n|---|--:|--:|---|---|\n";
    for my $pid (sort keys %{ $v->{rss} // {} }) {
        my ($b, $a) = ($v->{fd_before}{$pid}, $v->{fd_after}{$pid});
        my $f = sub { my $x = shift; $x ? "$x->{total} ($x->{socket} "
                      . "sockets, $x->{spool} spool, $x->{other} other)"
                      : '–' };
        $md .= sprintf "| %s | %.1f | %.1f | %s | %s |\n", $pid,
            $v->{rss}{$pid}{hwm} / $MIB, $v->{rss}{$pid}{bound} / $MIB,
            $f->($b), $f->($a);
    }
    $md .= "\nThe bound: the worker's RSS at start + reductrai_buffer_size "
        . "+ reductrai_seal_concurrency × (reductrai_max_decoded_size + "
        . "reductrai_segment_size, a zstd window) + the most connections any phase held × (connection, "
        . "request pools and header, body buffers) + 16 MiB.\n";

    $md .= sprintf "\n## Archive\n\n%d records read back with `reductrai "
        . "cat` (exit %d); %d requests acknowledged with a 2xx that the "
        . "suite can recognise, %d of them missing%s; %d recorded twice; "
        . "%d records kept raw as too large (bombs).\n", $v->{records},
        $v->{cat_rc}, $v->{acked}, scalar @{ $v->{ack_missing} },
        @{ $v->{ack_missing} } ? ' (' . join(', ', @{ $v->{ack_missing} }
                                             [0 .. min2(9, $#{ $v->{ack_missing} })]) . ')' : '',
        scalar @{ $v->{dup} }, $v->{bombs_too_large};

    return $md;
}


sub min2 { $_[0] < $_[1] ? $_[0] : $_[1] }


1;
