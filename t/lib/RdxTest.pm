package RdxTest;

# Test harness for ngx_http_reductrai_module: one temp dir and one nginx
# instance per test file, forked mock upstreams that record every body they
# receive, a raw HTTP client, a load generator and archive readers.
#
#   use lib 't/lib';
#   use RdxTest;
#   my $t = RdxTest->new;
#   my $up = $t->start_upstream(name => 'vendor');
#   $t->write_config(http => '... %%PORT_http%% ... %%PORT_vendor%% ...');
#   $t->start;
#   my $r = $t->http(path => '/x', body => '{}');
#   ...
#   $t->check_error_log;
#   done_testing;
#
# API (see each sub for details):
#   RdxTest->new(tmpdir => '/tmp')      $t->dir, path($f), conf_path
#   $t->port($name)                     free 127.0.0.1 port, stable per name
#   $t->mkdir_worker($name, mode =>, user =>)   dir writable by workers
#   $t->write_config(main =>, http =>, module => 1, file => 'x.conf')
#       placeholders %%DIR%%, %%PORT_<name>%%; returns the path
#   $t->start, stop, stop_fast, kill_master9, reload(allow_fail =>),
#       upgrade(keep_old =>), signal($sig), master_pid, worker_pids
#   ($rc, $out) = $t->nginx_t(conf => $path)
#   $up = $t->start_upstream(name =>, status =>, body =>, headers =>,
#       delay =>, close =>, workers =>); $up->set(...), requests, url,
#       port, stop
#   $t->http(port =>, method =>, path =>, headers => [k, v, ...], body =>,
#       chunked => N, split => [...], delay =>, abort_after => N,
#       http10 => 1, raw => $bytes, timeout =>) -> {status, headers, body}
#   $t->pipeline(port =>, requests => [{...}, ...]) -> list of responses
#   $t->http2(...)                      same via curl --http2-prior-knowledge
#   $t->load(port =>, path =>, n =>, concurrency =>, body => sub {},
#       stop_file =>) -> {id => status}; load_start(...) -> $l with
#       finish, stop, results, latencies ({id => ms}), running
#   $t->archive_objects($dir, decode => 1), archive_records($dir),
#       read_archive_object($path), write_archive_object($path, $ndjson),
#       parse_key($key), zstd_compress($bytes), zstd_uncompress($zst)
#   $t->metrics, metric($name), health, spool_segments
#   random_text($len)                   base64 of random bytes, $len chars
#   shim($name, $dir)                   t/shim/$name.c built as an LD_PRELOAD
#                                       library in $dir; returns its path
#   wait_for(sub {...}, $seconds, $what)
#   $t->check_error_log(allow => [qr/.../], stop => 1), error_log,
#       grep_log(qr/.../, since => $t->log_mark)
#
# Environment: TEST_NGINX_BINARY (default /usr/sbin/nginx), TEST_NGINX_ASAN
# (use objs/asan/ and preload libasan), TEST_NGINX_MODULE (explicit .so),
# TEST_NGINX_DEBUG (error_log at debug), TEST_NGINX_LEAVE (keep the temp
# dir), TEST_NGINX_TIMEOUT_SCALE (multiply timeouts; 3 by default under ASan).

use strict;
use warnings;

use Carp qw(croak);
use Config ();
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use Exporter qw(import);
use Fcntl qw(:DEFAULT);
use File::Basename qw(dirname);
use File::Find ();
use File::Path qw(make_path rmtree);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken refaddr);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT    = qw(wait_for);
our @EXPORT_OK = qw(wait_for parse_key random_text zstd_compress
                    zstd_uncompress shim);

my $REPO = abs_path(dirname(__FILE__) . '/../..');

# Timeouts grow under ASan, where nginx starts and serves several times
# slower; wait_for() returns as soon as its condition holds, so scaling
# costs nothing when things work.
my $SCALE = $ENV{TEST_NGINX_TIMEOUT_SCALE}
    // ($ENV{TEST_NGINX_ASAN} ? 3 : 1);

# Ports are claimed with a lock file per port, so that test files run in
# parallel (prove -j) never pick the same one between choosing it and
# nginx binding it.
my $PORT_DIR = '/tmp/rdx-test-ports';

# Objects still owning processes; END kills them even when the test died.
my %LIVE;


sub new {
    my ($class, %opt) = @_;

    my $base = $opt{tmpdir} // $ENV{TEST_NGINX_TMPDIR} // '/tmp';
    my $dir = tempdir('rdx-test-XXXXXX', DIR => $base, CLEANUP => 0);

    # Workers run as nobody and must reach files below the test dir.
    chmod 0755, $dir or croak "chmod $dir: $!";

    my $self = bless {
        dir      => $dir,
        owner    => $$,
        ports    => {},
        locks    => [],
        masters  => {},
        upstream => {},
        loads    => {},
        skip     => [],
        next_id  => 1,
        load_seq => 0,
        env      => $opt{env},          # for nginx: { NAME => value }
    }, $class;

    $self->{conf} = "$dir/nginx.conf";

    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};

    _become_subreaper();

    # A killed test (prove timeout, ^C) must still run END and clean up.
    for my $sig (qw(INT TERM HUP)) {
        $SIG{$sig} = sub { die "killed by SIG$sig\n" }
            if !defined $SIG{$sig} || $SIG{$sig} eq 'DEFAULT'
               || $SIG{$sig} eq '';
    }

    return $self;
}


