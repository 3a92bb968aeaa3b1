#!/usr/bin/perl
# gs:// with a service-account key: the RS256 JWT is verified by a local
# token endpoint with the key's public half, the access token it returns
# is cached, refreshed before it expires and sent as "Authorization:
# Bearer" to a fake GCS XML API (objects, multipart uploads, listing with
# continuation tokens); a key the endpoint refuses (data kept, one log
# line, no key material in the log); GOOGLE_APPLICATION_CREDENTIALS; and
# gs:// with HMAC keys, signed with SigV4 for region "auto" and verified
# by s3rver.

use strict;
use warnings;
use Test::More;
use JSON::PP ();
use POSIX ();
use lib 't/lib';
use RdxTest qw(wait_for parse_key random_text);
use RdxStorage;

my $EMAIL = 'archiver@rdx-test.iam.gserviceaccount.com';
my $LIFETIME = 4;

my $t = RdxTest->new;
my $dir = $t->dir;

sub openssl {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec 'openssl', @_ or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    $? == 0 or die "openssl @_ failed";
}

openssl('genrsa', '-out', "$dir/sa.pem", '2048');
openssl('rsa', '-in', "$dir/sa.pem", '-pubout', '-out', "$dir/sa.pub");
openssl('genrsa', '-out', "$dir/other.pem", '2048');

my $port = $t->port('gcs');
my $token_uri = "http://127.0.0.1:$port/token";

sub key_file {
    my ($name, $pem) = @_;
    return $t->write_file($name, JSON::PP->new->pretty->encode({
        type => 'service_account', project_id => 'rdx-test',
        private_key_id => 'k1', client_email => $EMAIL,
        private_key => RdxStorage::_slurp("$dir/$pem"),
        token_uri => $token_uri,
    }));
}

my $good = key_file('sa.json', 'sa.pem');
my $bad = key_file('other.json', 'other.pem');
chmod 0600, $good, $bad;

my $gcs = RdxStorage->start($t, 'fake-gcs.js', name => 'gcs',
    args => [ '--bucket', 'archive', '--pubkey', "$dir/sa.pub",
              '--email', $EMAIL, '--lifetime', $LIFETIME, '--page', 2 ]);
my $bucket_dir = $gcs->data_dir . '/archive';
my $endpoint = $gcs->url;
my $common = "endpoint=$endpoint multipart_threshold=5m part_size=5m "
           . "connect_timeout=1s timeout=10s";

