#!/usr/bin/perl
# reductrai ls, cat, verify and replay on gs:// (the fake GCS of t/node:
# OAuth2 tokens for an RS256-signed JWT, the XML API): an archive the
# module wrote to the bucket, the service account from
# GOOGLE_APPLICATION_CREDENTIALS as in nginx, or credentials_file=; one
# ranged GET per object for ls; an unknown key gives exit 3, one line.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use Test::More;

use RdxTest qw(wait_for);
use RdxStorage;
use RdxCli qw(cli module_archive);

my $t = RdxTest->new;
my $dir = $t->dir;
my $EMAIL = 'replay@rdx-test.iam.gserviceaccount.com';

sub keypair {
    my ($name) = @_;
    system('openssl', 'genpkey', '-quiet', '-algorithm', 'RSA',
           '-pkeyopt', 'rsa_keygen_bits:2048', '-out', "$dir/$name.pem") == 0
        or die 'openssl genpkey failed';
    system('openssl', 'pkey', '-in', "$dir/$name.pem", '-pubout',
           '-out', "$dir/$name.pub") == 0 or die 'openssl pkey failed';
}

keypair('sa');
keypair('other');

my $gcs = RdxStorage->start($t, 'fake-gcs.js', name => 'gcs',
    args => [ '--bucket', 'archive', '--pubkey', "$dir/sa.pub",
              '--email', $EMAIL ]);
my $bucket_dir = $gcs->data_dir . '/archive';

sub creds {
    my ($file, $pem) = @_;
    $t->write_file($file, JSON::PP->new->encode({
        type => 'service_account', client_email => $EMAIL,
        private_key => $t->read_file($pem),
        token_uri => $gcs->ready->{token_uri},
    }));
    chmod 0644, "$dir/$file";
    return "$dir/$file";
}

my $sa = creds('sa.json', "$dir/sa.pem");
my $bad = creds('bad.json', "$dir/other.pem");

my @params = ('endpoint=' . $gcs->url, 'connect_timeout=1s', 'timeout=10s');
my $env = { GOOGLE_APPLICATION_CREDENTIALS => $sa };
my $uri = 'gs://archive/pfx';

sub stored {
    my $n = 0;
    $n += @{ $_->{lines} }
        for values %{ RdxStorage::stored_objects($bucket_dir) };
    return $n;
}

my @requests = (
    (map { { path => "/api/v1/series?n=$_",
             body => qq({"series":[{"metric":"gcs.$_"}]}),
             headers => [ 'Content-Type' => 'application/json' ] } } 1 .. 5),
    (map { { path => "/api/v2/logs?n=$_", body => qq([{"m":"$_"}]) } } 1 .. 3),
);

module_archive($t, requests => \@requests, workers => 2,
               storage => "$uri " . join(' ', @params)
                        . " credentials_file=$sa",
               count => \&stored);
is(stored(), 8, '8 records in the bucket, written by the module');


my $mark = $gcs->mark;
my $r = cli({ env => $env }, 'ls', $uri, @params, '--json');
is($r->{rc}, 0, 'ls gs:// exits 0') or diag($r->{err});
my @j = map { JSON::PP->new->decode($_) } split /\n/, $r->{out};
my $sum = 0;
$sum += $_->{records} for @j;
is($sum, 8, 'records from the trailers: 8');
my @ranged = grep { $_->{method} eq 'GET' && ($_->{headers}{range} // '')
                    eq 'bytes=-1024' } $gcs->requests(since => $mark);
is(scalar @ranged, scalar @j, 'one ranged GET per object');

$r = cli('cat', $uri, @params, "credentials_file=$sa", '--stream',
         'metrics', '--body');
is_deeply([ sort split /\n/, $r->{out} ],
          [ sort map { qq({"series":[{"metric":"gcs.$_"}]}) } 1 .. 5 ],
          'cat --body with credentials_file=');

$r = cli({ env => $env }, 'verify', $uri, @params);
is($r->{rc}, 0, 'verify gs:// exits 0') or diag($r->{out}, $r->{err});
like($r->{out}, qr/^verify: ${\ scalar @j} objects, 8 records, \d+ bytes: OK$/m,
     'verify: OK');

my $up = $t->start_upstream(name => 'intake', status => 202);
$r = cli({ env => $env }, 'replay', $uri, @params, '--to', $up->url,
         '-H', 'DD-API-KEY: k');
like($r->{err}, qr/^replay: 8 sent, 8 ok, 0 failed/m, 'replay from gs://');

$r = cli({ env => { GOOGLE_APPLICATION_CREDENTIALS => $bad } }, 'ls', $uri,
         @params);
is($r->{rc}, 3, 'a key the service does not know: exit 3');
like($r->{err}, qr/^reductrai: ls: storage gs:\/\/archive\/pfx: listing failed: /,
     'one line') or diag($r->{err});
is(scalar(split /\n/, $r->{err}), 1, 'one line');
unlike($r->{err}, qr/PRIVATE KEY/, 'no key in it');

$t->check_error_log;
$gcs->stop;
done_testing;
