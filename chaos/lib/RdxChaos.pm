package RdxChaos;

# The HA chaos suite: three nginx instances with the module behind a load
# balancer, on this machine alone (loopback), under load, through faults.
# Used by chaos/chaos.pl (make chaos, the full version) and t/80-chaos.t
# (the short version make test runs): the same code, other durations.
#
#   my $c = RdxChaos->new(profile => 'short', log => sub { note @_ });
#   $c->setup;
#   $c->run_scenario($_) for $c->scenario_names;
#   $c->finish;                     # drain, stop, read the bucket, verify
#   for my $s ($c->results) { $s->{ack_missing} ... }
#   print $c->report_markdown;
#
# The cluster:
#   - s3rver (SigV4 verified) behind t/node/rdx-proxy.js, whose /down and
#     /up take the store away and bring it back; one bucket for all
#   - two mock vendors (RdxTest upstreams, every request recorded):
#     vendor_a, the primary, and vendor_b, the backup of every upstream
#   - inst-1..3: nginx masters, worker_processes 2, configured from
#     conf/datadog.conf (intake servers -> the mock vendors, https -> http,
#     storage -> the bucket) plus durability write, segment_age 2s,
#     spool_full reject, an instance id, their own spool
#   - lb: nginx with conf/lb.conf (servers -> the instances, TLS dropped)
#   - haproxy with conf/haproxy.cfg (servers -> the instances, TLS
#     dropped), for the haproxy-* scenarios
#   - load: RdxTest load clients, two per path (metrics, gzip'd logs,
#     traces, events), each request tagged with a unique X-Test-Id and
#     carrying "chaos_id":"SCENARIO:ID" in its body
#
# Every request of a scenario carries the scenario's name, so one bucket
# and one set of logs serve all scenarios and each is counted apart.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Find ();
use File::Temp qw(tempdir);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

my $REPO;
BEGIN { $REPO = abs_path(dirname(__FILE__) . '/../..') }

use lib "$REPO/t/lib";
use RdxTest qw(wait_for);
use RdxStorage;

my $AK = 'AKIDRDXCHAOS00001';
my $SK = 'chaos/Secret+Key0123456789abcdefGHIJKLmn';
my $BUCKET = 'chaos';
my $API_KEY = '0123456789abcdef0123456789abcdef';

# durations in seconds
my %PROFILE = (
    short => {
        warm      => 1.5,    # load before the fault
        after     => 2,      # load after the recovery
        down      => 3,      # a killed instance stays down
        outage    => 5,      # storage and vendor outages
        full_hold => 2,      # every spool full this long
        pace      => 0.02,   # pause of each client before a request
        clients   => 2,      # load clients per path
        catchup   => 90,     # longest wait for the archive to catch up
    },
    full => {
        warm      => 3,
        after     => 5,
        down      => 10,
        outage    => 30,
        full_hold => 10,
        pace      => 0.01,
        clients   => 2,
        catchup   => 180,
    },
);

my @SCENARIOS = (
    [ steady           => 'no fault: the baseline' ],
    [ 'kill9-instance' => 'kill -9 of inst-2 (master and workers), '
                          . 'restarted after %down% s' ],
    [ 'kill9-worker'   => 'kill -9 of one worker of inst-1' ],
    [ reload           => 'nginx -s reload of inst-3' ],
    [ upgrade          => 'binary upgrade of inst-1: USR2, WINCH, QUIT '
                          . 'of the old master' ],
    [ 'storage-outage' => 'S3 down for %outage% s' ],
    [ 'vendor-outage'  => 'primary vendor down for %outage% s: the backup '
                          . 'takes over' ],
    [ 'vendor-all-down' => 'both vendors down for %outage% s' ],
    [ 'spool-full'     => 'max_size=1m on every instance, S3 down until '
                          . 'every spool is full, held %full_hold% s; '
                          . 'reductrai_spool_full reject' ],
    [ 'haproxy-kill9'  => 'behind HAProxy (conf/haproxy.cfg): kill -9 of '
                          . 'inst-3, restarted after %down% s' ],
    [ 'haproxy-vendor-all-down' => 'behind HAProxy (conf/haproxy.cfg): both '
                          . 'vendors down for %outage% s' ],
);

# the paths the load sends to, as the Datadog Agent does
my @PATHS = (
    [ metrics => '/api/v2/series' ],
    [ logs    => '/api/v2/logs' ],
    [ traces  => '/api/v0.2/traces' ],
    [ events  => '/intake/' ],
);


