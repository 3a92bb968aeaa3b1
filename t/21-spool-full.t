#!/usr/bin/perl
# The spool-full policy: when storage is down and the spool reaches
# max_size, when the memory buffer is full, or when a commit takes longer
# than reductrai_commit_timeout, "reject" answers 503 with Retry-After,
# "bypass" forwards without archiving and counts it, "auto" rejects what
# would be answered locally and bypasses what is forwarded.  Nothing that
# was accepted is lost once storage is back.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest qw(wait_for random_text);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

# storage the workers cannot write to: every upload fails
my $store = $t->path('store');
mkdir $store, 0755 or die;

$t->reductrai_config(
    directives => { storage => "file://$store/archive",
                    spool => '%%DIR%%/spool max_size=1m',
                    segment_size => '64k',
                    buffer_size => '256k' },
    server => <<'EOT',
        location /reject/ {
            reductrai on;
            reductrai_spool_full reject;
            proxy_pass http://vendor;
        }

        location /bypass/ {
            reductrai on;
            reductrai_spool_full bypass;
            proxy_pass http://vendor;
        }

        location /auto-local/ {
            reductrai on;
            reductrai_forward off;
        }
EOT
);
$t->start;

sub random_json { '{"blob":"' . random_text($_[0]) . '"}' }

# --- buffer full: a body larger than reductrai_buffer_size

my $r = $t->http(path => '/reject/big', body => random_json(300_000));
is($r->{status}, 503, 'buffer full + reject: 503');
is($r->{headers}{'retry-after'}, '5', 'with Retry-After');
$r = $t->http(path => '/bypass/big', body => random_json(300_000));
is($r->{status}, 202, 'buffer full + bypass: forwarded');
$r = $t->http(path => '/auto/big', body => random_json(300_000));
is($r->{status}, 202, 'buffer full + auto, forwarded location: bypass');
$r = $t->http(path => '/auto-local/big', body => random_json(300_000));
is($r->{status}, 503, 'buffer full + auto, local answer: reject');

my $m = $t->metrics;
is($m->{reductrai_archive_dropped_total}, 2, 'two bypassed records counted');
is($m->{'reductrai_requests_errors_total{stream="default"}'}, 2,
   'two rejected requests counted as errors');

# --- fill the spool: storage is down, so segments stay

my @accepted;
my $i = 0;
wait_for(sub {
    $i++;
    my $res = $t->http(path => "/reject/fill-$i", body => random_json(60_000));
    push @accepted, "/reject/fill-$i" if $res->{status} == 202;
    return $res->{status} == 503;
}, 60, 'the spool fills up');

ok(@accepted >= 10, scalar(@accepted) . ' requests accepted before full');

$m = $t->metrics;
ok($m->{reductrai_spool_bytes} >= 1024 * 1024,
   "spool_bytes $m->{reductrai_spool_bytes} reached max_size");
ok($m->{reductrai_storage_upload_errors_total} > 0, 'upload errors counted');
is($m->{reductrai_storage_connected}, 0, 'storage_connected 0');
is($m->{reductrai_health_status}, 0, 'health_status 0 while full');

my ($code, $health) = $t->health;
is($code, 503, '/health: 503 while this instance would refuse');
is($health->{status}, 'unavailable', '/health: status unavailable');
is($health->{storage}, 'disconnected', '/health: storage disconnected');
ok($health->{spool}{bytes} >= $health->{spool}{max_bytes},
   '/health: spool bytes at max_bytes');
ok($health->{archive_lag_seconds} >= 0, '/health: archive lag reported');

$r = $t->http(path => '/reject/when-full', body => '{"x":1}');
is($r->{status}, 503, 'spool full + reject: 503');
is($r->{headers}{'retry-after'}, '5', 'with Retry-After');
$r = $t->http(path => '/bypass/when-full', body => '{"x":1}');
is($r->{status}, 202, 'spool full + bypass: forwarded');
$r = $t->http(path => '/auto-local/when-full', body => '{"x":1}');
is($r->{status}, 503, 'spool full + auto, answered locally: rejected');
$r = $t->http(path => '/auto/when-full', body => '{"x":1}');
is($r->{status}, 202, 'spool full + auto, forwarded: bypassed');

ok((grep { $_->{uri} eq '/bypass/when-full' } $up->requests),
   'the bypassed request reached the vendor');

# refusals are counted, not logged one by one: at most one line a minute
# per worker, however many agents are turned away
my $refused = 0;
for my $k (1 .. 30) {
    $refused++ if $t->http(path => "/reject/flood-$k", body => '{"x":1}')
                      ->{status} == 503;
}
is($refused, 30, '30 more requests refused while full');
my @full_lines = $t->grep_log(qr/reductrai spool ".*" is full/);
my $workers = () = $t->worker_pids;
ok(@full_lines >= 1 && @full_lines <= $workers,
   scalar(@full_lines) . " \"spool is full\" lines for $workers workers");

# --- storage comes back: the spool drains and nothing accepted is lost

my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
chown $uid, $gid, $store or die;

my %want = map { $_ => 1 } @accepted;
wait_for(sub {
    my %got = map { $_->{uri} => 1 }
              $t->archive_records("$store/archive");
    return !grep { !$got{$_} } keys %want;
}, 60, 'every accepted request archived');

my %got;
$got{$_->{uri}}++ for $t->archive_records("$store/archive");
is((grep { $got{$_} } @accepted), scalar @accepted,
   'every accepted request is in the archive');
is((grep { $_ > 1 } values %got), 0, 'and only once');
ok(!$got{'/bypass/when-full'} && !$got{'/reject/when-full'},
   'bypassed and rejected requests are not');

wait_for(sub { ($t->health)[0] == 200 }, 30, 'ready again');
($code, $health) = $t->health;
is($code, 200, '/health: 200 once the spool has room');
is($health->{storage}, 'connected', '/health: storage connected');
$m = $t->metrics;
is($m->{reductrai_storage_connected}, 1, 'storage_connected 1');

$r = $t->http(path => '/reject/after', body => '{"x":1}');
is($r->{status}, 202, 'accepted again');

# --- a commit slower than reductrai_commit_timeout

$t->stop;
$t->reductrai_config(
    directives => { commit_timeout => '1ms', max_decoded_size => '64m' },
    server => <<'EOT',
        location /reject/ {
            reductrai on;
            reductrai_spool_full reject;
            proxy_pass http://vendor;
        }
EOT
);
$t->start;

# a 16 MB body takes tens of milliseconds to encode
my $slow = '[' . join(',', ('{"k":"v","n":12345}') x 800_000) . ']';
$r = $t->http(path => '/reject/slow', body => $slow, timeout => 30);
is($r->{status}, 503, 'commit timeout + reject: 503');
$r = $t->http(path => '/bypass-by-auto', body => $slow, timeout => 30);
is($r->{status}, 202, 'commit timeout + auto (forwarded): bypassed');
ok($t->grep_log(qr/reductrai commit took longer than/),
   'the timeout is logged');

$t->check_error_log(allow => [ qr/reductrai storage .* failed/ ]);

done_testing;