sub dir       { $_[0]{dir} }
sub conf_path { $_[0]{conf} }
sub path      { "$_[0]{dir}/$_[1]" }
sub binary    { $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx' }
sub scale     { $SCALE }


sub module_path {
    return $ENV{TEST_NGINX_MODULE} if $ENV{TEST_NGINX_MODULE};
    return $ENV{TEST_NGINX_ASAN}
        ? "$REPO/objs/asan/ngx_http_reductrai_module.so"
        : "$REPO/objs/ngx_http_reductrai_module.so";
}


# Creates a directory the worker processes (user nobody when nginx starts
# as root) can write to.
sub mkdir_worker {
    my ($self, $name, %opt) = @_;
    my $path = "$self->{dir}/$name";

    make_path($path) unless -d $path;
    chmod $opt{mode} // 0755, $path or croak "chmod $path: $!";

    if ($> == 0) {
        my ($uid, $gid) = (getpwnam($opt{user} // 'nobody'))[2, 3];
        croak "no user " . ($opt{user} // 'nobody') unless defined $uid;
        chown $uid, $gid, $path or croak "chown $path: $!";
    }

    return $path;
}


sub write_file {
    my ($self, $name, $content) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '>:raw', $path or croak "open $path: $!";
    print $fh $content;
    close $fh or croak "close $path: $!";
    return $path;
}


sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    return _slurp($path);
}


# ---------------------------------------------------------------- ports

sub port {
    my ($self, $name) = @_;
    croak "port name required" unless defined $name;
    return $self->{ports}{$name} //= $self->_alloc_port;
}


sub _alloc_port {
    my ($self) = @_;

    unless (-d $PORT_DIR) {
        mkdir $PORT_DIR;
        chmod 01777, $PORT_DIR;
    }

    # Stay below the ephemeral range: nginx's own outgoing connections to
    # upstreams take ports from it and could grab ours before nginx binds.
    my ($eph) = split ' ', (_slurp('/proc/sys/net/ipv4/ip_local_port_range')
                            // '32768');
    my ($lo, $hi) = (10000, $eph - 1);
    ($lo, $hi) = (61000, 65000) if $hi - $lo < 1000;

    my %mine = map { $_ => 1 } grep { defined } values %{ $self->{ports} };

    for (1 .. 500) {
        my $port = $lo + int rand($hi - $lo);
        next if $mine{$port};

        my $lock = "$PORT_DIR/$port";
        my $fh;
        unless (sysopen $fh, $lock, O_WRONLY | O_CREAT | O_EXCL, 0644) {
            my $owner = _slurp($lock);
            unlink $lock if !$owner || $owner !~ /^(\d+)/ || !_alive($1);
            next;
        }
        print $fh "$$\n";
        close $fh;

        my $probe = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
            Listen => 1, ReuseAddr => 1);
        unless ($probe) {
            unlink $lock;
            next;
        }
        close $probe;

        push @{ $self->{locks} }, $lock;
        return $port;
    }

    croak "no free TCP port found";
}


# --------------------------------------------------------------- config

sub subst {
    my ($self, $text) = @_;
    my $dir = $self->{dir};

    $text =~ s/%%DIR%%/$dir/g;
    $text =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    croak "unknown placeholder $1" if $text =~ /(%%\w+%%)/;

    return $text;
}


sub write_config {
    my ($self, %opt) = @_;
    my $dir = $self->{dir};

    my $main = $self->subst($opt{main} // '');
    my $http = $self->subst($opt{http} // '');
    my $level = $ENV{TEST_NGINX_DEBUG} ? 'debug' : 'info';

    my $conf = "# written by RdxTest for $0\n";
    $conf .= "load_module " . $self->module_path . ";\n"
        if $opt{module} // 1;
    $conf .= "pid $dir/nginx.pid;\n"
           . "lock_file $dir/nginx.lock;\n"
           . "error_log $dir/error.log $level;\n";
    $conf .= "worker_processes 1;\n"
        unless $main =~ /^\s*worker_processes\b/m;

    # nginx keeps only listed variables across a binary upgrade (USR2);
    # without these the new master could not load an ASan module.
    $conf .= "env LD_PRELOAD;\nenv ASAN_OPTIONS;\nenv UBSAN_OPTIONS;\n"
        if $ENV{TEST_NGINX_ASAN};

    $conf .= "\n$main\n" if length $main;
    $conf .= "events {\n    worker_connections 1024;\n}\n"
        unless $main =~ /^\s*events\s*\{/m;

    # Debian's defaults point to /var/lib/nginx and /var/log/nginx, which a
    # test must not touch (and which may not exist).
    $conf .= "\nhttp {\n"
           . "    access_log $dir/access.log;\n"
           . "    client_body_temp_path $dir/client_body_temp;\n"
           . "    proxy_temp_path $dir/proxy_temp;\n"
           . "    fastcgi_temp_path $dir/fastcgi_temp;\n"
           . "    uwsgi_temp_path $dir/uwsgi_temp;\n"
           . "    scgi_temp_path $dir/scgi_temp;\n"
           . "\n$http\n}\n";

    my $path = $opt{file} ? $self->path($opt{file}) : $self->{conf};
    $self->write_file($path, $conf);

    if ($path eq $self->{conf}) {
        $self->{listen} = [ _listen_ports($conf) ];
        $self->{expect_workers} = _expect_workers($main);
    }

    return $path;
}


# TCP ports nginx must accept on once it runs (IPv4 and port-only listens).
sub _listen_ports {
    my ($conf) = @_;
    my %ports;

    for my $addr ($conf =~ /(?:^|[;{])\s*listen\s+([^\s;]+)/mg) {
        next if $addr =~ /^(unix:|\[)/;
        $ports{$1} = 1 if $addr =~ /(?:^|:)(\d+)$/;
    }

    return sort { $a <=> $b } keys %ports;
}


sub _expect_workers {
    my ($main) = @_;
    return 0 if $main =~ /^\s*master_process\s+off/m;
    return $1 if $main =~ /^\s*worker_processes\s+(\d+)/m;
    return 1;
}


# ---------------------------------------------------------- nginx runner

sub _nginx_env {
    my ($self) = @_;
    my %env = %{ $self->{env} // {} };
    return \%env unless $ENV{TEST_NGINX_ASAN};

    my $lib = `gcc -print-file-name=libasan.so 2>/dev/null`;
    chomp $lib;
    croak "libasan.so not found (gcc -print-file-name)" unless $lib =~ m{/};

    # Workers run as nobody and write their own reports, so the directory
    # must be writable by everyone.
    my $asan = "$self->{dir}/asan";
    unless (-d $asan) {
        mkdir $asan or croak "mkdir $asan: $!";
        chmod 01777, $asan;
    }

    # The sanitizer's runtime wants to come first in LD_PRELOAD.  But its
    # allocator reads the clock while it holds a lock, and libfaketime,
    # reached that way before it is set up, calls dlsym(), which allocates:
    # nginx hangs at startup.  A test's own preload comes first, then, and
    # the order check is off.
    my @pre = $env{LD_PRELOAD} // ();

    return {
        %env,
        LD_PRELOAD   => join(' ', @pre, $lib),
        ASAN_OPTIONS => "detect_leaks=0:abort_on_error=0"
                        . (@pre ? ':verify_asan_link_order=0' : '')
                        . ":log_path=$asan/asan",

        # UBSan (gcc's libubsan) writes to stderr, which nginx points at
        # error.log, whatever log_path says; a stack makes the report
        # worth reading there
        UBSAN_OPTIONS => "print_stacktrace=1",
    };
}


sub _nginx_cmd {
    my ($self, $conf, @extra) = @_;
    my $dir = $self->{dir};
    return ($self->binary, @extra, '-p', "$dir/", '-c', $conf,
            '-e', "$dir/error.log");
}


sub start {
    my ($self) = @_;
    my $dir = $self->{dir};
    my $pidfile = "$dir/nginx.pid";

    croak "no config: call write_config first" unless -f $self->{conf};
    if (my $pid = $self->master_pid) {
        croak "nginx is already running (master $pid)";
    }
    unlink $pidfile;

    my ($rc, $out) = _run([ $self->_nginx_cmd($self->{conf}) ],
                          env => $self->_nginx_env, timeout => 60);
    die "nginx failed to start (exit $rc):\n$out\n" . $self->_log_tail
        if $rc != 0;

    # The daemonised master writes the pid file after it forks.
    my $pid;
    wait_for(sub { $pid = $self->master_pid }, 10)
        or die "nginx wrote no live pid to $pidfile\n$out\n"
               . $self->_log_tail;
    $self->{masters}{$pid} = 1;

    $self->_wait_ready($pid, 'start');
    return $pid;
}


# Ready = every listen port accepts and the expected workers exist, since
# the kernel accepts on the master's sockets before any worker runs.
sub _wait_ready {
    my ($self, $pid, $what) = @_;

    for my $port (@{ $self->{listen} // [] }) {
        wait_for(sub {
            die "nginx master $pid exited during $what\n" . $self->_log_tail
                unless _alive($pid);
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $port, Proto => 'tcp', Timeout => 1);
            return $s ? 1 : 0;
        }, 10) or die "nginx does not accept on port $port after $what\n"
                      . $self->_log_tail;
    }

    my $want = $self->{expect_workers} // 1;
    return 1 unless $want;

    wait_for(sub {
        die "nginx master $pid exited during $what\n" . $self->_log_tail
            unless _alive($pid);
        return grep({ _cmdline($_) !~ /shutting down/ }
                    $self->_workers_of($pid)) >= $want;
    }, 10) or die "nginx has no $want worker(s) after $what\n"
                  . $self->_log_tail;

    return 1;
}


sub master_pid {
    my ($self, $file) = @_;
    my $text = _slurp($file // "$self->{dir}/nginx.pid") // return;
    my ($pid) = $text =~ /^(\d+)/ or return;

    # A stale pid file (after kill -9) may name a reused pid.
    return _alive($pid) && _cmdline($pid) =~ /nginx/ ? $pid : undef;
}


# All worker processes of the running master, including old ones still
# shutting down after a reload.
sub worker_pids {
    my ($self) = @_;
    my $pid = $self->master_pid or return ();
    return $self->_workers_of($pid);
}


sub _workers_of {
    my ($self, $master) = @_;
    return grep { _cmdline($_) =~ /worker process/ } _children($master);
}


sub signal {
    my ($self, $sig) = @_;
    my $pid = $self->master_pid or croak "nginx is not running";
    return kill $sig, $pid;
}


sub stop      { my ($self, %o) = @_; $self->_stop('QUIT', $o{timeout} // 30) }
sub stop_fast { my ($self, %o) = @_; $self->_stop('TERM', $o{timeout} // 30) }


sub _stop {
    my ($self, $sig, $timeout) = @_;
    my $pid = $self->master_pid or return 1;

    kill $sig, $pid;
    return 1 if wait_for(sub { !_alive($pid) }, $timeout);

    local $Test::Builder::Level = $Test::Builder::Level + 2;
    Test::More::fail("nginx master $pid exits on SIG$sig within "
                     . ($timeout * $SCALE) . "s");
    Test::More::diag($self->_log_tail);
    _kill_tree($pid);
    unlink "$self->{dir}/nginx.pid";
    return 0;
}


# Like a crash of the whole instance: nothing gets to clean up.
sub kill_master9 {
    my ($self) = @_;
    my $pid = $self->master_pid or croak "nginx is not running";
    _kill_tree($pid);
    return $pid;
}


sub reload {
    my ($self, %opt) = @_;
    my $pid = $self->master_pid or croak "nginx is not running";
    my %old = map { $_ => 1 } $self->_workers_of($pid);
    my $mark = $self->log_mark;
    my $want = $self->{expect_workers} // 1;

    kill 'HUP', $pid;

    # A config nginx refuses is logged as [emerg] and the old workers keep
    # running: report that at once instead of waiting for the timeout.
    my $failed;
    my $done = wait_for(sub {
        if (my @e = $self->grep_log(qr/\[emerg\]/, since => $mark)) {
            $failed = join '', @e;
            return 1;
        }
        my @w = $self->_workers_of($pid);
        return 0 if grep { $old{$_} } @w;
        return grep({ !$old{$_} } @w) >= $want;
    }, $opt{timeout} // 30);

    if ($failed) {
        return 0 if $opt{allow_fail};
        die "nginx reload failed:\n$failed";
    }
    die "nginx workers not replaced after reload\n" . $self->_log_tail
        unless $done;

    $self->_wait_ready($pid, 'reload');
    return 1;
}


# Binary upgrade: USR2 starts a new master beside the old one; unless
# keep_old is set, the old one then gets QUIT, as an operator would do.
sub upgrade {
    my ($self, %opt) = @_;
    my $dir = $self->{dir};
    my $old = $self->master_pid or croak "nginx is not running";

    kill 'USR2', $old;

    my $new;
    wait_for(sub {
        $new = $self->master_pid;
        return $new && $new != $old
               && ($self->master_pid("$dir/nginx.pid.oldbin") // 0) == $old;
    }, 30) or die "binary upgrade started no new master\n" . $self->_log_tail;
    $self->{masters}{$new} = 1;

    $self->_wait_ready($new, 'upgrade');
    return $new if $opt{keep_old};

    kill 'QUIT', $old;
    wait_for(sub { !_alive($old) }, 30)
        or die "old master $old did not exit after QUIT\n";

    return $new;
}


sub nginx_t {
    my ($self, %opt) = @_;
    my $log = "$self->{dir}/error.log";
    my $from = -s $log // 0;

    my ($rc, $out) = _run([ $self->_nginx_cmd($opt{conf} // $self->{conf},
                                              '-t') ],
                          env => $self->_nginx_env);

    # Whatever nginx -t wrote into error.log is expected output of a
    # negative test, not a fault of the running server.
    my $to = -s $log // 0;
    if ($to > $from) {
        push @{ $self->{skip} }, [ $from, $to ];
        my $logged = substr(_slurp($log) // '', $from, $to - $from);
        for my $line (split /^/, $logged) {
            (my $msg = $line) =~ s/^\S+ \S+ \[\w+\] \d+#\d+: //;
            chomp $msg;
            $out .= $line if index($out, $msg) < 0;
        }
    }

    return ($rc, $out);
}


# -------------------------------------------------------------- logs

sub error_log {
    my ($self) = @_;
    return _slurp("$self->{dir}/error.log") // '';
}


sub log_mark {
    my ($self) = @_;
    return -s "$self->{dir}/error.log" // 0;
}


sub grep_log {
    my ($self, $re, %opt) = @_;
    my $text = $self->error_log;
    $text = substr($text, $opt{since}) if $opt{since};
    return grep { $_ =~ $re } split /^/, $text;
}


sub _log_tail {
    my ($self, $n) = @_;
    my @lines = split /^/, $self->error_log;
    $n //= 30;
    @lines = @lines[-$n .. -1] if @lines > $n;
    return "--- tail of $self->{dir}/error.log:\n" . join('', @lines);
}


my @BAD_LOG = (
    qr/\[alert\]/, qr/\[crit\]/, qr/\[emerg\]/, qr/AddressSanitizer/,
    qr/LeakSanitizer/, qr/runtime error/, qr/Segmentation fault/,
    qr/exited on signal/,
);


sub check_error_log {
    my ($self, %opt) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @allow = @{ $opt{allow} // [] };

    # Stopping first makes crashes on the shutdown path show up too.
    $self->stop if ($opt{stop} // 1) && $self->master_pid;

    my $text = $self->error_log;
    my ($off, @bad) = (0);

    LINE: for my $line (split /^/, $text) {
        my $at = $off;
        $off += length $line;
        for my $r (@{ $self->{skip} }) {
            next LINE if $at >= $r->[0] && $at < $r->[1];
        }
        next unless grep { $line =~ $_ } @BAD_LOG;
        next if grep { $line =~ $_ } @allow;
        push @bad, $line;
    }

    my @asan = grep { -f } (glob("$self->{dir}/asan.*"),
                            glob("$self->{dir}/asan/asan.*"));

    my $ok = Test::More::ok(!@bad && !@asan,
        'error.log has no alert, crit, emerg, crash or sanitizer report');
    unless ($ok) {
        Test::More::diag("error.log:\n", @bad) if @bad;
        for my $f (@asan) {
            my @l = split /^/, _slurp($f) // '';
            @l = @l[0 .. 59] if @l > 60;
            Test::More::diag("$f:\n", @l);
        }
    }

    return $ok;
}


# --------------------------------------------------------- wait helper

sub wait_for {
    shift if ref $_[0] && ref $_[0] ne 'CODE';
    my ($cond, $timeout, $what) = @_;

    $timeout = ($timeout // 10) * $SCALE;
    my $deadline = time + $timeout;

    for ( ;; ) {
        my $r = $cond->();
        return $r if $r;
        last if time >= $deadline;
        sleep 0.05;
    }

    Test::More::diag("timed out after ${timeout}s waiting for $what")
        if defined $what;
    return 0;
}


# ------------------------------------------------------------ upstream

sub start_upstream {
    my ($self, %opt) = @_;
    my $name = $opt{name} // 'vendor';
    croak "upstream $name already running"
        if $self->{upstream}{$name} && @{ $self->{upstream}{$name}{pids} };

    my $up = RdxTest::Upstream->_start($self, %opt, name => $name);
    $self->{upstream}{$name} = $up;
    return $up;
}


sub upstream { $_[0]{upstream}{$_[1] // 'vendor'} }


# -------------------------------------------------------------- client

sub http {
    my ($self, %opt) = @_;
    my $timeout = ($opt{timeout} // 10) * $SCALE;
    my $deadline = time + $timeout;
    my $method = $opt{method} // (defined $opt{body} ? 'POST' : 'GET');

    local $SIG{PIPE} = 'IGNORE';

    # raw: bytes sent as they are, for requests nginx must refuse.
    my ($head, $body) = defined $opt{raw}
        ? ('', $opt{raw})
        : _build_request(%opt, method => $method, close => !$opt{keepalive});
    my $wire = $head . $body;

    my $sock = _connect($opt{port} // $self->port('http'), $timeout)
        or return { status => 0, headers => {}, body => '',
                    error => "connect: $!" };

    if (defined $opt{abort_after}) {
        _write_all($sock, $head . substr($body, 0, $opt{abort_after}),
                   $deadline);
        # Give nginx time to read what was sent, so the abort happens in
        # the middle of the body rather than racing the first bytes.
        sleep($opt{delay} // 0.1);
        close $sock;
        return undef;
    }

    my $sent = 1;
    if ($opt{split}) {
        my @pieces;
        my $pos = 0;
        for my $n (@{ $opt{split} }) {
            push @pieces, substr($wire, $pos, $n);
            $pos += $n;
        }
        push @pieces, substr($wire, $pos) if $pos < length $wire;
        for my $i (0 .. $#pieces) {
            sleep($opt{delay} // 0.1) if $i;
            $sent = _write_all($sock, $pieces[$i], $deadline) or last;
        }
    } else {
        $sent = _write_all($sock, $wire, $deadline);
    }

    # Even when the write failed the server may have answered early
    # (413, 400), so read whatever is there.
    my $buf = '';
    my ($res, $why) = _read_response($sock, \$buf, $deadline, $method);
    close $sock;

    return $res if $res;
    return { status => 0, headers => {}, body => '',
             error => $why . ($sent ? '' : ' (after a failed write)') };
}


# Sends several requests in one write on one connection (the last one with
# Connection: close) and returns their responses in order; a response that
# never came is {status => 0}.
sub pipeline {
    my ($self, %opt) = @_;
    my @reqs = @{ $opt{requests} // [] };
    my $timeout = ($opt{timeout} // 10) * $SCALE;
    my $deadline = time + $timeout;
    my ($wire, @methods) = ('');

    local $SIG{PIPE} = 'IGNORE';

    for my $i (0 .. $#reqs) {
        my %r = %{ $reqs[$i] };
        my $m = $r{method} // (defined $r{body} ? 'POST' : 'GET');
        my ($h, $b) = _build_request(%r, method => $m, close => $i == $#reqs);
        $wire .= $h . $b;
        push @methods, $m;
    }

    my @res;
    if (my $sock = _connect($opt{port} // $self->port('http'), $timeout)) {
        _write_all($sock, $wire, $deadline);
        my $buf = '';
        for my $m (@methods) {
            my ($r) = _read_response($sock, \$buf, $deadline, $m) or last;
            push @res, $r;
            last if $r->{close};
        }
        close $sock;
    }

    push @res, { status => 0, headers => {}, body => '' } while @res < @reqs;
    return @res;
}


sub http2 {
    my ($self, %opt) = @_;
    my $dir = $self->{dir};
    my $timeout = ($opt{timeout} // 10) * $SCALE;
    my $port = $opt{port} // $self->port('http2');
    my $method = $opt{method} // (defined $opt{body} ? 'POST' : 'GET');
    my $tag = "curl-" . $$ . '-' . ++$self->{curl_seq};

    my @cmd = ('curl', '--http2-prior-knowledge', '-s', '-S',
               '--noproxy', '*', '--max-time', $timeout,
               '-o', "$dir/$tag.body", '-D', "$dir/$tag.head",
               '-X', $method, '-H', 'Expect:');

    my @h = @{ $opt{headers} // [] };
    while (my ($k, $v) = splice @h, 0, 2) {
        push @cmd, '-H', "$k: $v";
    }
    if (defined $opt{body}) {
        $self->write_file("$tag.req", $opt{body});
        push @cmd, '--data-binary', "\@$dir/$tag.req";
    }
    push @cmd, "http://127.0.0.1:$port" . ($opt{path} // '/');

    my ($rc, $err) = _run(\@cmd);
    my $headtext = _slurp("$dir/$tag.head") // '';
    my $body = _slurp("$dir/$tag.body") // '';
    unlink map { "$dir/$tag.$_" } qw(head body req);

    return { status => 0, headers => {}, body => '',
             error => "curl exit $rc: $err" } if $rc != 0;

    # Skip interim (1xx) header blocks; the last block is the response.
    my @blocks = grep { /^HTTP\// } split /\r?\n\r?\n/, $headtext;
    my ($status, $headers) = (0, {});
    if (@blocks) {
        my ($line, @lines) = split /\r?\n/, $blocks[-1];
        ($status) = $line =~ m{^HTTP/\S+ (\d{3})};
        $headers = _parse_header_lines(@lines);
    }

    return { status => $status // 0, headers => $headers, body => $body };
}


# Returns the wire form of a request as (head, body).
sub _build_request {
    my (%opt) = @_;
    my @h = @{ $opt{headers} // [] };
    my %has;
    for (my $i = 0; $i < @h; $i += 2) {
        $has{ lc $h[$i] } = 1;
    }

    my $proto = $opt{http10} ? 'HTTP/1.0' : 'HTTP/1.1';
    my $head = "$opt{method} " . ($opt{path} // '/') . " $proto\r\n";
    $head .= "Host: localhost\r\n" unless $has{host};
    for (my $i = 0; $i < @h; $i += 2) {
        $head .= "$h[$i]: $h[$i + 1]\r\n";
    }

    my $body = '';
    if ($opt{chunked}) {
        $head .= "Transfer-Encoding: chunked\r\n"
            unless $has{'transfer-encoding'};
        $body = _chunk($opt{body} // '', $opt{chunked});
    } elsif (defined $opt{body}) {
        $head .= "Content-Length: " . length($opt{body}) . "\r\n"
            unless $has{'content-length'};
        $body = $opt{body};
    }

    $head .= "Connection: close\r\n"
        if $opt{close} && !$has{connection} && !$opt{http10};

    return ($head . "\r\n", $body);
}


sub _chunk {
    my ($data, $size) = @_;
    my $out = '';
    for (my $pos = 0; $pos < length $data; $pos += $size) {
        my $piece = substr($data, $pos, $size);
        $out .= sprintf("%x\r\n", length $piece) . $piece . "\r\n";
    }
    return $out . "0\r\n\r\n";
}


sub _connect {
    my ($port, $timeout) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => $timeout)
        or return;
    binmode $sock;
    $sock->blocking(0);
    return $sock;
}


sub _write_all {
    my ($sock, $data, $deadline) = @_;
    my $sel = IO::Select->new($sock);
    my $off = 0;

    while ($off < length $data) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return 0;
        }
        $off += $n;
    }

    return 1;
}


# Reads more bytes into $$buf: returns the count, 0 at EOF, undef on error
# or timeout (with the reason as second value).
sub _fill {
    my ($sock, $buf, $deadline) = @_;
    my $sel = IO::Select->new($sock);

    for ( ;; ) {
        my $left = $deadline - time;
        return (undef, 'timeout') if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($sock, $$buf, 65536, length $$buf);
        return ($n) if defined $n;
        next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        return (undef, "read: $!");
    }
}


sub _parse_header_lines {
    my %h;
    for my $line (@_) {
        my ($k, $v) = $line =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    return \%h;
}


# Reads one response from $sock (leftover bytes stay in $$buf for the next
# one). Returns ({status, headers, body, close}) or (undef, reason); the
# reason is "closed" when the peer closed before sending any byte, which
# is what a stale keep-alive connection looks like.
sub _read_response {
    my ($sock, $buf, $deadline, $method) = @_;
    my $got = length $$buf;

    for ( ;; ) {
        my $end;
        while (($end = index($$buf, "\r\n\r\n")) < 0) {
            my ($n, $why) = _fill($sock, $buf, $deadline);
            if (!$n) {
                return (undef, 'closed')
                    if !$got && (defined $n || $why =~ /reset/i);
                return (undef, $why // 'eof in response header');
            }
            $got += $n;
        }

        my $head = substr($$buf, 0, $end + 4, '');
        my ($line, @lines) = split /\r\n/, $head;
        my ($proto, $status, $reason) =
            $line =~ m{^HTTP/(\d\.\d) (\d{3})(?: (.*))?$}
            or return (undef, "bad status line: $line");
        my $h = _parse_header_lines(@lines);

        next if $status >= 100 && $status < 200 && $status != 101;

        my $close = ($h->{connection} // '') =~ /close/i
            || ($proto eq '1.0'
                && ($h->{connection} // '') !~ /keep-alive/i);
        my $body = '';
        my $res = { status => $status + 0, reason => $reason // '',
                    headers => $h, body => \$body };

        if ($method eq 'HEAD' || $status == 204 || $status == 304) {
            # no body
        } elsif (($h->{'transfer-encoding'} // '') =~ /chunked/i) {
            _read_chunked($sock, $buf, $deadline, \$body)
                or $res->{incomplete} = 1;
        } elsif (defined $h->{'content-length'}) {
            my $len = $h->{'content-length'};
            while (length $$buf < $len) {
                my ($n) = _fill($sock, $buf, $deadline);
                last unless $n;
            }
            $res->{incomplete} = 1 if length $$buf < $len;
            $body = substr($$buf, 0, $len, '');
        } else {
            for ( ;; ) {
                my ($n) = _fill($sock, $buf, $deadline);
                last unless $n;
            }
            $body = $$buf;
            $$buf = '';
            $close = 1;
        }

        $res->{body} = $body;
        $res->{close} = $close ? 1 : 0;
        return ($res);
    }
}


sub _read_chunked {
    my ($sock, $buf, $deadline, $body) = @_;

    for ( ;; ) {
        my $eol;
        while (($eol = index($$buf, "\r\n")) < 0) {
            my ($n) = _fill($sock, $buf, $deadline);
            return 0 unless $n;
        }
        my $line = substr($$buf, 0, $eol + 2, '');
        my ($size) = $line =~ /^([0-9a-fA-F]+)/ or return 0;
        $size = hex $size;

        if ($size == 0) {
            # Trailer section, ends with an empty line.
            for ( ;; ) {
                while (($eol = index($$buf, "\r\n")) < 0) {
                    my ($n) = _fill($sock, $buf, $deadline);
                    return 0 unless $n;
                }
                my $t = substr($$buf, 0, $eol + 2, '');
                return 1 if $t eq "\r\n";
            }
        }

        while (length $$buf < $size + 2) {
            my ($n) = _fill($sock, $buf, $deadline);
            return 0 unless $n;
        }
        $$body .= substr($$buf, 0, $size, '');
        substr($$buf, 0, 2, '');
    }
}


# ----------------------------------------------------------------- load

sub load {
    my ($self, %opt) = @_;
    return $self->load_start(%opt)->finish;
}


sub load_start {
    my ($self, %opt) = @_;
    my $l = RdxTest::Load->_start($self, %opt);
    $self->{loads}{refaddr $l} = $l;
    weaken $self->{loads}{refaddr $l};
    return $l;
}


# ------------------------------------------------------------- archive

# A configuration of the module as most tests want it: file:// storage in
# <dir>/archive, the spool in <dir>/spool, one tapped location forwarding to
# the mock upstream "vendor", and /health and /metrics.  Options add lines:
# main, http (http block), server, location (the tapped location), and the
# module's http-level directives as name => value (durability => 'write').
sub reductrai_config {
    my ($self, %o) = @_;

    my $archive = $self->mkdir_worker('archive');
    $o{$_} //= '' for qw(main http server location);
    $o{buffer} //= '1m';

    my %directives = (
        storage     => "file://$archive",
        spool       => "%%DIR%%/spool",
        segment_age => '1s',
        %{ $o{directives} // {} },
    );

    my $http = '';
    for my $name (sort keys %directives) {
        next unless defined $directives{$name};
        $http .= "    reductrai_$name $directives{$name};
";
    }

    $http .= <<"EOT";
    client_body_buffer_size $o{buffer};
    client_max_body_size 64m;

    upstream vendor {
        server 127.0.0.1:%%PORT_vendor%%;
    }

$o{http}
    server {
        listen 127.0.0.1:%%PORT_http%%;

        location / {
            reductrai on;
$o{location}
            proxy_pass http://vendor;
        }

        location = /health {
            reductrai_health;
        }

        location = /metrics {
            reductrai_metrics;
        }

$o{server}
    }
EOT

    return $self->write_config(main => $o{main}, http => $http);
}


sub archive_dir { $_[0]->path('archive') }


# Every record in the archive, by id, once each object has been shipped.
sub wait_archived {
    my ($self, $count, $timeout) = @_;
    my @records;

    wait_for(sub {
        @records = $self->archive_records($self->archive_dir);
        return @records >= $count;
    }, $timeout // 20, "$count records archived");

    return @records;
}


# /metrics as { 'name{labels}' => value }
sub metrics {
    my ($self, %o) = @_;
    my $r = $self->http(method => 'GET', path => '/metrics', %o);
    my %m;

    for my $line (split /\n/, $r->{body} // '') {
        next if $line =~ /^#/ || $line !~ /^(\S+)\s+(\S+)$/;
        $m{$1} = $2;
    }

    return \%m;
}


# one value of /metrics, 'absent' when it is not there
sub metric {
    my ($self, $name) = @_;
    return $self->metrics->{$name} // 'absent';
}


# sealed segments waiting in <dir>/spool
sub spool_segments {
    my ($self) = @_;
    my @s = glob($self->path('spool') . '/*.zst');
    return scalar @s;
}


# /metrics of a stopped instance: start it, read, stop it again
sub metrics_after_start {
    my ($self) = @_;
    my $running = $self->master_pid;

    $self->start unless $running;
    my $m = $self->metrics;
    $self->stop unless $running;

    return $m;
}


# /health as (status code, decoded body)
sub health {
    my ($self, %o) = @_;
    my $r = $self->http(method => 'GET', path => '/health', %o);
    my $body = eval { JSON::PP->new->decode($r->{body}) };

    return ($r->{status}, $body);
}


sub archive_objects {
    my ($self, $dir, %opt) = @_;
    my @files;

    return () unless defined $dir && -d $dir;

    File::Find::find({ no_chdir => 1, wanted => sub {
        push @files, $File::Find::name
            if -f $File::Find::name && /\.ndjson\.zst\z/;
    } }, $dir);

    my @objects;
    for my $path (sort @files) {
        (my $key = $path) =~ s{^\Q$dir\E/+}{};
        push @objects, read_archive_object($path, %opt, key => $key);
    }

    return @objects;
}


sub archive_records {
    my ($self, $dir, %opt) = @_;
    return map { @{ $_->{records} } } $self->archive_objects($dir, %opt);
}


# Reads one object: {path, key, size, records, lines, partial, trailer,
# raw_bytes, raw_sha256, error}. A line that is not valid JSON gives an
# undef record, so that records and lines stay aligned.
sub read_archive_object {
    shift if ref $_[0];
    my ($path, %opt) = @_;

    my $bytes = _slurp($path) // '';
    my $obj = { path => $path, key => $opt{key} // $path,
                size => length $bytes, trailer => _parse_trailer($bytes) };

    my ($rc, $raw, $err) = _run_out([ 'zstd', '-dcq', '--', $path ]);
    $obj->{error} = "zstd exit $rc: $err" if $rc != 0;
    $obj->{raw_bytes} = length $raw;
    $obj->{raw_sha256} = sha256_hex($raw);

    my @lines = split /\n/, $raw, -1;
    my $last = pop @lines;
    $obj->{partial} = $last if length $last;
    $obj->{lines} = \@lines;

    my $json = JSON::PP->new->utf8;
    $obj->{records} = ($opt{decode} // 1)
        ? [ map { my $l = $_; scalar eval { $json->decode($l) } } @lines ]
        : [];

    return $obj;
}


# The intact frames of a spool log (DESIGN.md, "Spool file"), as
# [offset, length, head, body]; reading stops at the first frame that is
# cut short or not a frame (checksums are the module's to verify).
sub read_spool_log {
    shift if ref $_[0];
    my ($path) = @_;
    my $data = _slurp($path) // '';
    return () unless substr($data, 0, 8) eq 'RDXSPOOL';

    my ($off, @frames) = (16);
    while ($off + 32 <= length $data) {
        my ($magic, $crc, $hlen) = unpack 'a4 V V', substr($data, $off, 12);
        my ($lo, $hi) = unpack 'V V', substr($data, $off + 16, 8);
        my $len = 32 + $hlen + $lo + $hi * 2**32;
        last if $magic ne 'RDXF' || $off + $len > length $data;
        push @frames, [ $off, $len, substr($data, $off + 32, $hlen),
                        substr($data, $off + 32 + $hlen, $len - 32 - $hlen) ];
        $off += $len;
    }

    return @frames;
}


# Trailer layout (DESIGN.md): ... | magic 0x184D2A50 LE | size S LE |
# JSON (S - 8 bytes) | frame length L LE | "RDX1", where L = S + 8.
sub _parse_trailer {
    my ($bytes) = @_;
    my $size = length $bytes;

    return undef if $size < 16 || substr($bytes, -4) ne 'RDX1';
    my $len = unpack 'V', substr($bytes, -8, 4);
    return undef if $len < 16 || $len > $size;

    my ($magic, $s) = unpack 'VV', substr($bytes, $size - $len, 8);
    return undef if $magic != 0x184D2A50 || $s != $len - 8;

    my $text = substr($bytes, $size - $len + 8, $s - 8);
    my $t = eval { JSON::PP->new->utf8->decode($text) };
    return ref $t eq 'HASH' ? $t : undef;
}


# Builds an object the way the module seals one; for tests of readers
# (this harness, the CLI) that must not depend on the module.
sub write_archive_object {
    shift if ref $_[0];
    my ($path, $ndjson, %trailer) = @_;

    my $zst = zstd_compress($ndjson);

    my @lines = grep { length } split /\n/, $ndjson;
    my ($first) = ($lines[0] // '') =~ /"ts":"([^"]*)"/;
    my ($last) = ($lines[-1] // '') =~ /"ts":"([^"]*)"/;

    my $index = {
        v => 1, count => scalar @lines, first_ts => $first // '',
        last_ts => $last // '', raw_bytes => length $ndjson,
        sha256 => sha256_hex($ndjson), %trailer,
    };

    my $json = JSON::PP->new->canonical->encode($index);
    my $frame_len = 8 + length($json) + 8;
    my $trailer = pack('VV', 0x184D2A50, $frame_len - 8) . $json
                . pack('V', $frame_len) . 'RDX1';

    make_path(dirname($path));
    open my $fh, '>:raw', $path or croak "open $path: $!";
    print $fh $zst, $trailer;
    close $fh or croak "close $path: $!";

    return $path;
}


# Fills a spool with $n sealed segments of a dead worker, as a long storage
# outage leaves them (one small record each, under the spool's naming
# scheme): stream "outage", hour 2026-01-01 00, instance "gone", pid 1.
# Returns $n.
sub write_sealed_segments {
    shift if ref $_[0];
    my ($spool, $n) = @_;
    my $first_ms = 1767225600000;

    my $template = "$spool/.template";
    write_archive_object($template,
        qq({"id":"gone-1-1000-1","ts":"2026-01-01T00:00:00.000Z",)
        . qq("stream":"outage","method":"POST","uri":"/","size":2,)
        . qq("body":{}}\n));
    my $bytes = read_file(undef, $template);
    unlink $template;

    for my $i (1 .. $n) {
        my $name = sprintf '%s/outage,2026-01-01,00,gone-1-1000-%08d,%d.zst',
                           $spool, $i, $first_ms + $i;
        open my $fh, '>:raw', $name or croak "open $name: $!";
        print $fh $bytes;
        close $fh or croak "close $name: $!";
    }

    return $n;
}


sub zstd_compress {
    my ($bytes) = @_;
    my ($rc, $zst, $err) = _run_out([ 'zstd', '-q', '-c' ], input => $bytes);
    croak "zstd failed: $err" if $rc != 0;
    return $zst;
}


# A fault-injection library for LD_PRELOAD (t/shim/NAME.c), built into
# $dir; its environment variables say what fails.  Under ASan the
# sanitizer's own malloc() comes first, so a malloc shim is never asked.
sub shim {
    my ($name, $dir) = @_;
    my $so = "$dir/$name.so";
    my ($rc, $out, $err) = _run_out([ 'cc', '-shared', '-fPIC', '-O2',
                                      '-o', $so, "$REPO/t/shim/$name.c" ]);
    croak "building t/shim/$name.c failed: $err" if $rc != 0;
    return $so;
}


# the bytes of a zstd stream, or undef when it is not one
sub zstd_uncompress {
    my ($zst) = @_;
    my ($rc, $bytes) = _run_out([ 'zstd', '-d', '-q', '-c' ], input => $zst);
    return $rc == 0 ? $bytes : undef;
}


# $len characters of base64 of random bytes: a body zstd cannot shrink
# much below 3/4 of its size
sub random_text {
    my ($len) = @_;
    open my $fh, '<:raw', '/dev/urandom' or croak "/dev/urandom: $!";
    read($fh, my $bytes, int($len * 3 / 4) + 3) or croak "read: $!";
    return substr MIME::Base64::encode_base64($bytes, ''), 0, $len;
}


# PREFIX/stream=NAME/dt=YYYY-MM-DD/hour=HH/INSTANCE-PID-STARTMS-SEQ.ndjson.zst
# Parsed from the right because instance names may contain '-'.
sub parse_key {
    shift if ref $_[0];
    my ($key) = @_;

    my @m = $key =~ m{^(?:(.*)/)?stream=([^/]+)/dt=(\d{4}-\d\d-\d\d)
                      /hour=(\d\d)/([^/]+)-(\d+)-(\d+)-(\d{8})
                      \.ndjson\.zst\z}x or return;

    my %k;
    @k{qw(prefix stream dt hour instance pid startms seq)} = @m;
    $k{prefix} //= '';
    return \%k;
}


# ---------------------------------------------------- process helpers

# nginx daemonises, so its master would be orphaned to pid 1, which in a
# container often never reaps: every stopped master would stay a zombie.
# As a subreaper (prctl PR_SET_CHILD_SUBREAPER) we get them and reap them.
sub _become_subreaper {
    my %nr = ('x86_64' => 157, 'aarch64' => 167);
    my ($arch) = $Config::Config{archname} =~ /^(\w+?)-/;
    my $nr = $nr{$arch // ''} or return;
    eval { syscall($nr, 36, 1, 0, 0, 0) };
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $data = <$fh>;
    return $data // '';
}


sub _proc_stat {
    my ($pid) = @_;
    my $s = _slurp("/proc/$pid/stat") // return;
    $s =~ /^\d+ \(.*\) (\S) (\d+) (\d+)/s or return;
    return { state => $1, ppid => $2, pgrp => $3 };
}


# Zombies count as dead: a daemonised master may be reaped by a pid 1 that
# never does it. When it is our child (we are its subreaper), reap it here.
sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && $pid > 1;
    local $?;
    waitpid $pid, WNOHANG;
    my $st = _proc_stat($pid) or return 0;
    return $st->{state} !~ /^[ZX]$/;
}


sub _cmdline {
    my ($pid) = @_;
    my $c = _slurp("/proc/$pid/cmdline") // '';
    $c =~ tr/\0/ /;
    return $c;
}


sub _children {
    my ($ppid) = @_;
    opendir my $dh, '/proc' or return ();
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $st = _proc_stat($pid) or next;
        push @kids, $pid if $st->{ppid} == $ppid && $st->{state} !~ /^[ZX]$/;
    }
    return sort { $a <=> $b } @kids;
}


# SIGKILLs a master and its children. The master is stopped first so it
# cannot respawn a worker between listing its children and the kill.
sub _kill_tree {
    my ($pid) = @_;
    return unless _alive($pid);

    kill 'STOP', $pid;
    my @kids = _children($pid);
    kill 'KILL', $pid, @kids;
    wait_for(sub { !grep { _alive($_) } $pid, @kids }, 10)
        or Test::More::diag("processes survive SIGKILL: $pid @kids");
}


# Runs a command with stdout and stderr into a file (a daemonising nginx
# keeps a pipe open long after the parent exits, a file costs nothing).
# Returns (exit code, output).
sub _run {
    my ($cmd, %opt) = @_;
    my ($rc, $out, $err) = _run_out($cmd, %opt, merge => 1);
    return ($rc, $out);
}


sub _run_out {
    my ($cmd, %opt) = @_;
    my $tmp = File::Temp->new(TMPDIR => 1);
    my $etmp = File::Temp->new(TMPDIR => 1);
    my $itmp;

    if (defined $opt{input}) {
        $itmp = File::Temp->new(TMPDIR => 1);
        binmode $itmp;
        print $itmp $opt{input};
        close $itmp;
    }

    # The harness never changes the test's $? (it becomes the exit status
    # of a test that dies).
    local $?;

    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        open STDIN, '<', defined $itmp ? "$itmp" : '/dev/null';
        open STDOUT, '>', "$tmp";
        if ($opt{merge}) {
            open STDERR, '>&', \*STDOUT;
        } else {
            open STDERR, '>', "$etmp";
        }
        %ENV = (%ENV, %{ $opt{env} // {} });
        { no warnings 'exec'; exec { $cmd->[0] } @$cmd; }
        print STDERR "exec $cmd->[0]: $!\n";
        POSIX::_exit(127);
    }

    # a command that hangs (nginx stuck before it daemonises) fails the
    # test instead of holding up the suite
    if ($opt{timeout}) {
        my $deadline = time + $opt{timeout} * $SCALE;
        while (waitpid($pid, WNOHANG) == 0) {
            if (time > $deadline) {
                kill 'KILL', $pid;
                waitpid $pid, 0;
                return (124, "timed out after " . $opt{timeout} * $SCALE
                             . " s\n" . (_slurp("$tmp") // ''),
                        _slurp("$etmp") // '');
            }
            select undef, undef, undef, 0.05;
        }

    } else {
        waitpid $pid, 0;
    }

    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($rc, _slurp("$tmp") // '', _slurp("$etmp") // '');
}


# --------------------------------------------------------------- cleanup

sub _cleanup {
    my ($self, $exit) = @_;
    return if $self->{cleaned} || $$ != $self->{owner};
    $self->{cleaned} = 1;

    # Nothing here may change the test's exit status.
    local ($?, $!, $@);

    for my $l (grep { defined } values %{ $self->{loads} }) {
        $l->_kill;
    }
    for my $up (values %{ $self->{upstream} }) {
        $up->stop;
    }

    my %masters = %{ $self->{masters} };
    for my $f ("nginx.pid", "nginx.pid.oldbin") {
        my $pid = $self->master_pid("$self->{dir}/$f");
        $masters{$pid} = 1 if $pid;
    }
    for my $pid (keys %masters) {
        _kill_tree($pid) if _alive($pid) && _cmdline($pid) =~ /nginx/;
    }

    unlink @{ $self->{locks} };
    1 while waitpid(-1, WNOHANG) > 0;

    my $tb = Test::More->builder;
    my $failed = $exit || !$tb->is_passing;

    if ($failed || $ENV{TEST_NGINX_LEAVE}) {
        Test::More::diag("test dir kept: $self->{dir}");
    } else {
        rmtree($self->{dir});
    }
}


# A test that dies (outside an eval) keeps its directory for a post-mortem;
# DESTROY may run while the exception unwinds, before $? says so.
my $DIED = 0;
my $PREV_DIE = $SIG{__DIE__};
$SIG{__DIE__} = sub {
    $DIED = 1 unless $^S;
    goto &$PREV_DIE if ref $PREV_DIE;
};


# In global destruction $? holds the test's exit status; earlier, $? is only
# what the last subprocess returned.
sub DESTROY {
    my ($self) = @_;
    $self->_cleanup($DIED || (${^GLOBAL_PHASE} eq 'DESTRUCT' ? $? : 0));
}


END {
    my $exit = $?;
    for my $t (grep { defined } values %LIVE) {
        $t->_cleanup($exit);
    }
}


# ======================================================================

package RdxTest::Upstream;

# A pre-forked HTTP/1.1 server. Each child multiplexes its connections with
# select, so idle keep-alive connections held by nginx never starve new
# ones, and handles one request at a time (a delay blocks only that child).

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha256_hex);
use Errno qw(EAGAIN EINTR);
use Fcntl qw(:DEFAULT :flock);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my %REASON = (
    200 => 'OK', 201 => 'Created', 202 => 'Accepted', 204 => 'No Content',
    400 => 'Bad Request', 403 => 'Forbidden', 404 => 'Not Found',
    408 => 'Request Timeout', 413 => 'Payload Too Large',
    429 => 'Too Many Requests', 500 => 'Internal Server Error',
    502 => 'Bad Gateway', 503 => 'Service Unavailable',
    504 => 'Gateway Timeout',
);

my $MAX_B64 = 1 << 20;


sub _start {
    my ($class, $t, %opt) = @_;
    my $name = $opt{name};
    my $dir = $t->dir;

    my $self = bless {
        name  => $name,
        port  => $t->port($name),
        log   => "$dir/upstream-$name.jsonl",
        ctl   => "$dir/upstream-$name.ctl",
        owner => $$,
        pids  => [],
        state => {
            status  => $opt{status} // 200,
            body    => $opt{body} // '{}',
            delay   => $opt{delay} // 0,
            close   => $opt{close} // 0,
            headers => $opt{headers} // [],
        },
    }, $class;

    $self->_write_ctl;

    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $self->{port}, Proto => 'tcp', Listen => 1024,
        ReuseAddr => 1)
        or croak "upstream $name: listen on $self->{port}: $!";
    $ls->blocking(0);

    for (1 .. $opt{workers} // 8) {
        my $pid = fork // croak "fork: $!";
        if (!$pid) {
            eval { $self->_child($ls) };
            POSIX::_exit(0);
        }
        push @{ $self->{pids} }, $pid;
    }

    # The children own the socket now; the kernel queues connections from
    # the moment of listen(), so there is nothing to wait for.
    close $ls;
    return $self;
}


sub name { $_[0]{name} }
sub port { $_[0]{port} }
sub url  { "http://127.0.0.1:$_[0]{port}" }
sub pids { @{ $_[0]{pids} } }


sub set {
    my ($self, %kv) = @_;
    @{ $self->{state} }{ keys %kv } = values %kv;
    $self->_write_ctl;
    return $self;
}


# Replaced with rename so a child never reads a half-written file.
sub _write_ctl {
    my ($self) = @_;
    my $tmp = "$self->{ctl}.$$.tmp";
    open my $fh, '>:raw', $tmp or croak "open $tmp: $!";
    print $fh JSON::PP->new->canonical->encode($self->{state});
    close $fh or croak "close $tmp: $!";
    rename $tmp, $self->{ctl} or croak "rename $tmp: $!";
}


sub requests {
    my ($self) = @_;
    open my $fh, '<:raw', $self->{log} or return ();
    my $json = JSON::PP->new->utf8;
    my @reqs;

    while (my $line = <$fh>) {
        # JSON::PP decodes a megabyte string in a third of a second; the
        # base64 needs no unescaping, so take it out before decoding.
        my $b64;
        $b64 = $1 if $line =~ s/^\{"body_b64":"([A-Za-z0-9+\/=]*)",/{/;
        my $r = eval { $json->decode($line) } or next;
        if (defined $b64) {
            $r->{body_b64} = $b64;
            $r->{body} = decode_base64($b64);
        }
        push @reqs, $r;
    }

    return @reqs;
}


sub stop {
    my ($self) = @_;
    return if $$ != $self->{owner};
    my @pids = @{ $self->{pids} } or return;
    local $?;

    kill 'TERM', @pids;
    my $deadline = time + 5;
    while (@pids && time < $deadline) {
        @pids = grep { waitpid($_, WNOHANG) == 0 } @pids;
        sleep 0.02 if @pids;
    }
    if (@pids) {
        kill 'KILL', @pids;
        waitpid $_, 0 for @pids;
    }

    $self->{pids} = [];
}


sub _child {
    my ($self, $ls) = @_;
    my $parent = $self->{owner};

    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    $SIG{PIPE} = 'IGNORE';

    my $sel = IO::Select->new($ls);
    my %conn;

    for ( ;; ) {
        # Do not outlive a test process that was killed without END.
        POSIX::_exit(0) if getppid() != $parent;

        for my $fh ($sel->can_read(1)) {
            if ($fh == $ls) {
                my $c = $ls->accept or next;
                binmode $c;
                $c->blocking(1);
                $conn{ fileno $c } = { sock => $c, buf => '' };
                $sel->add($c);
                next;
            }

            my $st = $conn{ fileno $fh };
            next if $self->_serve($st);

            $sel->remove($fh);
            delete $conn{ fileno $fh };
            close $fh;
        }
    }
}


# Reads what arrived and answers every complete request in the buffer.
# Returns false when the connection must be closed.
sub _serve {
    my ($self, $st) = @_;
    my $sock = $st->{sock};

    my $n = sysread($sock, $st->{buf}, 65536, length $st->{buf});
    return 1 if !defined $n && ($! == EAGAIN || $! == EINTR);
    return 0 unless $n;

    while (index($st->{buf}, "\r\n\r\n") >= 0) {
        my $keep = $self->_request($st);
        return 0 unless $keep;
    }

    return 1;
}


sub _request {
    my ($self, $st) = @_;
    my $sock = $st->{sock};
    my $buf = \$st->{buf};
    my $deadline = time + 60;

    my $end = index($$buf, "\r\n\r\n");
    my $head = substr($$buf, 0, $end + 4, '');
    my ($line, @lines) = split /\r\n/, $head;
    my ($method, $uri, $proto) = $line =~ m{^(\S+) (\S+) HTTP/(\d\.\d)$}
        or return $self->_respond($sock, 400, 0, '');

    my %h;
    for my $l (@lines) {
        my ($k, $v) = $l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }

    if (($h{expect} // '') =~ /100-continue/i && $proto eq '1.1') {
        _send($sock, "HTTP/1.1 100 Continue\r\n\r\n");
    }

    my $body = '';
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        RdxTest::_read_chunked($sock, $buf, $deadline, \$body) or return 0;
    } elsif (my $len = $h{'content-length'}) {
        while (length $$buf < $len) {
            my $n = sysread($sock, $$buf, 65536, length $$buf);
            next if !defined $n && $! == EINTR;
            return 0 unless $n;
        }
        $body = substr($$buf, 0, $len, '');
    }

    my $conn = $h{connection} // '';
    my $keep = $proto eq '1.1' ? $conn !~ /close/i : $conn =~ /keep-alive/i;

    my $ctl = $self->_read_ctl;
    my %rec = (
        method  => $method,
        uri     => $uri,
        proto   => $proto,
        headers => \%h,
        len     => length $body,
        sha256  => sha256_hex($body),
        t       => time,
        pid     => $$,
        status  => $ctl->{close} ? 'close' : $ctl->{status} + 0,
    );
    $rec{body_b64} = encode_base64($body, '') if length $body <= $MAX_B64;
    $self->_log(\%rec);

    sleep $ctl->{delay} if $ctl->{delay};
    return 0 if $ctl->{close};

    return $self->_respond($sock, $ctl->{status}, $keep,
                           $method eq 'HEAD' ? undef : $ctl->{body},
                           $ctl->{headers});
}


sub _respond {
    my ($self, $sock, $status, $keep, $body, $headers) = @_;
    my $len = length($body // '');

    my $out = "HTTP/1.1 $status " . ($REASON{$status} // 'Status') . "\r\n"
            . "Content-Type: application/json\r\n"
            . "Content-Length: $len\r\n"
            . "Connection: " . ($keep ? 'keep-alive' : 'close') . "\r\n";
    my @h = @{ $headers // [] };
    while (my ($k, $v) = splice @h, 0, 2) {
        $out .= "$k: $v\r\n";
    }
    $out .= "\r\n";
    $out .= $body if defined $body && $status != 204 && $status != 304;

    return _send($sock, $out) && $keep;
}


sub _send {
    my ($sock, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR;
            return 0;
        }
        $off += $n;
    }
    return 1;
}


sub _read_ctl {
    my ($self) = @_;
    open my $fh, '<:raw', $self->{ctl} or return $self->{state};
    local $/;
    my $c = eval { JSON::PP->new->decode(<$fh> // '') };
    $self->{state} = $c if ref $c eq 'HASH';
    return $self->{state};
}


# One write per record under flock, so prefork children never interleave.
sub _log {
    my ($self, $rec) = @_;
    my $line = JSON::PP->new->utf8->canonical->encode($rec) . "\n";

    sysopen my $fh, $self->{log}, O_WRONLY | O_APPEND | O_CREAT, 0644
        or return;
    flock $fh, LOCK_EX;
    _send($fh, $line);
    close $fh;
}


# ======================================================================

package RdxTest::Load;

# Forked HTTP/1.1 clients. Each keeps one keep-alive connection, writes
# "id status" per request to its own file (flushed, so results survive the
# client being killed), records 0 on connection errors and pauses briefly
# before the next request, so a dying server never stops the run.

use strict;
use warnings;

use Carp qw(croak);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);


sub _start {
    my ($class, $t, %opt) = @_;
    my $dir = $t->dir;
    my $n = $opt{n} // 500;
    my $conc = $opt{concurrency} // 8;
    my $run = ++$t->{load_seq};

    my $first = $t->{next_id};
    $t->{next_id} += $n;

    my $self = bless {
        owner => $$,
        pids  => [],
        outs  => [],
        stop  => $opt{stop_file} // "$dir/load-$run.stop",
    }, $class;

    my %c = (
        port     => $opt{port} // $t->port('http'),
        path     => $opt{path} // '/',
        method   => $opt{method} // 'POST',
        timeout  => ($opt{timeout} // 30) * RdxTest::scale(),
        pause    => $opt{pause} // 0.1,
        body     => $opt{body} // sub {
            ([ 'Content-Type' => 'application/json' ], qq({"id":$_[0]}));
        },
    );

    for my $k (0 .. $conc - 1) {
        my @ids = grep { ($_ - $first) % $conc == $k }
                  $first .. $first + $n - 1;
        my $out = "$dir/load-$run-$k.out";
        push @{ $self->{outs} }, $out;

        my $pid = fork // croak "fork: $!";
        if (!$pid) {
            eval { $self->_client(\%c, \@ids, $out) };
            print STDERR "load client: $@" if $@;
            POSIX::_exit(0);
        }
        push @{ $self->{pids} }, $pid;
    }

    return $self;
}


sub _client {
    my ($self, $c, $ids, $out) = @_;
    my $parent = $self->{owner};

    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    $SIG{PIPE} = 'IGNORE';

    open my $fh, '>>', $out or die "open $out: $!";
    $fh->autoflush(1);

    my ($sock, $buf, $reused) = (undef, '', 0);

    for my $id (@$ids) {
        last if -e $self->{stop} || getppid() != $parent;

        my ($headers, $body) = $c->{body}->($id);
        my ($head, $wire) = RdxTest::_build_request(
            method => $c->{method}, path => $c->{path}, body => $body,
            headers => [ 'X-Test-Id' => $id, @{ $headers // [] } ]);
        my $t0 = time;
        my $deadline = $t0 + $c->{timeout};
        my $status = 0;

        # A keep-alive connection the server closed while idle fails
        # without a byte of answer: that request never reached it, so it
        # is retried once on a new connection, as browsers do.
        for my $attempt (1, 2) {
            unless ($sock) {
                $sock = RdxTest::_connect($c->{port}, $c->{timeout}) or last;
                ($buf, $reused) = ('', 0);
            }

            my $sent = RdxTest::_write_all($sock, $head . $wire, $deadline);
            my ($res, $why) = RdxTest::_read_response($sock, \$buf,
                                                      $deadline, $c->{method});

            if ($res && !$res->{incomplete}) {
                $status = $res->{status};
                if ($res->{close}) {
                    close $sock;
                    undef $sock;
                } else {
                    $reused = 1;
                }
                last;
            }

            my $stale = $reused && (!$sent || ($why // '') eq 'closed');
            close $sock;
            undef $sock;
            last unless $stale;
        }

        # the time from sending to the answer (or giving up), for
        # latencies()
        printf $fh "%d %d %.3f\n", $id, $status, (time - $t0) * 1000;
        sleep $c->{pause} if !$status;
    }

    close $sock if $sock;
    close $fh;
}


# Outcomes so far: id => status.
sub results {
    my ($self) = @_;
    return { map { $_->[0] => $_->[1] } $self->_outcomes };
}


# Milliseconds each request took so far: id => ms.
sub latencies {
    my ($self) = @_;
    return { map { $_->[0] => $_->[2] } $self->_outcomes };
}


# [id, status, ms] of every request so far (the client files' lines)
sub _outcomes {
    my ($self) = @_;
    my @out;
    for my $file (@{ $self->{outs} }) {
        open my $fh, '<', $file or next;
        while (<$fh>) {
            push @out, [ $1, $2, $3 ] if /^(\d+) (\d+) ([\d.]+)$/;
        }
    }
    return @out;
}


sub running {
    my ($self) = @_;
    local $?;
    $self->{pids} = [ grep { waitpid($_, WNOHANG) == 0 } @{ $self->{pids} } ];
    return scalar @{ $self->{pids} };
}


sub finish {
    my ($self, %opt) = @_;
    RdxTest::wait_for(sub { !$self->running }, $opt{timeout} // 300)
        or do {
            Test::More::diag("load clients still running: killed");
            $self->_kill;
        };
    return $self->results;
}


sub stop {
    my ($self) = @_;
    open my $fh, '>', $self->{stop};
    close $fh;
    return $self->finish;
}


sub _kill {
    my ($self) = @_;
    return if $$ != $self->{owner};
    my @pids = @{ $self->{pids} } or return;
    local $?;
    kill 'KILL', @pids;
    waitpid $_, 0 for @pids;
    $self->{pids} = [];
}


1;
