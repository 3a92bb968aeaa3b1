#!/usr/bin/perl
# Stream names chosen by clients (reductrai_stream $arg_s) cannot exhaust
# the stream table (issue 13, item 3): the configured names have their
# slots from the start, names from a variable take at most 12 of the 16,
# the rest count as "other" and in reductrai_stream_overflow_total, and a
# stream configured by a later reload still gets a slot of its own.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
$t->start_upstream(name => 'vendor', status => 202);

my %conf = (
    server => <<'EOT',
        location /dyn/ {
            reductrai on;
            reductrai_stream $arg_s;
            reductrai_forward off;
        }

        location /logs/ {
            reductrai on;
            reductrai_stream logs;
            reductrai_forward off;
        }
%%MORE%%
EOT
);

sub config {
    my ($more) = @_;
    (my $server = $conf{server}) =~ s/%%MORE%%/$more/;
    $t->reductrai_config(server => $server);
}

config('');
$t->start;

sub post {
    my ($path) = @_;
    my $r = $t->http(path => $path, body => '{"a":1}');
    return $r->{status};
}

# 20 client-chosen names, each sent twice
my @codes;
for my $round (1 .. 2) {
    push @codes, post(sprintf '/dyn/x?s=n%02d', $_) for 0 .. 19;
}
is(scalar(grep { $_ == 202 } @codes), 40, 'every request is accepted');

is(post('/dyn/x?s=NOT_VALID'), 202, 'an invalid name is accepted too');
is(post('/logs/x'), 202, 'the configured stream answers');

my $m = $t->metrics;
my @dyn = grep { /^reductrai_requests_total\{stream="n\d\d"\}$/ } keys %$m;

# "default" (location /) and "logs" are configured: 12 - 2 for clients
is(scalar @dyn, 10, 'clients got 10 stream slots');
is($m->{'reductrai_requests_total{stream="n00"}'}, 2, 'n00 has its slot');
is($m->{'reductrai_requests_total{stream="n09"}'}, 2, 'n09 has its slot');
is($m->{'reductrai_requests_total{stream="n10"}'}, undef, 'n10 has none');
is($m->{'reductrai_requests_total{stream="other"}'}, 21,
   '20 requests of 10 names without a slot and 1 invalid count as other');
is($m->{reductrai_stream_overflow_total}, 21,
   'reductrai_stream_overflow_total counts them');
is($m->{'reductrai_requests_total{stream="logs"}'}, 1,
   'the configured stream has its slot');

# a reload keeps the slots (and counters) and adds the new configured name
config(<<'EOT');
        location /traces/ {
            reductrai on;
            reductrai_stream traces;
            reductrai_forward off;
        }
EOT
$t->reload;

is(post('/traces/x'), 202, 'the stream configured by the reload answers');
is(post('/dyn/x?s=n11'), 202, 'client names still answer after the reload');

$m = $t->metrics;
is($m->{'reductrai_requests_total{stream="traces"}'}, 1,
   'a stream configured by a reload gets a slot of its own');
is($m->{'reductrai_requests_total{stream="n00"}'}, 2,
   'client slots and counters survive the reload');
is($m->{reductrai_stream_overflow_total}, 22, 'overflow counted after it');

my @records = $t->wait_archived(44, 30);
my %by_stream;
$by_stream{$_->{stream}}++ for @records;
is($by_stream{traces}, 1, 'the record of /traces/ is in stream traces');
is($by_stream{other}, 22, '22 records in stream other');
is($by_stream{n05}, 2, 'n05 records in their own stream');

$t->check_error_log;
done_testing;
