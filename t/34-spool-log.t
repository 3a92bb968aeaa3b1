#!/usr/bin/perl
# The spool log keeps the order of a stream's records whatever path their
# bodies take: in memory (written from nginx's buffers at the end of the
# event-loop pass) or in nginx's temporary file (appended by a thread),
# with "write" and with "fsync".  A log seals when the UTC hour changes, so
# that no object spans an hour (the clock is moved with libfaketime).

use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use lib 't/lib';
use RdxTest qw(wait_for parse_key);

# --- bodies in memory and in temporary files, one stream, in order

for my $durability (qw(write fsync)) {
    my $t = RdxTest->new;
    $t->start_upstream(name => 'vendor', status => 202);
    $t->reductrai_config(buffer => '1k',
                         directives => { durability => $durability });
    $t->start;

    my (@sent, %sha);
    for my $i (1 .. 40) {
        # every third body spills into a temporary file
        my $pad = $i % 3 == 0 ? RdxTest::random_text(48 * 1024) : 'x' x 50;
        my $body = qq({"n":$i,"pad":"$pad"});
        my $r = $t->http(path => "/api/$i", body => $body);
        is($r->{status}, 202, "$durability: request $i forwarded")
            if $i % 10 == 0;
        next unless $r->{status} == 202;
        push @sent, $i;
        $sha{$i} = sha256_hex($body);
    }
    is(scalar @sent, 40, "$durability: 40 requests acknowledged");

    # concurrent ones too: both paths under load
    my $res = $t->load(n => 60, concurrency => 4, pause => 0, body => sub {
        my $pad = $_[0] % 2 ? RdxTest::random_text(20_000) : 'y';
        ([ 'Content-Type' => 'application/json' ],
         qq({"id":$_[0],"pad":"$pad"}));
    });
    my @ok = grep { $res->{$_} == 202 } keys %$res;
    is(scalar @ok, 60, "$durability: 60 concurrent requests acknowledged");

    $t->stop;

    my @objects = $t->archive_objects($t->archive_dir);
    my @records = map { @{ $_->{records} } } sort { $a->{key} cmp $b->{key} }
                  @objects;
    my @order = map { $_->{body}{n} } grep { defined $_->{body}{n} } @records;

    is_deeply(\@order, \@sent,
              "$durability: the archive holds them once each, in order");

    my %line_sha;
    for my $o (@objects) {
        for my $l (@{ $o->{lines} }) {
            next unless $l =~ /,"body":(\{"n":(\d+),.*\})\}\z/;
            $line_sha{$2} = sha256_hex($1);
        }
    }
    is((grep { ($line_sha{$_} // '') eq $sha{$_} } @sent), 40,
       "$durability: every body archived byte for byte");
    my %ids = map { $_->{body}{id} => 1 } grep { defined $_->{body}{id} }
              @records;
    is((grep { $ids{$_} } @ok), 60,
       "$durability: and the concurrent ones");

    # nginx says so at warn level for each body it puts in a file
    my @temp = $t->grep_log(qr/client request body is buffered to a temporary/);
    is(scalar @temp, 13 + 30,
       "$durability: 43 bodies went through temporary files (every third of "
       . 'the 40, half of the 60)');

    $t->check_error_log;
}

# --- the hour changes while requests come in

{
    my ($d) = `date -u +%Y-%m-%d` =~ /(\S+)/;
    my $lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

    my $t = RdxTest->new(env => {
        LD_PRELOAD                   => $lib,
        FAKETIME                     => "\@$d 10:59:57",
        FAKETIME_DONT_FAKE_MONOTONIC => 1,
        FAKETIME_NO_CACHE            => 1,
    });
    $t->start_upstream(name => 'vendor', status => 202);
    # nginx passes its workers only the variables "env" names
    $t->reductrai_config(directives => { segment_age => '1h' },
                         main => join '', map { "env $_;\n" }
                                 qw(FAKETIME FAKETIME_DONT_FAKE_MONOTONIC
                                    FAKETIME_NO_CACHE));
    $t->start;

    my $n = 0;
    my $until = time + 6;
    while (time < $until) {
        my $r = $t->http(path => '/hour', body => qq({"n":$n}));
        $n++ if $r->{status} == 202;
        select undef, undef, undef, 0.05;
    }
    ok($n > 50, "$n requests across the hour");

    # the log of hour 10 seals on the change, long before its age
    wait_for(sub {
        grep { $_->{key} =~ m{/hour=10/} }
             $t->archive_objects($t->archive_dir);
    }, 10, 'the segment of hour 10 is shipped while nginx runs');

    $t->stop;

    my @objects = $t->archive_objects($t->archive_dir);
    my %hours;
    my $spans = 0;
    my $count = 0;

    for my $o (@objects) {
        my ($hour) = $o->{key} =~ m{/hour=(\d\d)/};
        $hours{$hour}++;
        for my $r (@{ $o->{records} }) {
            $count++;
            my ($h) = $r->{ts} =~ /T(\d\d):/;
            $spans++ if $h ne $hour;
        }
    }

    is_deeply([ sort keys %hours ], [ '10', '11' ],
              'objects in hour=10 and hour=11')
        or diag(join ' ', map { "$_=$hours{$_}" } sort keys %hours);
    is($spans, 0, 'no record in an object of another hour');
    is($count, $n, 'every record archived');

    $t->check_error_log;
}

done_testing;
