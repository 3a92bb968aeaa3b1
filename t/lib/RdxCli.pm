package RdxCli;

# Helpers for the tests of the reductrai command-line tool (t/6*-cli-*.t):
# run the tool and capture its output and exit code, and make an archive
# with the real module (nginx with file:// storage, requests with known
# bodies, a graceful stop that seals and ships every segment).
#
#   use RdxCli qw(cli cli_start cli_wait module_archive);
#   my $r = cli('ls', "file://$dir", '--json');   # {rc, out, err, elapsed}
#   my $h = cli_start('replay', ...);  ...; $r = cli_wait($h, 30);
#   my ($dir, $sent) = module_archive($t, requests => [ {...}, ... ]);
#
# Environment: TEST_REDUCTRAI_CLI (the binary, default objs/reductrai, or
# objs/asan/reductrai under TEST_NGINX_ASAN when it exists),
# TEST_REDUCTRAI_VALGRIND=1 (run every command under valgrind; an error
# exits 99, which no test expects).

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use RdxTest qw(wait_for);

our @EXPORT_OK = qw(cli cli_start cli_wait cli_path module_archive
                    archive_conf);

my $REPO = abs_path(dirname(__FILE__) . '/../..');
my $SEQ = 0;


sub cli_path {
    return $ENV{TEST_REDUCTRAI_CLI} if $ENV{TEST_REDUCTRAI_CLI};
    return "$REPO/objs/asan/reductrai"
        if $ENV{TEST_NGINX_ASAN} && -x "$REPO/objs/asan/reductrai";
    return "$REPO/objs/reductrai";
}


sub _argv {
    my @args = @_;
    my @cmd = (cli_path(), @args);

    unshift @cmd, 'valgrind', '-q', '--error-exitcode=99',
        '--leak-check=full', '--errors-for-leak-kinds=definite'
        if $ENV{TEST_REDUCTRAI_VALGRIND};

    return @cmd;
}


# Starts the tool; options first when the first argument is a hash:
# cli_start({env => {...}, stdin => $file}, args...).
sub cli_start {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};
    my @cmd = _argv(@_);
    my $base = ($opt->{dir} // $ENV{TMPDIR} // '/tmp')
             . "/rdx-cli-$$-" . ++$SEQ;

    my $pid = fork // croak "fork: $!";

    if (!$pid) {
        open STDIN, '<', $opt->{stdin} // '/dev/null';
        open STDOUT, '>', "$base.out" or POSIX::_exit(126);
        open STDERR, '>', "$base.err" or POSIX::_exit(126);
        delete $ENV{$_} for qw(DD_API_KEY REDUCTRAI_REPLAY_HEADER
                               REDUCTRAI_STORAGE);
        @ENV{ keys %{ $opt->{env} // {} } } = values %{ $opt->{env} // {} };
        exec @cmd or POSIX::_exit(127);
    }

    return { pid => $pid, base => $base, start => time, cmd => \@cmd };
}


# Waits for the tool (killing it after $timeout seconds) and returns
# {rc, signal, out, err, elapsed}.
sub cli_wait {
    my ($h, $timeout) = @_;
    my $deadline = time + ($timeout // 120) * RdxTest->scale
                 * ($ENV{TEST_REDUCTRAI_VALGRIND} ? 5 : 1);
    my $status;

    for ( ;; ) {
        my $r = waitpid $h->{pid}, WNOHANG;
        if ($r == $h->{pid}) {
            $status = $?;
            last;
        }
        if (time > $deadline) {
            kill 'KILL', $h->{pid};
            waitpid $h->{pid}, 0;
            $status = $?;
            Test::More::diag("killed after ${timeout}s: @{ $h->{cmd} }");
            last;
        }
        sleep 0.02;
    }

    my %r = (
        rc      => $status >> 8,
        signal  => $status & 127,
        elapsed => time - $h->{start},
        out     => _slurp("$h->{base}.out"),
        err     => _slurp("$h->{base}.err"),
    );
    unlink "$h->{base}.out", "$h->{base}.err";

    return \%r;
}


sub cli {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};
    return cli_wait(cli_start($opt, @_), $opt->{timeout});
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}


# The http{} part of a config that archives to %%DIR%%/archive (or to
# storage => 'URI params'): locations
# /api/v1/series (stream metrics), /api/v2/logs (logs), /api/v1/check_run
# (metrics) and /other/ (stream other), all answered locally with 202
# unless forward => 1 (then proxied to upstream "vendor").
sub archive_conf {
    my (%o) = @_;
    my $age = $o{segment_age} // '1s';
    my $size = $o{segment_size} ? "reductrai_segment_size $o{segment_size};"
                                : '';
    my $instance = $o{instance} // 'cli-test';
    my $storage = $o{storage} // 'file://%%DIR%%/archive';
    my $fwd = $o{forward}
        ? 'proxy_pass http://127.0.0.1:%%PORT_vendor%%;'
        : 'reductrai_forward off; reductrai_ack 202 \'{"ok":1}\';';

    return <<"EOF";
    client_body_buffer_size 1m;
    client_max_body_size 16m;

    reductrai_storage $storage;
    reductrai_spool %%DIR%%/spool;
    reductrai_segment_age $age;
    $size
    reductrai_instance $instance;

    server {
        listen 127.0.0.1:%%PORT_http%%;

        location /api/v1/series {
            reductrai on;
            reductrai_stream metrics;
            $fwd
        }

        location /api/v1/check_run {
            reductrai on;
            reductrai_stream metrics;
            $fwd
        }

        location /api/v2/logs {
            reductrai on;
            reductrai_stream logs;
            $fwd
        }

        location /other/ {
            reductrai on;
            reductrai_stream other;
            $fwd
        }
    }
EOF
}


# Starts nginx with the module (unless running), sends the requests
# ({path, body, headers => [...], method, pause}), stops nginx gracefully
# (which seals and ships the open segments) and waits until the archive
# holds every record (count => sub { records stored } for other storage).
# Returns the archive directory and the responses; an unexpected status
# (expect => N, 202 by default) or a missing record fails a test.
sub module_archive {
    my ($t, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $dir = $t->dir;
    my @reqs = @{ $o{requests} // [] };

    $t->mkdir_worker('archive') unless -d "$dir/archive";
    $t->mkdir_worker('spool') unless -d "$dir/spool";

    unless ($t->master_pid) {
        $t->write_config(
            main => $o{main} // "worker_processes "
                               . ($o{workers} // 1) . ";\n"
                               . "thread_pool default threads=2;",
            http => $o{http} // archive_conf(%o));
        $t->start;
    }

    my $count = $o{count} // sub {
        my $n = 0;
        $n += @{ $_->{lines} }
            for $t->archive_objects("$dir/archive", decode => 0);
        return $n;
    };
    my $before = $count->();
    my @resp;

    for my $q (@reqs) {
        my $r = $t->http(path => $q->{path}, body => $q->{body},
                         method => $q->{method} // 'POST',
                         headers => $q->{headers} // []);
        Test::More::fail("$q->{path}: status $r->{status}, want "
                         . ($q->{expect} // 202))
            if $r->{status} != ($q->{expect} // 202);
        push @resp, $r;
        sleep $q->{pause} if $q->{pause};
    }

    $t->stop unless $o{keep_running};

    my $want = $before + @reqs;
    my $n;
    wait_for(sub { ($n = $count->()) >= $want }, 30,
             "archive to hold $want records") or
        Test::More::fail("the archive holds $n records, want $want");

    return ("$dir/archive", \@resp);
}


1;
