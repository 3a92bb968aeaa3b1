#!/usr/bin/perl
# s3:// with EKS IAM roles for service accounts (IRSA): the projected token
# in AWS_WEB_IDENTITY_TOKEN_FILE goes, unsigned, to STS
# AssumeRoleWithWebIdentity (AWS_ENDPOINT_URL_STS: a local STS in front of
# s3rver, t/node/identity.js), whose temporary keys sign the uploads, the
# session token with them; s3rver verifies the signature with the
# temporary keys, which it drops when they expire.  The token file is read
# at each fetch (the kubelet rotates it); keys are fetched again before
# they expire; STS refusing the token or hanging keeps the data in the
# spool until it answers.  nginx -t, /health and the error log name the
# source; without any source nothing is sent unless anonymous=on.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use RdxTest qw(wait_for);
use RdxStorage;

my $AK = 'AKIDRDXTEST0001';
my $SK = 'rdx/Secret+Key0123456789abcdefGHIJKLmnop';
my $ROLE = 'arn:aws:iam::123456789000:role/reductrai-archive';
my $TOKEN1 = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InJkeCJ9.irsa-first.c2ln';
my $TOKEN2 = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InJkeCJ9.irsa-rotated.c2ln';
my $LIFETIME = 6;

my $t = RdxTest->new;

# what the pod's token file holds, and what STS takes (the issuer's view)
$t->write_file('irsa-token', "$TOKEN1\n");
$t->write_file('sts-accepts', "$TOKEN1\n");

my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
    args => [ '--bucket', 'archive', '--access-key', $AK,
              '--secret-key', $SK, '--role-arn', $ROLE,
              '--web-identity-token-file', $t->path('sts-accepts'),
              '--lifetime', $LIFETIME ]);
my $bucket_dir = $s3->data_dir . '/archive';
my $endpoint = $s3->url;
my $common = "endpoint=$endpoint region=eu-west-1 connect_timeout=1s "
           . "timeout=10s";

my %irsa = (
    AWS_ROLE_ARN                => $ROLE,
    AWS_WEB_IDENTITY_TOKEN_FILE => $t->path('irsa-token'),
    AWS_ENDPOINT_URL_STS        => $endpoint,
    AWS_REGION                  => 'eu-west-1',
);
my $irsa_env = join '', map { "env $_=$irsa{$_};\n" } sort keys %irsa;