sub new {
    my ($class, %opt) = @_;
    my $profile = $opt{profile} // 'short';
    my $p = $PROFILE{$profile} or croak "unknown profile $profile";

    # every directory of the run below one of its own, which workers
    # (nobody) can traverse
    my $base = tempdir('rdx-chaos-XXXXXX', DIR => $opt{tmpdir}
                       // $ENV{TEST_NGINX_TMPDIR} // '/tmp');
    chmod 0755, $base or croak "chmod $base: $!";

    my $self = bless {
        base    => $base,
        profile => $profile,
        p       => { %$p, %{ $opt{override} // {} } },
        log     => $opt{log} // sub { print STDERR "# @_\n" },
        t0      => time,
        done    => [],
        scanned => {},
        live    => {},
        pids    => {},
        lb_file => $opt{lb_conf} // "$REPO/conf/lb.conf",
        ha_file => $opt{haproxy_cfg} // "$REPO/conf/haproxy.cfg",
    }, $class;

    return $self;
}


sub scenario_names { map { $_->[0] } @SCENARIOS }
sub param          { $_[0]{p}{$_[1]} }
sub lab            { $_[0]{lab} }
sub instances      { @{ $_[0]{inst} } }
sub results        { @{ $_[0]{done} } }
sub lb_file        { $_[0]{lb_file} }
sub shipped_lb     { $_[0]{lb_file} eq "$REPO/conf/lb.conf" }
sub shipped_ha     { $_[0]{ha_file} eq "$REPO/conf/haproxy.cfg" }


sub progress {
    my ($self, $msg) = @_;
    $self->{log}->(sprintf '[%6.1fs] %s', time - $self->{t0}, $msg);
}


sub describe {
    my ($self, $name) = @_;
    my ($s) = grep { $_->[0] eq $name } @SCENARIOS or return $name;
    (my $d = $s->[1]) =~ s/%(\w+)%/$self->{p}{$1}/g;
    return $d;
}


# ------------------------------------------------------------------ setup

sub setup {
    my ($self) = @_;

    # The run loads its own copies of the module and of the CLI: a build
    # writes objs/ in place, which would change the code under running
    # workers (and a reload or an upgrade would load another module).
    my $so = "$self->{base}/ngx_http_reductrai_module.so";
    my $cli = "$self->{base}/reductrai";
    for ([ RdxTest->module_path, $so ], [ "$REPO/objs/reductrai", $cli ]) {
        my ($rc, $out) = RdxTest::_run([ 'cp', @$_ ]);
        croak "cp @$_: $out" if $rc != 0;
    }
    $ENV{TEST_NGINX_MODULE} = $so;
    $self->{cli} = $cli;

    # one RdxTest per nginx: its own directory, ports and pid file
    my $lab = $self->{lab} = RdxTest->new(tmpdir => $self->{base});
    $self->{prefix} = 'run-' . strftime('%Y%m%dT%H%M%S', gmtime);

    $self->{s3} = RdxStorage->start($lab, 's3rver.js', name => 's3',
        args => [ '--bucket', $BUCKET, '--access-key', $AK,
                  '--secret-key', $SK ]);
    $self->{bucket_dir} = $self->{s3}->data_dir . "/$BUCKET";
    $self->progress('s3rver on ' . $self->{s3}->url
                    . " (bucket $BUCKET, prefix $self->{prefix})");

    $self->start_vendor($_) for qw(vendor_a vendor_b);

    $self->{inst} = [ map { RdxTest->new(tmpdir => $self->{base}) } 1 .. 3 ];
    for my $i (0 .. 2) {
        my $t = $self->{inst}[$i];
        $t->write_file('s3-secret', "$SK\n");
        $t->mkdir_worker('spool', mode => 0700);
        $self->write_instance_config($i);
        $t->start;
        $self->progress('inst-' . ($i + 1) . ' on 127.0.0.1:'
                        . $t->port('http') . ' (master ' . $t->master_pid
                        . ', dir ' . $t->dir . ')');
    }

    $self->{lb} = RdxTest->new(tmpdir => $self->{base});
    $self->write_lb_config;
    $self->{lb}->start;
    $self->progress("nginx LB ($self->{lb_file}) on 127.0.0.1:"
               . $self->{lb}->port('http'));

    $self->start_haproxy;

    return $self;
}


sub start_vendor {
    my ($self, $name) = @_;
    $self->{lab}->start_upstream(name => $name, status => 202,
                                 body => '{"status":"ok"}', workers => 4);
}


sub vendor_running {
    my ($self, $name) = @_;
    my $up = $self->{lab}->upstream($name);
    return $up && $up->pids;
}


sub storage_uri {
    my ($self, %o) = @_;
    my $uri = "s3://$BUCKET/$self->{prefix} endpoint=" . $self->{s3}->url
            . ' region=us-east-1 connect_timeout=1s timeout=10s';
    $uri .= " access_key=$AK secret_key_file=$o{secret}" if $o{secret};
    return $uri;
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or croak "$path: $!";
    local $/;
    return scalar <$fh>;
}


# conf/datadog.conf as an operator would install it, with the intakes
# on the mock vendors (primary and backup) and the bucket on s3rver
sub write_instance_config {
    my ($self, $i, %o) = @_;
    my $t = $self->{inst}[$i];
    my $dir = $t->dir;
    my ($a, $b) = map { $self->{lab}->port($_) } qw(vendor_a vendor_b);
    my $max = $o{max_size} // '256m';

    my $site = _slurp("$REPO/conf/datadog-sites/datadoghq.com.conf");
    my ($primary, $backup) = ("server  127.0.0.1:$a;",
                              "server  127.0.0.1:$b backup;");
    my $n = $site =~ s{^(\s*)server\s+\S+:443;}{$1$primary\n$1$backup}mg;
    croak "no intake servers in datadoghq.com.conf" unless $n;
    $t->write_file('datadog-site.conf', $site);

    my $v = _slurp("$REPO/conf/datadog.conf");
    my $storage = $self->storage_uri(secret => "$dir/s3-secret");
    my $id = 'inst-' . ($i + 1);

    _subst(\$v, qr{^include\s+datadog-sites/\S+;}m,
           "include  $dir/datadog-site.conf;");
    _subst(\$v, qr{^reductrai_storage\s[^;]*;}ms,
           "reductrai_storage  $storage;\n"
           . "reductrai_instance      $id;\n"
           . "reductrai_durability    write;\n"
           . "reductrai_segment_age   2s;\n"
           . "reductrai_spool_full    reject;");
    _subst(\$v, qr{^reductrai_spool\s[^;]*;}m,
           "reductrai_spool    $dir/spool max_size=$max;");
    _subst(\$v, qr{^resolver\s+\S+}m, 'resolver          127.0.0.1');
    _subst(\$v, qr{proxy_pass\s+https://datadog_},
           'proxy_pass        http://datadog_', 'g');
    _subst(\$v, qr{^(\s*)access_log\s+/var/log/nginx/(\S+)\s+reductrai;}m,
           sub { "$1access_log  $dir/$2 reductrai;\n"
                 . "$1access_log  $dir/chaos.log chaos;" });
    _subst(\$v, qr{^(\s*)listen\s+8080;}m,
           sub { "$1listen       127.0.0.1:%%PORT_http%%;" });

    my $log_format = "log_format chaos '\$http_x_test_id \$status "
        . "\$reductrai_record_id \"\$upstream_addr\" "
        . "\"\$upstream_status\"';\n";

    $t->write_config(main => "worker_processes 2;\n"
                             . "worker_shutdown_timeout 30s;",
                     http => $log_format . $v);
}


# replaces what must be there, or dies: a changed shipped file must not
# silently leave production settings in the test
sub _subst {
    my ($text, $re, $with, $g) = @_;
    my $n = $g
        ? ($$text =~ s/$re/ref $with ? $with->() : $with/ge)
        : ($$text =~ s/$re/ref $with ? $with->() : $with/e);
    croak "pattern $re not found" unless $n;
    return $n;
}


# conf/lb.conf with its three servers on the instances and TLS dropped
sub write_lb_config {
    my ($self) = @_;
    my $t = $self->{lb};
    my $dir = $t->dir;
    my @ports = map { $_->port('http') } @{ $self->{inst} };

    my $lb = _slurp($self->{lb_file});
    my $n = $lb =~ s{^(\s*server\s+)10\.0\.1\.\d+:8080(\s)}
                    {$1 . '127.0.0.1:' . shift(@ports) . $2}mge;
    croak "$self->{lb_file}: $n servers, not 3" unless $n == 3;
    _subst(\$lb, qr{^\s*listen\s+443\s+ssl;\n}m, '');
    _subst(\$lb, qr{^\s*ssl_\w+\s[^;]*;\n}m, '', 'g');
    _subst(\$lb, qr{^(\s*)listen\s+8080;}m,
           sub { "$1listen  127.0.0.1:%%PORT_http%%;\n"
                 . "$1access_log  $dir/lb.log chaoslb;" });

    my $log_format = "log_format chaoslb '\$http_x_test_id \$status "
        . "\"\$upstream_addr\" \"\$upstream_status\"';\n";

    $t->write_config(module => 0, main => 'worker_processes 2;',
                     http => $log_format . $lb);
}


# conf/haproxy.cfg with its servers on the instances and TLS dropped
sub start_haproxy {
    my ($self) = @_;
    my $lab = $self->{lab};

    unless (-x '/usr/sbin/haproxy') {
        $self->progress('haproxy is not installed: haproxy-* scenarios '
                        . 'skipped');
        return;
    }

    my @ports = map { $_->port('http') } @{ $self->{inst} };
    my $cfg = _slurp($self->{ha_file});
    my $n = $cfg =~ s{^(\s*server\s+\S+\s+)10\.0\.1\.\d+:8080(\s)}
                     {$1 . '127.0.0.1:' . shift(@ports) . $2}mge;
    croak "$self->{ha_file}: $n servers, not 3" unless $n == 3;
    _subst(\$cfg, qr{^\s*bind\s+\*:443\s[^\n]*\n}m, '');
    _subst(\$cfg, qr{^(\s*)bind\s+\*:8080$}m,
           sub { "$1bind 127.0.0.1:" . $lab->port('haproxy') });
    my $path = $lab->write_file('haproxy.cfg', $cfg);

    my ($rc, $out) = RdxTest::_run([ 'haproxy', '-c', '-f', $path ]);
    croak "haproxy -c: $out" if $rc != 0;

    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $lab->path('haproxy.out');
        open STDERR, '>&', \*STDOUT;
        exec 'haproxy', '-db', '-f', $path or POSIX::_exit(127);
    }
    $self->{pids}{haproxy} = $pid;

    wait_for(sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => $lab->port('haproxy'));
    }, 10) or croak "haproxy does not listen:\n"
                    . (eval { _slurp($lab->path('haproxy.out')) } // '');
    $self->progress("HAProxy ($self->{ha_file}) on 127.0.0.1:"
               . $lab->port('haproxy'));
}


# ------------------------------------------------------------------- load

# Sends one Agent-like payload per request; "chaos_id" ties the archived
# record to the request and its scenario.
sub _body_sub {
    my ($self, $sc, $stream, $pace) = @_;
    my $name = $sc->{name};

    return sub {
        my ($id) = @_;
        sleep $pace if $pace;
        my $tag = qq("chaos_id":"$name:$id");
        my $ts = int time;
        my @h = ('Content-Type' => 'application/json',
                 'DD-API-KEY' => $API_KEY);

        if ($stream eq 'metrics') {
            my $series = join ',', map {
                qq({"metric":"chaos.requests.$_","type":1,"points":)
                . qq([{"timestamp":$ts,"value":) . ($id % 97 + $_)
                . qq(}],"resources":[{"name":"host-) . ($id % 13)
                . qq(","type":"host"}],"tags":["env:chaos",)
                . qq("scenario:$name","shard:) . ($id % 7) . qq("]})
            } 1 .. 1 + $id % 6;
            return (\@h, "{$tag,\"series\":[$series]}");
        }

        if ($stream eq 'logs') {
            my $logs = '[' . join(',', map {
                qq({$tag,"ddsource":"nginx","service":"checkout",)
                . qq("hostname":"host-) . ($id % 13) . qq(","status":"info",)
                . qq("message":"10.1.) . ($id % 250) . qq(.$_ - - )
                . qq([$ts] \\"POST /api/cart/$id HTTP/1.1\\" 200 )
                . (100 + $id % 900) . qq( \\"-\\" \\"agent/7\\""})
            } 1 .. 1 + $id % 8) . ']';
            gzip(\$logs => \my $gz) or die "gzip: $GzipError";
            return ([ @h, 'Content-Encoding' => 'gzip' ], $gz);
        }

        if ($stream eq 'traces') {
            my $spans = join ',', map {
                qq({"trace_id":$id,"span_id":) . ($id * 10 + $_)
                . qq(,"parent_id":) . ($_ > 1 ? $id * 10 + 1 : 0)
                . qq(,"name":"web.request","resource":"POST /api/cart",)
                . qq("service":"checkout","start":${ts}000000000,)
                . qq("duration":) . (1000 + $id % 5000 * $_)
                . qq(,"meta":{"env":"chaos"}})
            } 1 .. 1 + $id % 4;
            return (\@h, "{$tag,\"traces\":[[$spans]]}");
        }

        if ($stream eq 'blob') {
            # incompressible, so that a spool of 1 MB fills in seconds
            open my $fh, '<:raw', '/dev/urandom' or die "urandom: $!";
            read $fh, my $bytes, 12_000;
            return (\@h, "[{$tag,\"message\":\""
                         . encode_base64($bytes, '') . '"}]');
        }

        return (\@h, "{$tag,\"events\":{\"api\":[{\"msg_title\":"
                     . "\"deploy $id\",\"msg_text\":\"chaos scenario "
                     . "$name\",\"timestamp\":$ts}]}}");
    };
}


sub start_load {
    my ($self, $sc, %o) = @_;
    my $port = $o{port} // $self->{lb}->port('http');
    my $pace = $o{pace} // $self->{p}{pace};
    my @paths = $o{paths} ? @{ $o{paths} } : @PATHS;
    my @loads;

    for my $p (@paths) {
        my ($stream, $path) = @$p;
        push @loads, $self->{lab}->load_start(
            port => $port, path => $path, n => 50_000,
            concurrency => $o{clients} // $self->{p}{clients},
            pause => 0.1, timeout => 60,
            body => $self->_body_sub($sc, $stream, $pace));
    }

    push @{ $sc->{loads} }, @loads;
    return @loads;
}


sub stop_load {
    my ($self, $sc, @loads) = @_;
    @loads = @{ $sc->{loads} } unless @loads;
    for my $l (@loads) {
        my $res = $l->stop;
        @{ $sc->{results} }{ keys %$res } = values %$res;
    }
}


# ids acknowledged so far by the loads still running
sub acked_so_far {
    my ($self, $sc) = @_;
    my %acked = %{ $sc->{results} // {} };
    for my $l (@{ $sc->{loads} }) {
        my $r = $l->results;
        @acked{ keys %$r } = values %$r;
    }
    return grep { $acked{$_} =~ /^2/ } keys %acked;
}


# ---------------------------------------------------------------- bucket

# Reads the objects s3rver holds that were not read yet (s3rver stores an
# object at DIR/BUCKET/KEY._S3rver_object) and notes which test ids they
# hold; for waiting on the archive while the run goes on.  The verdict at
# the end reads the bucket with "reductrai cat" instead.
sub scan_bucket {
    my ($self) = @_;
    my $dir = $self->{bucket_dir};
    my @new;

    return 0 unless -d $dir;
    File::Find::find({ no_chdir => 1, wanted => sub {
        push @new, $File::Find::name
            if /\._S3rver_object\z/ && !$self->{scanned}{$File::Find::name};
    } }, $dir);

    while (my @batch = splice @new, 0, 100) {
        my ($rc, $out) = RdxTest::_run_out([ 'zstd', '-dcq', '--', @batch ]);
        if ($rc == 0) {
            $self->_note_live($out);
            $self->{scanned}{$_} = 1 for @batch;
            next;
        }
        # one object still being written: read the others one by one
        for my $f (@batch) {
            my ($frc, $fout) = RdxTest::_run_out([ 'zstd', '-dcq', '--', $f ]);
            next if $frc != 0;
            $self->_note_live($fout);
            $self->{scanned}{$f} = 1;
        }
    }

    return scalar keys %{ $self->{scanned} };
}


sub _note_live {
    my ($self, $text) = @_;
    $self->{live}{$1}++ while $text =~ /"chaos_id":"[a-z0-9-]+:(\d+)"/g;
}


sub wait_archived {
    my ($self, $timeout, @ids) = @_;
    my @missing = @ids;

    wait_for(sub {
        $self->scan_bucket;
        @missing = grep { !$self->{live}{$_} } @missing;
        return !@missing;
    }, $timeout);

    return @missing;
}


# ------------------------------------------------------------- scenarios

sub event {
    my ($self, $sc, $msg) = @_;
    my $at = time - $sc->{t0};
    push @{ $sc->{events} }, sprintf('+%.1f s %s', $at, $msg);
    $self->progress("$sc->{name}: $msg");
}


sub health_of {
    my ($self, $t) = @_;
    my ($code, $h) = $t->health(timeout => 5);
    return ($code, $h // {});
}


# Every scenario starts from the same state: store and vendors up, three
# ready instances, and a load balancer that has forgotten earlier
# failures (a reload resets nginx's passive max_fails state).
sub settle {
    my ($self) = @_;

    $self->{s3}->up;
    for my $v (qw(vendor_a vendor_b)) {
        $self->start_vendor($v) unless $self->vendor_running($v);
    }
    for my $i (0 .. 2) {
        my $t = $self->{inst}[$i];
        $t->start unless $t->master_pid;
        next if wait_for(sub { ($self->health_of($t))[0] == 200 }, 60);
        my ($code, $h) = $self->health_of($t);
        croak 'inst-' . ($i + 1) . " is not ready: /health $code "
              . JSON::PP->new->canonical->encode($h) . "\n"
              . RdxTest::_log_tail($t, 15);
    }
    $self->{lb}->reload;
}


sub run_scenario {
    my ($self, $name) = @_;
    my $code = $self->can('sc_' . ($name =~ tr/-/_/r))
        or croak "unknown scenario $name";

    if ($name =~ /^haproxy/ && !$self->{pids}{haproxy}) {
        $self->progress("$name: skipped (no haproxy)");
        return;
    }

    $self->settle;

    my $sc = { name => $name, desc => $self->describe($name), t0 => time,
               events => [], checks => {}, results => {}, loads => [] };
    $self->progress("--- $name: $sc->{desc}");

    $code->($self, $sc);
    $self->stop_load($sc);

    $sc->{elapsed} = time - $sc->{t0};
    push @{ $self->{done} }, $sc;
    $self->progress(sprintf '%s: %d requests in %.1f s', $name,
               scalar keys %{ $sc->{results} }, $sc->{elapsed});
    return $sc;
}


sub sc_steady {
    my ($self, $sc) = @_;
    $self->start_load($sc);
    sleep $self->{p}{warm} + $self->{p}{after} + $self->{p}{down};
}


sub _kill_instance {
    my ($self, $sc, $i, %o) = @_;
    my $t = $self->{inst}[$i];
    my $id = 'inst-' . ($i + 1);

    $self->start_load($sc, %o);
    sleep $self->{p}{warm};

    my @w = $t->worker_pids;
    my $m = $t->kill_master9;
    $self->event($sc, "kill -9 $id: master $m, workers @w");
    sleep $self->{p}{down};

    $t->start;
    $self->event($sc, "$id started again: master " . $t->master_pid);
    sleep $self->{p}{after};
}


sub sc_kill9_instance { $_[0]->_kill_instance($_[1], 1) }


sub sc_kill9_worker {
    my ($self, $sc) = @_;
    my $t = $self->{inst}[0];

    $self->start_load($sc);
    sleep $self->{p}{warm};

    my ($victim) = $t->worker_pids;
    kill 'KILL', $victim;
    $self->event($sc, "kill -9 inst-1 worker $victim");
    wait_for(sub { grep({ $_ != $victim } $t->worker_pids) >= 2 }, 10);
    $self->event($sc, 'inst-1 workers: ' . join(' ', $t->worker_pids));
    sleep $self->{p}{after} + $self->{p}{down};
}


sub sc_reload {
    my ($self, $sc) = @_;
    my $t = $self->{inst}[2];

    $self->start_load($sc);
    sleep $self->{p}{warm};

    my @old = $t->worker_pids;
    $self->event($sc, "nginx -s reload of inst-3 (workers @old)");
    $t->reload;
    $self->event($sc, 'inst-3 old workers gone, new: '
                      . join(' ', $t->worker_pids));
    sleep $self->{p}{after} + $self->{p}{down};
}


sub sc_upgrade {
    my ($self, $sc) = @_;
    my $t = $self->{inst}[0];

    $self->start_load($sc);
    sleep $self->{p}{warm};

    my $old = $t->master_pid;
    $self->event($sc, "USR2 to inst-1 master $old");
    my $new = $t->upgrade(keep_old => 1);
    $self->event($sc, "new master $new ready; WINCH to the old one");
    kill 'WINCH', $old;
    sleep 1;
    kill 'QUIT', $old;
    $self->event($sc, "QUIT to the old master $old");
    wait_for(sub { !RdxTest::_alive($old) }, 60)
        or croak "the old master $old did not exit";
    $self->event($sc, "old master $old exited");
    sleep $self->{p}{after};
}


sub sc_storage_outage {
    my ($self, $sc) = @_;
    my $ch = $sc->{checks};
    my @inst = @{ $self->{inst} };

    $self->start_load($sc);
    sleep $self->{p}{warm};

    $self->{s3}->down;
    $self->event($sc, 'S3 down');
    my $end = time + $self->{p}{outage};
    my (%codes, %storage, %lb);

    while (time < $end) {
        for my $i (0 .. 2) {
            my ($code, $h) = $self->health_of($inst[$i]);
            $codes{$code}++;
            $storage{$i} = $h->{storage} // 'none';
        }
        my $r = $self->{lab}->http(port => $self->{lb}->port('http'),
                                   path => '/health', timeout => 5);
        $lb{ $r->{status} }++;
        sleep 1;
    }

    $ch->{health_codes} = \%codes;
    $ch->{lb_health_codes} = \%lb;
    $ch->{storage_states} = [ map { $storage{$_} } 0 .. 2 ];
    $self->event($sc, 'during the outage: /health ' . _counts(\%codes)
                 . ', via the LB ' . _counts(\%lb) . ', storage '
                 . join('/', @{ $ch->{storage_states} }));

    my @acked = $self->acked_so_far($sc);
    $self->{s3}->up;
    my $up = time;
    $self->event($sc, 'S3 up; ' . scalar(@acked) . ' acknowledged so far');

    my @missing = $self->wait_archived($self->{p}{catchup}, @acked);
    $ch->{catchup_s} = @missing ? undef : time - $up;
    $ch->{catchup_missing} = scalar @missing;
    $self->event($sc, @missing
        ? scalar(@missing) . ' still not archived after '
          . "$self->{p}{catchup} s"
        : sprintf('the archive caught up in %.1f s', time - $up));
    sleep $self->{p}{after};
}


sub _stop_vendors {
    my ($self, $sc, $names, %load) = @_;
    my @names = @$names;

    $self->start_load($sc, %load);
    sleep $self->{p}{warm};

    $self->{lab}->upstream($_)->stop for @names;
    $self->event($sc, join(' and ', @names) . ' down');
    sleep $self->{p}{outage};
    $self->start_vendor($_) for @names;
    $self->event($sc, join(' and ', @names) . ' up');
    sleep $self->{p}{after};
}


sub sc_vendor_outage   { $_[0]->_stop_vendors($_[1], [ 'vendor_a' ]) }
sub sc_vendor_all_down {
    $_[0]->_stop_vendors($_[1], [ 'vendor_a', 'vendor_b' ]);
}


sub sc_spool_full {
    my ($self, $sc) = @_;
    my $ch = $sc->{checks};
    my @inst = @{ $self->{inst} };
    my $lbport = $self->{lb}->port('http');

    for my $i (0 .. 2) {
        $self->write_instance_config($i, max_size => '1m');
        $inst[$i]->reload;
    }
    $self->event($sc, 'every instance reloaded with max_size=1m');

    $self->start_load($sc);
    sleep $self->{p}{warm};

    $self->{s3}->down;
    $self->event($sc, 'S3 down; incompressible 16 KB log batches added');
    my @blob = $self->start_load($sc, paths => [ [ blob => '/api/v2/logs' ] ],
                                 pace => 0.01);

    my $full = wait_for(sub {
        !grep { ($self->health_of($_))[0] != 503 } @inst
    }, 120);
    $self->event($sc, $full ? 'every spool full: /health 503 everywhere'
                            : 'the spools did not all fill in 120 s');
    $ch->{all_full} = $full ? 1 : 0;

    # what an agent gets, from an instance and through the load balancer
    my @probe = ('Content-Type' => 'application/json',
                 'DD-API-KEY' => $API_KEY, 'X-Test-Id' => 'probe');
    my $r = $self->{lab}->http(port => $inst[0]->port('http'),
        path => '/api/v2/series', body => '{"probe":1}', headers => \@probe);
    $ch->{direct} = [ $r->{status}, $r->{headers}{'retry-after'} // '' ];
    $r = $self->{lab}->http(port => $lbport, path => '/api/v2/series',
                            body => '{"probe":2}', headers => \@probe);
    $ch->{via_lb} = [ $r->{status}, $r->{headers}{'retry-after'} // '' ];
    my ($code, $h) = $self->health_of($inst[1]);
    $ch->{health} = [ $code, $h->{status} // '' ];
    $self->event($sc, "an agent gets $ch->{direct}[0] (Retry-After "
                 . "$ch->{direct}[1]) from an instance, $ch->{via_lb}[0]"
                 . " (Retry-After $ch->{via_lb}[1]) through the LB; /health"
                 . " $code $ch->{health}[1]");

    sleep $self->{p}{full_hold};
    $self->stop_load($sc, @blob);
    $self->{s3}->up;
    my $up = time;
    $self->event($sc, 'S3 up');

    my $ready = wait_for(sub {
        !grep { ($self->health_of($_))[0] != 200 } @inst
    }, $self->{p}{catchup});
    $ch->{drain_s} = $ready ? time - $up : undef;
    $self->event($sc, $ready ? sprintf('every instance ready again after '
                                       . '%.1f s', time - $up)
                             : 'not ready again');
    sleep $self->{p}{after};
    $self->stop_load($sc);

    for my $i (0 .. 2) {
        $self->write_instance_config($i);
        $inst[$i]->reload;
    }
    $self->event($sc, 'every instance reloaded with max_size=256m');
}


sub sc_haproxy_kill9 {
    my ($self, $sc) = @_;

    # conf/haproxy.cfg denies an address above 1000 requests in 10 s:
    # the whole load comes from 127.0.0.1, so it stays below
    $self->_kill_instance($sc, 2, port => $self->{lab}->port('haproxy'),
                          pace => 0.1);
}


sub sc_haproxy_vendor_all_down {
    my ($self, $sc) = @_;
    $self->_stop_vendors($sc, [ 'vendor_a', 'vendor_b' ],
                         port => $self->{lab}->port('haproxy'), pace => 0.1);
}


# ----------------------------------------------------------------- finish

sub finish {
    my ($self) = @_;
    my $lab = $self->{lab};
    my %v;

    $self->{s3}->up;

    # everything acknowledged reaches the bucket while the instances run
    my @acked = map { my $s = $_; grep { $s->{results}{$_} =~ /^2/ }
                                  keys %{ $s->{results} } } $self->results;
    my $t = time;
    my @missing = $self->wait_archived($self->{p}{catchup}, @acked);
    $self->progress(sprintf 'archive holds %d of %d acknowledged requests '
                    . 'after %.1f s', @acked - @missing, scalar @acked,
                    time - $t);

    # then a graceful stop: workers seal and ship what is left
    for my $i (0 .. 2) {
        my $inst = $self->{inst}[$i];
        $inst->stop;
        my @left = glob($inst->dir . '/spool/*.*');
        $v{spool_left}[$i] = scalar @left;
    }
    $self->progress('instances stopped; files left in the spools: '
               . join('/', @{ $v{spool_left} }));

    # the bucket, read by the CLI
    my @uri = split ' ', $self->storage_uri;
    my $env = { AWS_ACCESS_KEY_ID => $AK, AWS_SECRET_ACCESS_KEY => $SK };
    my $cli = $self->{cli};

    $t = time;
    my $cat = $lab->path('bucket.ndjson');
    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        open STDOUT, '>', $cat;
        open STDERR, '>', "$cat.err";
        %ENV = (%ENV, %$env);
        exec $cli, 'cat', @uri or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    $v{cat_rc} = $? >> 8;
    $v{cat_s} = time - $t;

    $t = time;
    my ($rc, $out, $err) = RdxTest::_run_out([ $cli, 'verify', @uri ],
                                             env => $env);
    $v{verify_rc} = $rc;
    ($v{verify}) = grep { /^verify:/ } reverse split /\n/, $out . $err;
    $v{verify} //= ($out . $err);
    $v{verify_problems} = [ grep { /^(FAIL|MISSING)/ } split /\n/, $out ];
    $v{verify_s} = time - $t;
    $self->progress("reductrai cat: exit $v{cat_rc}, "
               . sprintf('%.1f s', $v{cat_s}) . "; $v{verify}");

    $self->{verdict} = \%v;
    $self->_tally($cat);
    $self->{total_s} = time - $self->{t0};

    return $self;
}


# what each log says about each test id
sub _tally {
    my ($self, $cat) = @_;
    my $lab = $self->{lab};
    my (%arch, %rid, %foreign, %accepted, %via, %vendor, %lb);

    open my $fh, '<', $cat or croak "$cat: $!";
    while (my $line = <$fh>) {
        my ($rid) = $line =~ /^\{"id":"([^"]+)"/;
        $rid{$rid}++ if defined $rid;
        if ($line =~ /"chaos_id":"[a-z0-9-]+:(\d+)"/) {
            $arch{$1}++;
        } else {
            $foreign{ $rid // '?' } = 1;
        }
    }
    close $fh;
    my %rec_twice = map { $_ => $rid{$_} } grep { $rid{$_} > 1 } keys %rid;

    for my $i (0 .. 2) {
        my $log = $self->{inst}[$i]->path('chaos.log');
        open my $lf, '<', $log or next;
        while (<$lf>) {
            my ($id, $status, $rec, $addr) = /^(\d+) (\d+) (\S+) "([^"]*)"/
                or next;
            next if $rec eq '-';
            # past the commit: forwarded (an upstream was tried) or acked
            next unless $addr ne '-' || $status =~ /^2/;
            $accepted{$id}++;
            $via{$id}{$i} = 1;
        }
    }

    for my $v (qw(vendor_a vendor_b)) {
        open my $vf, '<', $lab->path("upstream-$v.jsonl") or next;
        while (<$vf>) {
            my ($id) = /"x-test-id":"(\d+)"/ or next;
            my ($st) = /"status":(\d+|"close")/;
            $vendor{$id}{$v} = 1 if ($st // '') =~ /^2/;
        }
    }

    if (open my $lf, '<', $self->{lb}->path('lb.log')) {
        while (<$lf>) {
            my ($id, $status, $addr) = /^(\d+) (\d+) "([^"]*)"/ or next;
            $lb{$id} = $addr;
        }
    }

    for my $sc ($self->results) {
        my $res = $sc->{results};
        my @ids = keys %$res;
        my @acked = grep { $res->{$_} =~ /^2/ } @ids;
        my %status;
        $status{ $res->{$_} }++ for @ids;

        my @arch = grep { $arch{$_} } @ids;
        my @acc = grep { $accepted{$_} } @ids;
        my %per_inst;
        for my $id (@ids) {
            $per_inst{$_}++ for keys %{ $via{$id} // {} };
        }

        $sc->{sent} = scalar @ids;
        $sc->{acked} = scalar @acked;
        $sc->{status} = \%status;
        $sc->{archived} = scalar @arch;
        $sc->{dup} = scalar grep { $arch{$_} > 1 } @arch;
        $sc->{copies} = 0;
        $sc->{copies} += $arch{$_} for @arch;
        $sc->{accepted} = scalar @acc;
        $sc->{ack_missing} = [ sort { $a <=> $b } grep { !$arch{$_} } @acked ];
        $sc->{accepted_missing} =
            [ sort { $a <=> $b } grep { !$arch{$_} } @acc ];
        $sc->{vendor_missing} =
            [ sort { $a <=> $b } grep { !$vendor{$_} } @acked ];
        $sc->{by_backup} = scalar grep { $vendor{$_}{vendor_b} } @acked;
        $sc->{per_inst} = [ map { $per_inst{$_} // 0 } 0 .. 2 ];
        $sc->{lb_retried} = scalar grep { ($lb{$_} // '') =~ /,/ } @ids;
        $sc->{lb_nolive} = scalar grep { ($lb{$_} // '') =~ /^[a-z_]+$/ }
                                  @ids;
    }

    $self->{verdict}{records} = scalar keys %rid;
    $self->{verdict}{rec_twice} = \%rec_twice;
    $self->{verdict}{foreign} = [ sort keys %foreign ];
}


sub verdict { $_[0]{verdict} }


sub check_error_logs {
    my ($self) = @_;
    my @allow = (qr/exited on signal 9/);
    my $ok = 1;

    for my $t (@{ $self->{inst} }, $self->{lb}) {
        $ok &&= $t->check_error_log(allow => \@allow);
    }
    return $ok;
}


sub teardown {
    my ($self) = @_;
    if (my $pid = delete $self->{pids}{haproxy}) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
    $self->{s3}->stop if $self->{s3};

    # RdxTest removes each directory, or keeps it when a check failed
    for my $t (grep { defined } @{ $self->{inst} // [] }, $self->{lb},
               $self->{lab}) {
        $t->_cleanup(0);
    }
    return if glob("$self->{base}/rdx-test-*");
    unlink "$self->{base}/ngx_http_reductrai_module.so",
           "$self->{base}/reductrai";
    rmdir $self->{base};
}


sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    if (my $pid = delete $self->{pids}{haproxy}) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}


# ----------------------------------------------------------------- report

sub _counts {
    my ($h) = @_;
    return join ' ', map { "$_ x$h->{$_}" } sort keys %$h;
}


sub _nz { my ($n) = @_; $n ? "**$n**" : '0' }


sub report_markdown {
    my ($self, %o) = @_;
    my $v = $self->{verdict};
    my $p = $self->{p};
    my $md = '';

    my $rev = `git -C $REPO describe --always --dirty 2>/dev/null` // '';
    chomp $rev;
    my ($nginx) = `nginx -v 2>&1` =~ m{nginx/(\S+)};

    $md .= "# Chaos suite report ($self->{profile})\n\n";
    $md .= sprintf "%s, commit %s, nginx %s, %d CPUs; %s profile: "
        . "outages %d s, a killed instance down %d s; whole run %.0f s.\n\n",
        strftime('%Y-%m-%d %H:%M UTC', gmtime($self->{t0})), $rev || '?',
        $nginx // '?', _ncpu(), $self->{profile}, $p->{outage}, $p->{down},
        $self->{total_s} // 0;
    my ($lbf, $haf) = map { s{^\Q$REPO\E/}{}r } @$self{qw(lb_file ha_file)};
    $md .= "Three nginx instances (conf/datadog.conf, worker_processes 2, "
        . "durability write, segment_age 2s, spool_full reject) behind "
        . "nginx with $lbf (haproxy-* scenarios: HAProxy with $haf), one "
        . "s3rver bucket, a primary and a backup mock vendor.\n\n";

    if (my $ck = $o{checks}) {
        my ($pass, $fail, $todo) = @$ck;
        $md .= sprintf "**Checks: %d passed, %d failed, %d known failures "
            . "(TODO).**\n\n", $pass, scalar @$fail, scalar @$todo;
        $md .= "- FAILED: $_\n" for @$fail;
        $md .= "- TODO: $_\n" for @$todo;
        $md .= "\n" if @$fail || @$todo;
    }

    $md .= "| scenario | sent | 2xx | 502 | 503 | other | LB retried "
         . "| accepted | archived | dup | ack-missing | accepted-missing "
         . "| vendor-missing |\n";
    $md .= "|---|" . ('--:|' x 12) . "\n";

    for my $s ($self->results) {
        my %st = %{ $s->{status} };
        my $ok = 0;
        $ok += $st{$_} for grep { /^2/ } keys %st;
        my $other = 0;
        $other += $st{$_} for grep { !/^(2\d\d|502|503)$/ } keys %st;
        $md .= sprintf "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d "
            . "| %s | %s | %s |\n", $s->{name}, $s->{sent}, $ok,
            $st{502} // 0, $st{503} // 0, $other, $s->{lb_retried},
            $s->{accepted}, $s->{archived}, $s->{dup},
            _nz(scalar @{ $s->{ack_missing} }),
            _nz(scalar @{ $s->{accepted_missing} }),
            _nz(scalar @{ $s->{vendor_missing} });
    }

    $md .= "\n*sent*: requests the load generator sent (each with a unique "
        . "id); *2xx*: acknowledged; *LB retried*: requests the load "
        . "balancer sent to more than one instance; *accepted*: ids an "
        . "instance committed to its spool (access log: a record id, then "
        . "forwarded or answered); *archived*: ids found in the bucket; "
        . "*dup*: ids archived more than once (at-least-once delivery: a "
        . "retry after an instance failed or answered 502); *ack-missing*: "
        . "acknowledged but not in the bucket; *accepted-missing*: accepted "
        . "by an instance but not in the bucket; *vendor-missing*: "
        . "acknowledged but never answered 2xx by a vendor. The three "
        . "*missing* columns must be 0.\n\n";

    $md .= sprintf "Bucket: %d records; `reductrai verify`: %s (exit %d, "
        . "%.1f s); `reductrai cat` exit %d (%.1f s); record ids stored "
        . "twice: %d; records without a test id: %d; files left in the "
        . "spools after the final quit: %s.\n",
        $v->{records}, $v->{verify}, $v->{verify_rc}, $v->{verify_s},
        $v->{cat_rc}, $v->{cat_s}, scalar keys %{ $v->{rec_twice} },
        scalar @{ $v->{foreign} }, join('/', @{ $v->{spool_left} });

    $md .= "\n## Scenarios\n";
    for my $s ($self->results) {
        $md .= sprintf "\n### %s\n\n%s (%.0f s). Requests per instance "
            . "(inst-1/2/3): %s; answered by the backup vendor: %d; "
            . "refused by the nginx LB without trying an instance: %d; "
            . "records in the bucket: %d for %d ids.\n\n",
            $s->{name}, $s->{desc}, $s->{elapsed},
            join('/', @{ $s->{per_inst} }), $s->{by_backup},
            $s->{lb_nolive}, $s->{copies}, $s->{archived};
        $md .= "- $_\n" for @{ $s->{events} };
        for my $k (qw(ack_missing accepted_missing vendor_missing)) {
            my @m = @{ $s->{$k} } or next;
            $md .= "- **$k**: " . join(' ', @m[0 .. ($#m > 19 ? 19 : $#m)])
                . (@m > 20 ? ' …' : '') . "\n";
        }
    }

    return $md;
}


sub _ncpu {
    my $n = () = (RdxTest::_slurp('/proc/cpuinfo') // '') =~ /^processor/mg;
    return $n;
}


1;
