#!/usr/bin/perl
# Disaster recovery as docs/HA.md describes it: Debian's awscli backs the
# archive bucket up with "aws s3 sync" to a second bucket (on s3rver,
# SigV4 verified), "reductrai verify" passes on the copy and "reductrai
# cat" on the copy returns every record of the original.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use RdxTest qw(wait_for);
use RdxStorage;
use RdxCli qw(cli module_archive);

my $AWS = '/usr/bin/aws';
plan skip_all => "Debian's awscli is not installed (tools/deps.sh test)"
    unless -x $AWS;

my $AK = 'AKIDRDXDR0001';
my $SK = 'dr/Secret+Key0123456789abcdefGHIJKLmnopq';

my $t = RdxTest->new;
my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
    args => [ '--bucket', 'archive', '--access-key', $AK,
              '--secret-key', $SK ]);
$t->write_file('secret', "$SK\n");

my @params = ('endpoint=' . $s3->url, 'region=us-east-1',
              'connect_timeout=1s', 'timeout=10s');
my $env = { AWS_ACCESS_KEY_ID => $AK, AWS_SECRET_ACCESS_KEY => $SK };

sub stored {
    my $o = RdxStorage::stored_objects($s3->data_dir . '/archive',
                                       suffix => '._S3rver_object');
    my $n = 0;
    $n += @{ $_->{lines} } for values %$o;
    return $n;
}

my @requests = (
    (map { { path => "/api/v1/series?n=$_",
             body => qq({"series":[{"metric":"dr.m","points":[[$_,1]]}]}) } }
     1 .. 12),
    (map { { path => "/api/v2/logs?n=$_", body => qq([{"m":"log $_"}]) } }
     1 .. 6),
);
module_archive($t, requests => \@requests, workers => 2,
               storage => 's3://archive/pfx ' . join(' ', @params)
                        . " access_key=$AK secret_key_file=%%DIR%%/secret",
               count => \&stored);
is(stored(), 18, '18 records in the archive bucket');

# the aws CLI with the test's keys, against s3rver, nothing from $HOME
sub aws {
    my (@args) = @_;
    local $ENV{AWS_ACCESS_KEY_ID} = $AK;
    local $ENV{AWS_SECRET_ACCESS_KEY} = $SK;
    local $ENV{AWS_DEFAULT_REGION} = 'us-east-1';
    local $ENV{AWS_CONFIG_FILE} = '/dev/null';
    local $ENV{AWS_SHARED_CREDENTIALS_FILE} = '/dev/null';
    local $ENV{AWS_EC2_METADATA_DISABLED} = 'true';
    my $out = qx{$AWS --endpoint-url ${\ $s3->url } @args 2>&1};
    return ($? >> 8, $out);
}

# --- backup: a dated bucket, synced -----------------------------------------

my ($rc, $out) = aws('s3', 'mb', 's3://archive-backup-20261205');
is($rc, 0, 'aws s3 mb: the backup bucket') or diag $out;

# s3rver cannot decode the x-amz-copy-source of keys with "=" (S3 can), so
# the sync goes through a local copy, as a backup to another account or
# cloud would
my $local = $t->path('backup');
($rc, $out) = aws('s3', 'sync', 's3://archive', $local, '--only-show-errors');
is($rc, 0, 'aws s3 sync archive -> a local copy') or diag $out;
($rc, $out) = aws('s3', 'sync', $local, 's3://archive-backup-20261205',
                  '--only-show-errors');
is($rc, 0, 'aws s3 sync the copy -> archive-backup-20261205') or diag $out;

($rc, $out) = aws('s3', 'ls', '--recursive', 's3://archive-backup-20261205/');
my @copied = grep { /\.ndjson\.zst$/ } split /\n/, $out;
($rc, my $orig) = aws('s3', 'ls', '--recursive', 's3://archive/');
my @original = grep { /\.ndjson\.zst$/ } split /\n/, $orig;
ok(@original >= 2, scalar(@original) . ' objects in the original');
is(scalar @copied, scalar @original, 'as many in the copy');

# a second sync copies nothing: the archive is write-once
($rc, $out) = aws('s3', 'sync', 's3://archive', $local);
is($rc, 0, 'a second sync');
is($out, '', '... copies nothing');

# --- the copy verifies and reads back every record -------------------------

my $r = cli({ env => $env }, 'verify', 's3://archive-backup-20261205/pfx',
            @params);
is($r->{rc}, 0, 'reductrai verify on the copy exits 0')
    or diag($r->{out}, $r->{err});
like($r->{out}, qr/^verify: ${\ scalar @original} objects, 18 records, \d+ bytes: OK$/m,
     'verify: every object and record of the original, OK');

my $a = cli({ env => $env }, 'cat', 's3://archive/pfx', @params);
my $b = cli({ env => $env }, 'cat', 's3://archive-backup-20261205/pfx',
            @params);
is($b->{rc}, 0, 'reductrai cat on the copy exits 0');
my @la = sort split /\n/, $a->{out};
my @lb = sort split /\n/, $b->{out};
is(scalar @lb, 18, '18 records read from the copy');
is_deeply(\@lb, \@la, 'the same records as the original, byte for byte');

$t->check_error_log;
done_testing;
