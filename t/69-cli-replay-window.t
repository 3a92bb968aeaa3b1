#!/usr/bin/perl
# reductrai replay and the vendor's clock: an archive with old and new
# records (objects built with the harness, records stamped from 3 minutes
# to 3 days ago) replayed to a local intake that mimics Datadog's: it
# answers 202 and silently drops metric points older than 1 hour and logs
# older than 18 hours, and answers 400 or 413 to some payloads.  Replay
# must count, before sending, the records outside each window (by the
# payload's timestamps, else by arrival time), skip them by default, send
# them with --include-expired, honour --window, and report the answers per
# status, exiting non-zero when a record was not accepted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip);
use IO::Compress::Gzip qw(gzip $GzipError);
use JSON::PP ();
use POSIX qw(strftime WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);

use RdxTest;
use RdxCli qw(cli);

my $t = RdxTest->new;
my $json = JSON::PP->new->utf8->canonical;

my $now = int(time);
my $min = 60;
my $hour = 3600;

sub iso {
    my ($s) = @_;
    return strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime $s);
}


# --- the archive ------------------------------------------------------------

# [name, stream, uri, arrival (seconds ago), body]
my @recs = (
    # metrics: points as old as the record
    [ m1 => metrics => '/api/v1/series', 5 * $min,
      { series => [ { metric => 'm1', points => [ [ $now - 5 * $min, 1 ] ] } ] } ],
    [ m2 => metrics => '/api/v1/series', 2 * $hour,
      { series => [ { metric => 'm2', points => [ [ $now - 2 * $hour, 1 ] ] } ] } ],
    # arrived 10 minutes ago, but the agent had buffered 3 hours-old points
    [ m3 => metrics => '/api/v1/series', 10 * $min,
      { series => [ { metric => 'm3', points => [ [ $now - 3 * $hour, 1 ] ] } ] } ],
    # partly: one old point, one fresh
    [ m4 => metrics => '/api/v1/series', 30 * $min,
      { series => [ { metric => 'm4', points => [ [ $now - 2 * $hour, 1 ],
                                                  [ $now - 20 * $min, 2 ] ] } ] } ],
    [ m5 => metrics => '/api/v1/series', 5 * $min,
      { series => [ { metric => 'bad.payload', points => [ [ $now - 5 * $min, 1 ] ] } ] } ],
    [ m6 => metrics => '/api/v1/series', 3 * $min,
      { series => [ { metric => 'too.large', points => [ [ $now - 3 * $min, 1 ] ] } ] } ],
    # v2 shape, points as objects
    [ m7 => metrics => '/api/v2/series', 4 * $hour,
      { series => [ { metric => 'm7', points => [ { timestamp => $now - 4 * $hour,
                                                    value => 1 } ] } ] } ],
    # no timestamp in the body: judged by arrival time
    [ m8 => metrics => '/api/v1/series', 2 * $hour, { series => [] } ],
    # logs: timestamps in ms, an RFC 3339 string, or none
    [ l1 => logs => '/api/v2/logs', 1 * $hour,
      [ { message => 'l1', timestamp => ($now - $hour) * 1000 } ] ],
    [ l2 => logs => '/api/v2/logs', 20 * $hour,
      [ { message => 'l2', timestamp => ($now - 20 * $hour) * 1000 } ] ],
    [ l3 => logs => '/api/v2/logs', 30 * $hour, [ { message => 'l3' } ] ],
    [ l4 => logs => '/api/v2/logs', 2 * $hour,
      [ { message => 'l4', timestamp => iso($now - 19 * $hour) } ] ],
    # no window for other paths
    [ o1 => other => '/other/x', 3 * 86400, { o => 1 } ],
);

my $arch = $t->path('archive');
my (%objects, %id_of, $n);

