#!/usr/bin/perl
# The real Prometheus (Debian's binary) remote-writes to nginx + module:
# snappy-compressed WriteRequests are forwarded as sent and archived as JSON
# with body_format prometheus.WriteRequest.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use lib 't/lib';
use RdxTest qw(wait_for);

my $prom = '/usr/bin/prometheus';
plan skip_all => 'no prometheus binary (tools/deps.sh test)' unless -x $prom;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 204);

$t->reductrai_config;
$t->start;

my $pport = $t->port('prom');
my $hport = $t->port('http');

$t->write_file('prometheus.yml', <<"EOT");
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['127.0.0.1:$pport']
remote_write:
  - url: http://127.0.0.1:$hport/api/v1/write
    queue_config:
      batch_send_deadline: 1s
EOT

my $pid = fork // die "fork: $!";
if (!$pid) {
    open STDOUT, '>', $t->path('prometheus.log');
    open STDERR, '>&', \*STDOUT;
    exec $prom, '--config.file=' . $t->path('prometheus.yml'),
         '--storage.tsdb.path=' . $t->path('tsdb'),
         "--web.listen-address=127.0.0.1:$pport"
        or POSIX::_exit(127);
}

my @rec;
wait_for(sub {
    @rec = grep { ($_->{body_format} // '') eq 'prometheus.WriteRequest' }
           $t->archive_records($t->archive_dir);
    return @rec >= 2;
}, 60, 'two remote-write requests archived');

kill 'TERM', $pid;
waitpid $pid, 0;

ok(@rec >= 2, scalar(@rec) . ' WriteRequests archived as JSON');

my @sent = grep { $_->{uri} eq '/api/v1/write' } $up->requests;
ok(@sent >= @rec, 'the vendor got every archived request');
is($sent[0]{headers}{'content-encoding'}, 'snappy',
   'the vendor got them snappy-encoded, as sent');

my $r = $rec[0];
is($r->{content_encoding}, 'snappy', 'content_encoding as received');
ok(!exists $r->{decode_error}, 'no decode_error');

my ($up_series) = grep {
    my %l = map { $_->{name} => $_->{value} } @{ $_->{labels} };
    ($l{__name__} // '') eq 'up' && ($l{job} // '') eq 'self'
} map { @{ $_->{body}{timeseries} } } @rec;

ok($up_series, 'the "up" series of job "self" is in the archive')
    or diag(encode_json($r->{body}));
is($up_series->{samples}[0]{value}, 1, 'up = 1');
like($up_series->{samples}[0]{timestamp}, qr/^\d{13}$/,
     'sample timestamp in milliseconds, as a JSON number');

$t->check_error_log;

done_testing;
