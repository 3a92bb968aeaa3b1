#!/usr/bin/perl
# gs:// with GKE Workload Identity / a GCE service account: with no key
# configured, an access token comes from the metadata server
# (GCE_METADATA_HOST: the fake GCS serves its token endpoint, which, like
# the real one, wants "Metadata-Flavor: Google"), is sent as
# "Authorization: Bearer" to the fake GCS (which takes only tokens it
# issued, until they expire) and fetched again before it expires; a
# metadata server that refuses or hangs keeps the data in the spool until
# it answers.  nginx -t, /health and the error log name the source.

use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep);
use lib 't/lib';
use RdxTest qw(wait_for);
use RdxStorage;

my $LIFETIME = 4;

my $t = RdxTest->new;
my $dir = $t->dir;

# the fake GCS wants a service account's public key, unused here
system('openssl genrsa -out ' . "$dir/sa.pem 2048 2>/dev/null") == 0
    && system("openssl rsa -in $dir/sa.pem -pubout -out $dir/sa.pub "
              . '2>/dev/null') == 0
    or die 'openssl failed';

my $gcs = RdxStorage->start($t, 'fake-gcs.js', name => 'gcs',
    args => [ '--bucket', 'archive', '--pubkey', "$dir/sa.pub",
              '--email', 'unused@rdx-test.iam.gserviceaccount.com',
              '--lifetime', $LIFETIME ]);
my $bucket_dir = $gcs->data_dir . '/archive';
my $common = 'endpoint=' . $gcs->url . ' connect_timeout=1s timeout=10s';
my $host = '127.0.0.1:' . $gcs->port;
my $TOKEN_PATH = '/computeMetadata/v1/instance/service-accounts/default/token';

sub config {
    my (%o) = @_;
    $t->reductrai_config(
        main => $o{main} // '',
        directives => {
            storage  => "gs://archive/pfx $common",
            instance => 'inst-gke',
        },
        location => "            reductrai_forward off;\n",
    );
}

my %cache;
sub records {
    my $objs = RdxStorage::stored_objects($bucket_dir, cache => \%cache);
    return map { @{ $_->{records} } } values %$objs;
}
sub wait_rids { RdxStorage::wait_rids(\&records, @_) }
sub send_json { RdxStorage::send_json($t, @_) }
sub stats {
    return JSON::PP->new->decode(
        RdxStorage::_slurp($gcs->data_dir . '/tokens.json') // '{}');
}
sub token_calls {
    grep { $_->{url} eq $TOKEN_PATH } $gcs->requests(@_);
}


# --- nginx -t names the source ---------------------------------------------

RdxStorage::names_source($t, "gs://archive $common",
                         { GCE_METADATA_HOST => $host },
                         qr/metadata server/);
RdxStorage::names_source($t, "gs://archive $common", {}, qr/none/);


# --- uploads with the metadata server's token ------------------------------

config(main => "env GCE_METADATA_HOST=$host;");
$t->start;

my $mark = $gcs->mark;
is(send_json('/api/v2/series', 'gke-1'), 202, 'acknowledged');
ok(wait_rids('the record sent with the metadata token', 'gke-1'),
   'uploaded with a token of the metadata server');

my @calls = token_calls(since => $mark);
ok(@calls >= 1, 'the metadata server was asked');
is($calls[0]{method}, 'GET', '... with a GET');
is($calls[0]{headers}{'metadata-flavor'}, 'Google',
   '... and Metadata-Flavor: Google');
ok(!exists $calls[0]{headers}{authorization}, '... and no credential');
is($calls[0]{status}, 200, '... which it answered');
my @puts = grep { $_->{method} eq 'PUT' } $gcs->requests(since => $mark);
ok(@puts >= 1, 'PUT seen');
like($puts[0]{headers}{authorization} // '', qr/^Bearer ya29\.[0-9a-f]+$/,
     'the PUT carries the token');
is($puts[0]{status}, 200, 'the store took it');
is(stats()->{metadata_refused}, 0, 'no token request was refused');

my (undef, $h) = $t->health;
is($h->{credentials}{source}, 'metadata server', '/health names the source');
ok($t->grep_log(qr/reductrai storage gs:\/\/archive\/pfx: credentials: metadata server/),
   'the error log names the source');


# --- the token expires: a new one before it does ---------------------------

my $issued = stats()->{metadata};
sleep $LIFETIME + 1;
$mark = $gcs->mark;
is(send_json('/api/v2/series', 'gke-2'), 202, 'acknowledged after expiry');
ok(wait_rids('the record after the token expired', 'gke-2'),
   'uploaded with a new token');
ok(stats()->{metadata} > $issued, 'a new token was fetched');
is(scalar(grep { $_->{status} == 401 } $gcs->requests(since => $mark)), 0,
   'no request went with an expired token');


# --- the metadata server refuses, then hangs ------------------------------

sleep $LIFETIME + 1;
RdxStorage::source_outage($t,
    what    => 'the metadata server refuses',
    rid     => 'gke-refused',
    break   => sub { $gcs->fault(match => '^GET /computeMetadata/',
                                 status => 404, code => 'NotFound',
                                 count => -1) },
    heal    => sub { $gcs->clear },
    why     => qr/metadata server: HTTP 404/,
    records => \&records);

sleep $LIFETIME + 1;
my $took = RdxStorage::source_outage($t,
    what    => 'the metadata server hangs',
    rid     => 'gke-hung',
    break   => sub { $gcs->fault(match => '^GET /computeMetadata/',
                                 action => 'hang', count => 1) },
    heal    => sub { $gcs->clear },
    why     => qr/metadata server: .*timed out/i,
    records => \&records);
diag(sprintf 'hung metadata server: given up on and logged after %.1f s',
     $took);

my $log = $t->error_log;
ok($log !~ /ya29\./, 'no token in error.log');

$t->check_error_log;
done_testing;
