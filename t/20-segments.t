#!/usr/bin/perl
# Segments: sealed by size and by age, one per stream, numbered without
# gaps, keyed as DESIGN.md says; a graceful stop and a reload seal and
# ship what is open.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest qw(wait_for parse_key);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

$t->reductrai_config(
    directives => { segment_size => '4k', segment_age => '2s',
                    instance => 'seg-test.1' },
    http => <<'EOT',
    map $uri $stream {
        ~^/logs  logs;
        default  metrics;
    }
EOT
    location => '            reductrai_stream $stream;',
);
$t->start;

# 1 KiB bodies: a 4k segment takes 4 or 5 of them
my $pad = 'x' x 1000;
for my $i (1 .. 20) {
    my $r = $t->http(path => "/metrics/$i", body => qq{{"i":$i,"p":"$pad"}});
    die "request $i: $r->{status}" unless $r->{status} == 202;
}
$t->http(path => '/logs/1', body => '{"log":1}');

my @objects;
wait_for(sub {
    @objects = $t->archive_objects($t->archive_dir);
    return (map { @{ $_->{records} } } @objects) == 21;
}, 20, 'all 21 records shipped');

my @metrics = grep { $_->{key} =~ m{^stream=metrics/} } @objects;
my @logs = grep { $_->{key} =~ m{^stream=logs/} } @objects;

is(scalar(map { @{ $_->{records} } } @metrics), 20, '20 metrics records');
is(scalar(map { @{ $_->{records} } } @logs), 1, 'logs in their own segment');
ok(@metrics >= 4, 'size rotation: ' . scalar(@metrics) . ' metrics objects');

# reductrai_segment_size counts decoded body bytes, metadata aside
sub body_bytes {
    my ($o, $n) = @_;
    my $sum = 0;
    $sum += $_->{size} for @{ $o->{records} }[0 .. $n - 1];
    return $sum;
}

my @full = @metrics[0 .. $#metrics - 1];
is((grep { body_bytes($_, scalar @{ $_->{records} }) >= 4096 } @full),
   scalar @full,
   'every segment but the last reached reductrai_segment_size of bodies');
is((grep { body_bytes($_, $#{ $_->{records} }) < 4096 } @full),
   scalar @full, 'and not one record later');

for my $o (@objects) {
    like($o->{key}, qr{^stream=(metrics|logs)/dt=\d{4}-\d\d-\d\d/hour=\d\d/
                        seg-test\.1-\d+-\d{13}-\d{8}\.ndjson\.zst$}x,
         "key layout: $o->{key}");
}

my @keys = map { parse_key($_->{key}) } @metrics;
my @seq = sort { $a <=> $b } map { $_->{seq} + 0 } @keys;
is_deeply(\@seq, [ 1 .. @seq ], 'sequence numbers run from 1 without gap');
my %workers = map { ("$_->{pid}-$_->{startms}" => 1) } @keys;
is(scalar keys %workers, 1, 'one worker wrote them');

my @order = map { $_->{body}{i} } map { @{ $_->{records} } }
            sort { parse_key($a->{key})->{seq} <=> parse_key($b->{key})->{seq}
                 } @metrics;
is_deeply(\@order, [ 1 .. 20 ], 'records in the order they were committed');

my ($hour_ok) = grep {
    my $k = parse_key($_->{key});
    my $ts = $_->{records}[0]{ts};
    $ts =~ /^(\d{4}-\d\d-\d\d)T(\d\d)/ && $k->{dt} eq $1 && $k->{hour} eq $2;
} @objects;
ok($hour_ok, 'the partition is the hour of the records');

# --- age: a lone record is shipped after reductrai_segment_age

my $before = @objects;
$t->http(path => '/metrics/late', body => '{"late":1}');
my $t0 = time;
ok(wait_for(sub { $t->archive_objects($t->archive_dir) > $before },
            15, 'a lone record sealed by age'),
   'a lone record is sealed by reductrai_segment_age');
my $age = time - $t0;
ok($age >= 1, "sealed by age after ${age}s, not at once");

# --- a graceful stop seals and ships the open segment

$t->stop;
$t->reductrai_config(directives => { segment_age => '1h' });
$t->start;
$t->http(path => '/metrics/quit', body => '{"quit":1}');
$t->http(path => '/metrics/quit2', body => '{"quit":2}');
sleep 1;
ok(!(grep { $_->{uri} =~ /quit/ } $t->archive_records($t->archive_dir)),
   'nothing shipped while the segment is open');
$t->stop;
my @quit = grep { $_->{uri} =~ /quit/ } $t->archive_records($t->archive_dir);
is(scalar @quit, 2, 'nginx -s quit sealed and shipped the open segment');
my @spool = glob($t->path('spool') . '/*');
is(scalar @spool, 0, 'the spool is empty after a graceful stop')
    or diag("@spool");

# --- a reload: the old worker seals and ships, the new one goes on

$t->start;
$t->http(path => '/metrics/reload1', body => '{"r":1}');
$t->reload;
$t->http(path => '/metrics/reload2', body => '{"r":2}');
wait_for(sub {
    (grep { $_->{uri} =~ /reload1/ } $t->archive_records($t->archive_dir))
}, 15, 'the old worker shipped its segment');
ok((grep { $_->{uri} =~ /reload1/ } $t->archive_records($t->archive_dir)),
   'reload: the old worker shipped its records');
$t->stop;
my @reload = grep { $_->{uri} =~ /reload/ } $t->archive_records($t->archive_dir);
is(scalar @reload, 2, 'reload: both records archived once');

$t->check_error_log;

done_testing;