for my $r (@recs) {
    my ($name, $stream, $uri, $ago, $body) = @$r;
    my $ts = $now - $ago;
    my $id = sprintf 'cli-test-100-1700000000000-%d', ++$n;
    $id_of{$name} = $id;
    my $b = $json->encode($body);
    my $line = qq({"id":"$id","ts":"${\ iso($ts)}","stream":"$stream",)
             . qq("method":"POST","uri":"$uri?n=$name","host":"intake",)
             . qq("client":"127.0.0.1","request_id":"$name",)
             . qq("content_type":"application/json","content_encoding":null,)
             . qq("user_agent":"datadog-agent/7.50","api_key_fp":null,)
             . qq("forwarded":true,"size":${\ length $b},"body":$b}\n);
    my $dir = strftime("stream=$stream/dt=%Y-%m-%d/hour=%H", gmtime $ts);
    push @{ $objects{$dir} }, $line;
}

my $seq = 0;
for my $dir (sort keys %objects) {
    $t->write_archive_object(
        sprintf('%s/%s/cli-test-100-1700000000000-%08d.ndjson.zst', $arch,
                $dir, ++$seq),
        join '', @{ $objects{$dir} });
}

my $uri = "file://$arch";
my $r = cli('cat', $uri);
is(scalar(split /\n/, $r->{out}), scalar @recs, 'the archive holds 13 records')
    or diag($r->{err});


# --- an intake with Datadog's clock ------------------------------------------

my $port = $t->port('intake');
my $log = $t->path('intake.jsonl');

sub start_intake {
    unlink $log;
    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $port, Listen => 64, ReuseAddr => 1, Timeout => 1)
        or die "listen $port: $!";
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $ls;
        return $pid;
    }
    my $parent = getppid;
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    for ( ;; ) {
        # do not outlive a test killed without cleanup
        POSIX::_exit(0) if getppid() != $parent;
        my $c = $ls->accept or next;
        $c->timeout(10);
        intake_serve($c);
        close $c;
    }
}

sub rfc3339 {
    my ($s) = @_;
    my @f = $s =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/ or return;
    return timegm($f[5], $f[4], $f[3], $f[2], $f[1] - 1, $f[0]);
}