sub config {
    my (%o) = @_;
    $t->reductrai_config(
        main => $o{main} // '',
        directives => {
            storage  => "s3://archive/pfx $common " . ($o{creds} // ''),
            instance => 'inst-irsa',
        },
        location => "            reductrai_forward off;\n",
    );
}

my %cache;
sub records {
    my $objs = RdxStorage::stored_objects($bucket_dir, cache => \%cache,
                                          suffix => '._S3rver_object');
    return map { @{ $_->{records} } } values %$objs;
}
sub wait_rids { RdxStorage::wait_rids(\&records, @_) }
sub send_json { RdxStorage::send_json($t, @_) }
sub sts_calls {
    return grep { $_->{method} eq 'POST' && $_->{url} eq '/' }
           $s3->requests(@_);
}
sub puts { grep { $_->{method} eq 'PUT' } $s3->requests(@_) }
sub access_key {
    my ($req) = @_;
    my $sig = RdxStorage::sigv4_parts($req->{headers}{authorization} // '');
    return (($sig->{Credential} // '') =~ m{^([^/]+)/})[0] // '';
}


# --- nginx -t names the source, or says there is none ----------------------

RdxStorage::names_source($t, "s3://archive $common", \%irsa,
                         qr/web identity \(AWS_ROLE_ARN\)/);
my $out = RdxStorage::names_source($t, "s3://archive $common", {},
                                   qr/none \(uploads wait in the spool; /);
like($out, qr/\[warn\]/, 'no source is a warning');
RdxStorage::names_source($t, "s3://archive $common anonymous=on", {},
                         qr/anonymous/);
RdxStorage::names_source($t, "s3://archive $common access_key=$AK "
                         . "secret_key=$SK", \%irsa,
                         qr/static keys \(access_key=\)/);
RdxStorage::refuses($t, "s3://archive anonymous=yes",
                    qr/anonymous must be "on" or "off"/);


# --- uploads signed with the role's temporary keys -------------------------

config(main => $irsa_env);
$t->start;

my $mark = $s3->mark;
is(send_json('/api/v2/series', 'irsa-1'), 202, 'acknowledged');
ok(wait_rids('the record signed with keys from STS', 'irsa-1'),
   'uploaded with the keys of AssumeRoleWithWebIdentity');

my @sts = sts_calls(since => $mark);
ok(@sts >= 1, 'STS was asked');
is($sts[0]{status}, 200, '... and answered');
ok(!exists $sts[0]{headers}{authorization}, '... unsigned');
is($sts[0]{headers}{'content-type'}, 'application/x-www-form-urlencoded',
   '... a form POST');
is(RdxStorage::identity($s3)->{refused}, 0,
   'STS found the token of the file and the role it expected');

my @puts = puts(since => $mark);
ok(@puts >= 1, 'PUT seen');
my $key1 = access_key($puts[0]);
like($key1, qr/^ASIA[0-9A-F]{16}$/, 'signed with a temporary access key');
like($puts[0]{headers}{'x-amz-security-token'} // '', qr/^IQoJb3JpZ2luX2Vj/,
     'the session token goes with it');
like(RdxStorage::sigv4_parts($puts[0]{headers}{authorization})
         ->{SignedHeaders}, qr/;x-amz-security-token(;|$)/, '... signed');
is($puts[0]{status}, 200, 's3rver verified the signature');

my ($st, $h) = $t->health;
is($h->{credentials}{source}, 'web identity (AWS_ROLE_ARN)',
   '/health names the source');
ok(!exists $h->{credentials}{error}, '... and no failure');
ok($t->grep_log(qr/reductrai storage s3:\/\/archive\/pfx: credentials: web identity \(AWS_ROLE_ARN\)/),
   'the error log names the source');


# --- keys expire: fetched again, with the token the file holds now ---------

$t->write_file('irsa-token', "$TOKEN2\n");
$t->write_file('sts-accepts', "$TOKEN2\n");
sleep $LIFETIME + 1;

$mark = $s3->mark;
is(send_json('/api/v2/series', 'irsa-2'), 202, 'acknowledged after expiry');
ok(wait_rids('the record after the keys expired', 'irsa-2'),
   'uploaded with new keys');
@sts = sts_calls(since => $mark);
ok(@sts >= 1 && $sts[0]{status} == 200,
   'STS was asked again and took the rotated token');
@puts = grep { $_->{status} == 200 } puts(since => $mark);
ok(@puts >= 1, 'PUT with the new keys');
isnt(access_key($puts[0]), $key1, '... a new access key');
is(RdxStorage::identity($s3)->{refused}, 0, 'no token was refused');


# --- STS refuses the token, then hangs: the data waits, the log and /health
# --- say why, and it arrives once STS answers ----------------------------

sleep $LIFETIME + 1;
RdxStorage::source_outage($t,
    what    => 'STS refuses the token',
    rid     => 'irsa-refused',
    break   => sub { $t->write_file('irsa-token', "not-a-token\n") },
    heal    => sub { $t->write_file('irsa-token', "$TOKEN2\n") },
    why     => qr/credentials: STS: HTTP 400 InvalidIdentityToken/,
    records => \&records);

sleep $LIFETIME + 1;
my $took = RdxStorage::source_outage($t,
    what    => 'STS hangs',
    rid     => 'irsa-hung',
    break   => sub { $s3->fault(match => '^POST /$', action => 'hang',
                                count => 1) },
    heal    => sub { $s3->clear },
    why     => qr/credentials: STS: .*timed out/i,
    records => \&records);
diag(sprintf 'hung STS: given up on and logged after %.1f s', $took);


# --- no source: nothing is sent; anonymous=on sends unsigned ---------------

config();
my $log_mark = $t->log_mark;
$t->reload;
$mark = $s3->mark;

is(send_json('/api/v2/series', 'none-1'), 202, 'no credentials: acknowledged');
ok(wait_for(sub {
       $t->grep_log(qr/no credentials: no access_key=, AWS_ACCESS_KEY_ID, AWS_ROLE_ARN/,
                    since => $log_mark)
   }, 20, 'the reason logged'), 'the log says no source gave credentials');
ok(wait_for(sub { $t->spool_segments >= 1 }, 10, 'a segment'),
   'the data waits in the spool');
is(scalar(grep { $_->{url} =~ m{/pfx/stream(=|%3D)} }
            $s3->requests(since => $mark)),
   0, 'nothing was sent');
($st, $h) = $t->health;
is($h->{credentials}{source}, 'none', '/health: source none');
like($h->{credentials}{error} // '', qr/anonymous=on/, '... and what to do');

config(creds => 'anonymous=on');
$t->reload;
$mark = $s3->mark;
is(send_json('/api/v2/series', 'anon-1'), 202, 'anonymous=on: acknowledged');
sub archive_requests {
    grep { $_->{url} =~ m{/pfx/stream(=|%3D)} } $s3->requests(since => $mark);
}
ok(wait_for(sub { archive_requests() }, 30, 'an anonymous request'),
   'anonymous=on: the upload is tried')
    or diag explain [ $s3->requests(since => $mark) ];
is(scalar(grep { exists $_->{headers}{authorization} } archive_requests()), 0,
   '... unsigned');
($st, $h) = $t->health;
is($h->{credentials}{source}, 'anonymous', '/health: source anonymous');

my $log = $t->error_log;
ok(index($log, $TOKEN1) < 0 && index($log, $TOKEN2) < 0
   && index($log, 'IQoJb3JpZ2luX2Vj') < 0,
   'no web identity token or session token in error.log');

$t->check_error_log;
done_testing;
