#!/usr/bin/perl
# A graceful quit does not wait out a stalled upload (issue 13, item 6):
# with storage that accepts the request and never answers, and a storage
# timeout of 300 s, `nginx -s quit` with worker_shutdown_timeout 2s aborts
# the transfer and exits; the segment stays in the spool and the next
# start ships it.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use RdxTest qw(wait_for);
use RdxStorage;

my $AK = 'AKIDRDXTEST0001';
my $SK = 'rdx/Secret+Key0123456789abcdefGHIJKLmnop';

my $t = RdxTest->new;
my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
    args => [ '--bucket', 'archive', '--access-key', $AK,
              '--secret-key', $SK ]);
my $bucket_dir = $s3->data_dir . '/archive';
my $spool = $t->path('spool');

$t->reductrai_config(
    main => 'worker_processes 1; worker_shutdown_timeout 2s;',
    directives => {
        storage => 's3://archive/pfx endpoint=' . $s3->url
                   . " region=us-east-1 access_key=$AK secret_key=$SK "
                   . 'connect_timeout=1s timeout=300s',
        segment_age => '1s',
    },
    location => '            reductrai_forward off;',
);

my %cache;
sub records {
    my $objects = RdxStorage::stored_objects($bucket_dir, cache => \%cache,
                                             suffix => '._S3rver_object');
    return map { @{ $_->{records} } } values %$objects;
}

$t->start;

$s3->fault(match => '^PUT /archive/pfx/', action => 'hang');
is(RdxStorage::send_json($t, '/x', 'stalled'), 202, 'a record acknowledged');
ok(wait_for(sub { $s3->hung == 1 }, 20, 'the upload in flight'),
   'its upload hangs in storage');

# the stop helper fails the test when nginx outlives its timeout; without
# the fix it waited for the storage timeout (300 s)
ok($t->stop(timeout => 15), 'nginx quits within worker_shutdown_timeout '
                            . 'and a tick');
my @left = glob("$spool/*.zst");
is(scalar @left, 1, 'the segment is still in the spool');
ok($t->grep_log(qr/1 segment\(s\) left in the spool/),
   'the worker said it left the segment');

$s3->clear;
$t->start;

ok(RdxStorage::wait_rids(\&records, 'the segment after the restart',
                         'stalled'), 'shipped by the next start');
ok(wait_for(sub { my @z = glob("$spool/*.zst"); !@z }, 10, 'spool empty'),
   'and removed from the spool');

$t->check_error_log;

done_testing;