sub stats {
    return JSON::PP->new->decode(
        RdxStorage::_slurp($gcs->data_dir . '/tokens.json') // '{}');
}

sub config {
    my ($file) = @_;
    $t->reductrai_config(
        directives => {
            storage      => "gs://archive/pfx $common credentials_file=$file",
            instance     => 'inst-g',
            segment_size => '32m',
        },
        location => <<'EOT',
            reductrai_forward off;
            reductrai_stream $arg_s;
EOT
    );
}

my %cache;

sub objects { RdxStorage::stored_objects($bucket_dir, cache => \%cache) }

sub records { map { @{ $_->{records} } } values %{ objects() } }

sub wait_rids { RdxStorage::wait_rids(\&records, @_) }

sub send_json {
    my ($s, @rid) = @_;
    return RdxStorage::send_json($t, "/x?s=$s", @rid);
}

sub spool_segments { $t->spool_segments }

sub metric { $t->metric(@_) }


# --- nginx -t refuses what cannot work ------------------------------------

$t->write_file('notjson.json', "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n");

for my $bad (
    [ "gs://archive credentials_file=$dir/none.json",
      qr/open\(\) "\Q$dir\E\/none.json" failed/ ],
    [ "gs://archive credentials_file=$dir/notjson.json",
      qr/the credentials file is not JSON/ ],
    [ "gs://archive credentials_file=$good access_key=a secret_key=b",
      qr/credentials_file= and access_key= exclude each other/ ],
    [ 'gs://archive sse=AES256', qr/"sse" does not apply/ ],
    [ 'gs://archive access_key=a secret_key=b session_token=c',
      qr/"session_token" does not apply/ ],
) {
    my $out = RdxStorage::refuses($t, @$bad);
    unlike($out, qr/MIIEvQ/, '... quoting nothing of the key file');
}


# --- objects through the XML API with an OAuth2 token ---------------------

config($good);
$t->start;

ok(wait_for(sub { ($t->health)[1]{storage} eq 'connected' }, 10,
            'probe'), 'the idle probe reaches GCS with a token');

my @rids;
for my $i (1 .. 6) {
    is(send_json($i % 2 ? 'metrics' : 'logs', "a$i", n => $i), 202,
       "request a$i acknowledged");
    push @rids, "a$i";
}
ok(wait_rids('the records in GCS', @rids), 'all records arrived');

my $objs = objects();
my @keys = sort keys %$objs;
ok(@keys >= 2, scalar(@keys) . ' objects');
for my $key (@keys) {
    my $k = parse_key($key);
    ok($k && $k->{prefix} eq 'pfx' && $k->{instance} eq 'inst-g',
       "$key has the archive layout");
}
my %seen = map { $_->{body}{rid} => $_->{body}{n} } records();
is_deeply(\%seen, { map { ("a$_" => $_) } 1 .. 6 },
          'every body archived once, as sent');

my @reqs = $gcs->requests;
my @tokens = grep { $_->{url} eq '/token' } @reqs;
my @puts = grep { $_->{method} eq 'PUT' } @reqs;
ok(@tokens >= 1, 'a token was fetched');
is($tokens[0]{status}, 200, '... the endpoint verified the JWT');
like($tokens[0]{headers}{'content-type'},
     qr{^application/x-www-form-urlencoded}, '... a form POST');
is(scalar @puts, scalar @keys, 'one PUT per object');
for my $p (@puts) {
    my $h = $p->{headers};
    is($p->{status}, 200, "PUT $p->{url} accepted");
    like($h->{authorization}, qr/^Bearer ya29\.[0-9a-f]+$/,
         '... with the access token');
    is($h->{'content-md5'}, $p->{md5}, '... Content-MD5 of the body');
    is($h->{'x-goog-if-generation-match'}, '0',
       '... only if there is no such object');
    ok(!grep({ /^x-amz-/ } keys %$h), '... no x-amz-* header');
}
is(stats()->{refused_jwt}, 0, 'no assertion refused');
is(stats()->{unauthorized}, 0, 'no request refused');


# --- the token is cached, and refreshed before it expires -------------------

my $issued = stats()->{issued};
my $mark = $gcs->mark;
my $until = time + $LIFETIME + 2;
my $n = 0;
while (time < $until) {
    is(send_json('metrics', "r$n"), 202, "r$n acknowledged");
    push @rids, "r$n";
    $n++;
    select undef, undef, undef, 0.5;
}
ok(wait_rids('the records sent across token lifetimes', @rids),
   'all arrived');
my @uses = grep { $_->{url} ne '/token' } $gcs->requests(since => $mark);
my $fetched = stats()->{issued} - $issued;
ok($fetched >= 1, "$fetched new token(s) over " . ($LIFETIME + 2)
   . "s of traffic, with a ${LIFETIME}s lifetime");
ok($fetched < @uses, 'fewer tokens than requests (' . scalar(@uses)
   . '): they are cached');
is(stats()->{unauthorized}, 0, 'never an expired token: refreshed ahead');


# --- multipart through the XML API -----------------------------------------

my $blob = random_text(8 * 1024 * 1024);
$mark = $gcs->mark;

is(send_json('blobs', 'big1', blob => $blob), 202, '8 MB body acknowledged');
ok(wait_rids('the large segment', 'big1'), 'the large segment arrived');
@reqs = grep { $_->{url} ne '/token' } $gcs->requests(since => $mark);
my @seq = map {
    my $u = $_->{url};
    $u =~ s/[?&]uploadId=[0-9a-f]+//;
    $u =~ s{^/archive/pfx/stream%3Dblobs/[^?]+}{K};
    $u =~ s{^/archive\?prefix=pfx%2Fstream%3Dblobs%2F\S+&uploads=$}{LIST};
    "$_->{method} $u $_->{status}";
} @reqs;
is_deeply(\@seq, [ 'HEAD K 404', 'GET LIST 200', 'POST K?uploads= 200',
                   'PUT K?partNumber=1 200', 'PUT K?partNumber=2 200',
                   'POST K 200' ],
          'HEAD, list stale uploads of the key, initiate, two parts, '
          . 'complete') or diag explain \@seq;
is($reqs[-1]{headers}{'x-goog-if-generation-match'}, '0',
   'the completion is conditional');
ok(!-d $gcs->data_dir . '/.uploads'
   || !glob($gcs->data_dir . '/.uploads/*'), 'no upload left');


# --- the storage interface: listing with continuation tokens ----------------

my @tool = split ' ', "$common credentials_file=$good";
$mark = $gcs->mark;
my ($rc, $out, $err) = RdxStorage::tool($t, 'gs://archive/pfx', \@tool,
                                        'list', 'pfx/');
is($rc, 0, 'list') or diag $err;
my %listed = map { split / / } split /\n/, $out;
$objs = objects();
is_deeply(\%listed, { map { $_ => $objs->{$_}{size} } keys %$objs },
          'every object listed, with its size');
my @pages = grep { $_->{url} =~ /list-type=2/ } $gcs->requests(since => $mark);
ok(@pages > 2, scalar(@pages) . ' pages of 2');
ok(!grep({ $_->{url} !~ /continuation-token=/ } @pages[1 .. $#pages]),
   'pages after the first carry the continuation token');

my $key = (sort keys %$objs)[0];
($rc, $out) = RdxStorage::tool($t, 'gs://archive/pfx', \@tool, 'get', $key,
                               -16);
is($out, substr(RdxStorage::_slurp($objs->{$key}{path}), -16),
   'get: a suffix range');

{
    local $ENV{GOOGLE_APPLICATION_CREDENTIALS} = $good;
    ($rc, $out, $err) = RdxStorage::tool($t, 'gs://archive/pfx',
                                         [ split ' ', $common ], 'probe');
    is($rc, 0, 'GOOGLE_APPLICATION_CREDENTIALS names the key file')
        or diag $err;
}


# --- a key the token endpoint refuses ---------------------------------------

my $log_mark = $t->log_mark;
config($bad);
$t->reload;
my $refused = stats()->{refused_jwt};
my $errors = metric('reductrai_storage_upload_errors_total');

for my $i (1 .. 3) {
    is(send_json('metrics', "w$i"), 202, "w$i acknowledged");
}
ok(wait_for(sub { metric('reductrai_storage_upload_errors_total')
                  >= $errors + 2 }, 15, 'refused'),
   'uploads fail while no token can be had');
ok(stats()->{refused_jwt} > $refused, 'the endpoint refused the assertion');
ok(spool_segments() >= 1, 'the data stays in the spool');
my @failed = $t->grep_log(qr/reductrai storage .* failed/,
                          since => $log_mark);
is(scalar @failed, 1, 'one log line for the state change');
like($failed[0] // '', qr/token endpoint: HTTP 400 invalid_grant: Invalid JWT Signature/,
     '... with the endpoint\'s reason');
my $log = $t->error_log;
my ($pem_line) = (RdxStorage::_slurp("$dir/other.pem") =~ /\n(\S{40})/);
ok(index($log, $pem_line) < 0 && $log !~ /ey[A-Za-z0-9_-]{20,}\./,
   'no key material and no assertion in error.log');

config($good);
$t->reload;
ok(wait_rids('the records kept while refused', qw(w1 w2 w3)),
   'with the right key everything arrives');


# --- gs:// with HMAC keys: SigV4 for region "auto" --------------------------

my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
    args => [ '--bucket', 'hmac', '--access-key', 'GOOGTEST1234',
              '--secret-key', 'hmac/secret+1234567890' ]);
my $obj = $t->write_file('obj', 'hello, interoperability');
my @hmac = ('endpoint=' . $s3->url, 'access_key=GOOGTEST1234',
            'secret_key=hmac/secret+1234567890');
($rc, $out, $err) = RdxStorage::tool($t, 'gs://hmac/p', \@hmac, 'put',
                                     'p/x', $obj);
is($rc, 0, 'gs:// with HMAC keys: put') or diag $err;
($rc, $out) = RdxStorage::tool($t, 'gs://hmac/p', \@hmac, 'get', 'p/x');
is($out, 'hello, interoperability', '... get');
my ($put) = grep { $_->{method} eq 'PUT' } $s3->requests;
like($put->{headers}{authorization},
     qr{^AWS4-HMAC-SHA256 Credential=GOOGTEST1234/\d{8}/auto/s3/aws4_request},
     '... signed for region "auto"');
is($put->{headers}{'x-goog-if-generation-match'}, '0',
   '... with the GCS precondition');


$t->check_error_log;
done_testing;