# one request a connection (Connection: close), logged as a JSON line
sub intake_serve {
    my ($c) = @_;
    my $buf = '';
    while (index($buf, "\r\n\r\n") < 0) {
        sysread($c, $buf, 65536, length $buf) or return;
    }
    my $end = index($buf, "\r\n\r\n");
    my ($line, @h) = split /\r\n/, substr($buf, 0, $end);
    my $body = substr($buf, $end + 4);
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } @h;
    while (length $body < ($h{'content-length'} // 0)) {
        sysread($c, $body, 65536, length $body) or last;
    }
    if (($h{'content-encoding'} // '') eq 'gzip') {
        gunzip(\(my $in = $body) => \$body);
    }
    my ($method, $path) = split / /, $line;
    my $data = eval { $json->decode($body) };
    my $t0 = time;
    my %rec = (path => $path, id => $h{'x-reductrai-record-id'},
               kept => 0, dropped => 0, restamped => 0, status => 202);

    if ($path =~ m{^/api/v[12]/series}) {
        for my $s (@{ $data->{series} // [] }) {
            $rec{status} = 400 if $s->{metric} eq 'bad.payload';
            $rec{status} = 413 if $s->{metric} eq 'too.large';
            for my $p (@{ $s->{points} // [] }) {
                my $ts = ref $p eq 'ARRAY' ? $p->[0] : $p->{timestamp};
                $rec{ $ts >= $t0 - 3600 ? 'kept' : 'dropped' }++;
            }
        }
    } elsif ($path =~ m{^/api/v2/logs}) {
        for my $l (@{ $data // [] }) {
            my $ts = $l->{timestamp};
            if (!defined $ts) {
                $rec{restamped}++;      # stamped with the time of receipt
                next;
            }
            $ts = $ts =~ /^\d+$/ ? $ts / 1000 : rfc3339($ts);
            $rec{ $ts >= $t0 - 18 * 3600 ? 'kept' : 'dropped' }++;
        }
    }

    my $answer = $rec{status} == 202 ? '{}' : '{"errors":["refused"]}';
    syswrite $c, "HTTP/1.1 $rec{status} X\r\nContent-Type: application/json\r\n"
               . "Content-Length: " . length($answer) . "\r\n"
               . "Connection: close\r\n\r\n$answer";

    open my $fh, '>>', $log or return;
    print $fh $json->encode(\%rec), "\n";
    close $fh;
}

sub received {
    open my $fh, '<', $log or return {};
    my %by;
    while (<$fh>) {
        my $q = $json->decode($_);
        my ($name) = $q->{path} =~ /n=(\w+)/;
        $by{$name} = $q;
    }
    return \%by;
}

sub sum_of {
    my ($by, $field) = @_;
    my $s = 0;
    $s += $_->{$field} for values %$by;
    return $s;
}

my $pid = start_intake();
my $to = "http://127.0.0.1:$port";


# --- by default: counted first, skipped, answers per status -------------------

$r = cli('replay', $uri, '--to', $to, '--concurrency', '2');
is($r->{rc}, 5, 'a 400 and a 413: exit 5') or diag($r->{err});

like($r->{err}, qr/^replay: metrics, window 1h: 8 record\(s\): 4 outside \(skipped\), 1 partly outside \(sent\), 3 inside; judged by payload timestamps 7, by arrival time 1$/m,
     'metrics: 4 outside, 1 partly, 3 inside') or diag($r->{err});
like($r->{err}, qr/^replay: logs, window 18h: 4 record\(s\): 3 outside \(skipped\), 0 partly outside \(sent\), 1 inside; judged by payload timestamps 3, by arrival time 1$/m,
     'logs: 3 outside, 1 inside');
like($r->{err}, qr/^replay: other, no window: 1 record\(s\)$/m, 'other: no window');

my @lines = split /\n/, $r->{err};
my ($first_count) = grep { $lines[$_] =~ /^replay: metrics, window/ } 0 .. $#lines;
my ($first_failure) = grep { $lines[$_] =~ /HTTP 4\d\d/ } 0 .. $#lines;
ok(defined $first_count && defined $first_failure
   && $first_count < $first_failure, 'the count comes before any answer');

like($r->{err}, qr/^replay: 6 sent, 4 ok, 2 failed, 0 skipped, 0 retries/m,
     'summary: 6 sent') or diag($r->{err});
like($r->{err}, qr/^replay: answers: 202: 4, 400: 1, 413: 1$/m,
     'answers per status');
like($r->{err}, qr/^replay: outside the window: 7 not sent \(metrics 4, logs 3\); --include-expired sends them$/m,
     'the skipped records, per kind');

my $got = received();
is_deeply([ sort keys %$got ], [ qw(l1 m1 m4 m5 m6 o1) ],
          'the intake received the 6 records inside their window');
is($got->{m4}{kept}, 1, 'm4 (partly outside): its fresh point kept');
is($got->{m4}{dropped}, 1, 'm4: its old point dropped');
is(sum_of($got, 'dropped'), 1, 'nothing else was dropped by the intake');
is($got->{m5}{status}, 400, 'm5 answered 400');
is($got->{m6}{status}, 413, 'm6 answered 413');
is($got->{m1}{id}, $id_of{m1}, 'X-Reductrai-Record-Id sent');


# --- a clean run exits 0 ------------------------------------------------------------

unlink $log;
$r = cli('replay', $uri, '--stream', 'logs', '--to', $to);
is($r->{rc}, 0, 'logs alone: exit 0, though 3 were skipped') or diag($r->{err});
like($r->{err}, qr/^replay: 1 sent, 1 ok, 0 failed/m, '1 sent');
like($r->{err}, qr/^replay: answers: 202: 1$/m, 'answers: 202: 1');
like($r->{err}, qr/^replay: outside the window: 3 not sent \(logs 3\)/m,
     '3 not sent');
is_deeply([ sort keys %{ received() } ], [ 'l1' ], 'only l1 arrived');


# --- --include-expired: sent, and the intake drops them ----------------------------

unlink $log;
$r = cli('replay', $uri, '--to', $to, '--include-expired');
is($r->{rc}, 5, '--include-expired: exit 5 (the 400 and 413)');
like($r->{err}, qr/^replay: metrics, window 1h: 8 record\(s\): 4 outside \(sent: --include-expired\)/m,
     'the count says they are sent');
like($r->{err}, qr/^replay: 13 sent, 11 ok, 2 failed/m, '13 sent');
like($r->{err}, qr/^replay: answers: 202: 11, 400: 1, 413: 1$/m,
     'answers: 202: 11, 400: 1, 413: 1');
like($r->{err}, qr/^replay: outside the window: 7 sent anyway \(metrics 4, logs 3\): a 2xx answer does not mean the intake kept them$/m,
     'the warning');

$got = received();
is(scalar keys %$got, 13, 'every record arrived');
is($got->{$_}{status}, 202, "$_: answered 202") for qw(m2 m3 m7 l2 l4);
is($got->{$_}{dropped}, 1, "$_: but its points were dropped") for qw(m2 m3 m7 l2 l4);
is(sum_of($got, 'kept'), 5, 'the intake kept 5 points and logs (m1 m4 m5 m6 l1)');
is(sum_of($got, 'dropped'), 6, 'and dropped 6 (m2 m3 m4 m7 l2 l4)');
is($got->{l3}{restamped}, 1,
   'l3 (no timestamp) was kept with the time of receipt, as Datadog does');


# --- --window ------------------------------------------------------------------------

unlink $log;
$r = cli('replay', $uri, '--to', $to, '--window', 'metrics=5h', '--dry-run');
is($r->{rc}, 0, '--window metrics=5h --dry-run: exit 0') or diag($r->{err});
like($r->{err}, qr/^replay: metrics, window 5h: 8 record\(s\): 0 outside \(skipped\), 0 partly outside \(sent\), 8 inside/m,
     'metrics=5h: every metric inside');
like($r->{err}, qr/^replay: logs, window 18h: 4 record\(s\): 3 outside/m,
     'logs keep their 18h default');
like($r->{err}, qr/^replay \(dry run\): 10 would be sent/m, '10 would be sent');
is(scalar(split /\n/, $r->{out}), 10, '--dry-run: 10 lines');
sleep 0.2;
ok(!-e $log, 'nothing sent');

$r = cli('replay', $uri, '--to', $to, '--window', 'none', '--dry-run');
unlike($r->{err}, qr/window|outside/, '--window none: no count, no window');
like($r->{err}, qr/^replay \(dry run\): 13 would be sent/m, '13 would be sent');

$r = cli('replay', $uri, '--to', $to, '--window', 'logs=none,metrics=90m',
         '--dry-run');
like($r->{err}, qr/^replay: metrics, window 90m: 8 record\(s\): 4 outside \(skipped\), 1 partly/m,
     'metrics=90m: m2 m3 m7 m8 outside, m4 partly');
like($r->{err}, qr/^replay: logs, no window: 4 record\(s\)$/m, 'logs=none');

for my $bad ('metrics', 'metrics=', 'metric=1h', 'logs=-1h', 'logs=1x', '') {
    $r = cli('replay', $uri, '--to', $to, '--window', $bad);
    is($r->{rc}, 2, "--window '$bad': usage error");
    like($r->{err}, qr/^reductrai: replay: --window/m, "--window '$bad': says why");
}

$r = cli('replay', '--help');
like($r->{out}, qr/--window SPEC/, '--help: --window');
like($r->{out}, qr/--include-expired/, '--help: --include-expired');
like($r->{out}, qr/older than 1 hour.*18 hours/s, '--help: the windows');


kill 'TERM', $pid;
waitpid $pid, 0;

$t->check_error_log;
done_testing;
