#!/usr/bin/perl
# s3:// against s3rver (SigV4 signatures verified), behind a recording
# proxy that, like S3, refuses a body whose x-amz-content-sha256 or
# Content-MD5 does not match: objects land under the right keys and hold
# the right records; the storage interface (get with ranges, head, list,
# probe) on the command line; a multipart upload that fails is aborted and
# retried; one a crash interrupts is found and aborted at the next start;
# a store that goes away and comes back; a wrong secret (403, data kept,
# one log line per state change, no secret in the log); credentials and
# a session token from the environment (nginx's env directive); temporary
# keys from a container endpoint and from instance metadata (IMDSv2), and
# an endpoint that refuses us; an object
# already complete is never written again; nginx -t refuses bad settings.

use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_base64);
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use RdxTest qw(wait_for parse_key random_text);
use RdxStorage;

my $AK = 'AKIDRDXTEST0001';
my $SK = 'rdx/Secret+Key0123456789abcdefGHIJKLmnop';
my $WRONG = 'wrong/Secret+Key0123456789abcdefGHIJKLmn';

my $t = RdxTest->new;
my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
    args => [ '--bucket', 'archive', '--access-key', $AK,
              '--secret-key', $SK ]);
my $bucket_dir = $s3->data_dir . '/archive';
my $uploads_dir = "$bucket_dir/._S3rver_uploads";
my $spool = $t->path('spool');

$t->write_file('secret', "$SK\n");

my $endpoint = $s3->url;
my $common = "endpoint=$endpoint region=us-east-1 multipart_threshold=5m "
           . "part_size=5m connect_timeout=1s timeout=10s";

sub config {
    my (%o) = @_;
    my $creds = $o{creds} // "access_key=$AK secret_key_file=%%DIR%%/secret";
    my $extra = $o{http} // '';

    $t->reductrai_config(
        main => $o{main} // '',
        directives => {
            storage      => "s3://archive/pfx $common $creds",
            instance     => 'inst-a',
            segment_size => '32m',
        },
        http => <<'EOT' . $extra,
    map $uri $rdx_stream {
        ~^/api/v2/logs  logs;
        ~^/blob         blobs;
        default         metrics;
    }
EOT
        location => <<'EOT',
            reductrai_forward off;
            reductrai_stream $rdx_stream;
EOT
    );
}

# every object in s3rver's store: { key => read_archive_object }
my %cache;

sub objects {
    return RdxStorage::stored_objects($bucket_dir, cache => \%cache,
                                      suffix => '._S3rver_object');
}

sub records {
    return map { @{ $_->{records} } } values %{ objects() };
}

sub wait_rids { RdxStorage::wait_rids(\&records, @_) }

sub send_json { RdxStorage::send_json($t, @_) }

sub spool_segments { $t->spool_segments }

sub metric { $t->metric(@_) }


# --- nginx -t refuses what cannot work ------------------------------------

for my $bad (
    [ 'sse=bogus', qr/sse must be "AES256", "aws:kms" or "aws:kms:dsse"/ ],
    [ 'kms_key_id=k', qr/kms_key_id= needs sse=aws:kms/ ],
    [ 'style=dots', qr/style must be "path" or "virtual"/ ],
    [ 'access_key=a', qr/access_key= and secret_key=.*go together/ ],
    [ 'endpoint=ftp://h', qr/endpoint "ftp:\/\/h" must be http:\/\/ or/ ],
    [ 'key=abc', qr/"key" does not apply to this storage/ ],
) {
    RdxStorage::refuses($t, "s3://archive $bad->[0]", $bad->[1]);
}


# --- objects land under the right keys, with the right records -------------

config();
$t->start;

wait_for(sub { ($t->health)[1]{storage} eq 'connected' }, 10,
         'the idle probe reaches s3rver');
is(metric('reductrai_storage_connected'), 1, 'storage_connected 1 after '
   . 'the probe');

my @rids;
for my $i (1 .. 12) {
    my $path = $i % 3 ? '/api/v2/series' : '/api/v2/logs';
    is(send_json($path, "a$i", n => $i), 202, "request a$i acknowledged")
        or last;
    push @rids, "a$i";
}

ok(wait_rids('the first records in s3rver', @rids), 'all records arrived');
ok(wait_for(sub { spool_segments() == 0 }, 10, 'spool empty'),
   'the spool is empty once they are stored');

my $objs = objects();
my @keys = sort keys %$objs;
ok(@keys >= 2, scalar(@keys) . ' objects');

my %streams;
for my $key (@keys) {
    my $k = parse_key($key);
    ok($k, "key $key has the archive layout") or next;
    is($k->{prefix}, 'pfx', "prefix of $key");
    is($k->{instance}, 'inst-a', "instance of $key");
    $streams{ $k->{stream} }++;
    my $o = $objs->{$key};
    ok(!$o->{error} && !defined $o->{partial}, "$key decompresses whole");
    is($o->{trailer}{count}, scalar @{ $o->{records} },
       "$key trailer counts its records");
    for my $rec (@{ $o->{records} }) {
        is($rec->{stream}, $k->{stream}, "record $rec->{body}{rid} in its "
           . 'stream');
    }
}
is_deeply([ sort keys %streams ], [ qw(logs metrics) ], 'both streams');

my %seen = map { $_->{body}{rid} => $_->{body}{n} } records();
is_deeply(\%seen, { map { ("a$_" => $_) } 1 .. 12 },
          'every body archived once, as sent');

# what went over the wire

my @puts = grep { $_->{method} eq 'PUT' } $s3->requests;
is(scalar @puts, scalar @keys, 'one PUT per object');

for my $p (@puts) {
    my $h = $p->{headers};
    my $sig = RdxStorage::sigv4_parts($h->{authorization});
    (my $key = $p->{url}) =~ s{^/archive/}{};
    $key =~ s/%([0-9A-F]{2})/chr hex $1/ge;

    is($p->{status}, 200, "PUT $key accepted (signature verified)");
    is($h->{'x-amz-content-sha256'}, $p->{sha256},
       "PUT $key: x-amz-content-sha256 is the body's SHA-256");
    is($h->{'content-md5'}, $p->{md5}, "PUT $key: Content-MD5");
    is($p->{len}, $objs->{$key}{size}, "PUT $key: the whole object");
    is($h->{'if-none-match'}, '*', "PUT $key: If-None-Match: *");
    is($h->{'content-type'}, 'application/zstd', "PUT $key: Content-Type");
    like($sig->{Credential}, qr{^\Q$AK\E/\d{8}/us-east-1/s3/aws4_request$},
         "PUT $key: credential scope");
    is($sig->{SignedHeaders}, 'content-md5;content-type;host;if-none-match;'
       . 'x-amz-content-sha256;x-amz-date', "PUT $key: signed headers");
}

my $m = $t->metrics;
is($m->{reductrai_storage_uploads_total}, scalar @keys, 'uploads_total');
is($m->{reductrai_storage_upload_errors_total}, 0, 'no upload errors');
my $stored = 0;
$stored += $_->{size} for values %$objs;
is($m->{reductrai_storage_bytes_total}, $stored,
   'storage_bytes_total is the bytes stored');
is($m->{reductrai_storage_connected}, 1, 'storage_connected 1');
is(($t->health)[1]{storage}, 'connected', '/health storage connected');

# the same objects through the storage interface (as the CLI reads them)

my @params = split ' ', "$common access_key=$AK secret_key=$SK";
my ($rc, $out, $err) = RdxStorage::tool($t, 's3://archive/pfx', \@params,
                                        'list', 'pfx/');
is($rc, 0, 'list') or diag $err;
is_deeply([ sort map { (split / /)[0] } split /\n/, $out ], \@keys,
          'list gives every key (ListObjectsV2)');
my %sizes = map { split / / } split /\n/, $out;
is_deeply(\%sizes, { map { $_ => $objs->{$_}{size} } @keys },
          'list gives the sizes');

my $key = $keys[0];
my $bytes = RdxStorage::_slurp("$bucket_dir/$key._S3rver_object");

($rc, $out) = RdxStorage::tool($t, 's3://archive/pfx', \@params, 'get',
                               $key);
ok($rc == 0 && $out eq $bytes, 'get: the whole object');

# the trailer: a suffix range (which s3rver answers as "bytes=0-N": the
# backend fetches what it missed with an absolute range)
($rc, $out) = RdxStorage::tool($t, 's3://archive/pfx', \@params, 'get',
                               $key, -16);
ok($rc == 0 && $out eq substr($bytes, -16), 'get: the last 16 bytes');
is(substr($out, -4), 'RDX1', '... end with the trailer footer');

($rc, $out) = RdxStorage::tool($t, 's3://archive/pfx', \@params, 'get',
                               $key, 5, 7);
ok($rc == 0 && $out eq substr($bytes, 5, 7), 'get: a middle range');

($rc, $out) = RdxStorage::tool($t, 's3://archive/pfx', \@params, 'head',
                               $key);
is($out, length($bytes) . "\n", 'head: the size');

($rc, $out, $err) = RdxStorage::tool($t, 's3://archive/pfx', \@params,
                                     'head', 'pfx/nothing');
is($rc, 3, 'head of a missing key: not found');

($rc, $out, $err) = RdxStorage::tool($t, 's3://archive/pfx', \@params,
                                     'probe');
is($rc, 0, 'probe') or diag $err;

($rc, $out, $err) = RdxStorage::tool($t, 's3://nobucket', \@params,
                                     'probe');
is($rc, 2, 'probe of a missing bucket fails for good');
like($err, qr/HTTP 404 NoSuchBucket/, '... NoSuchBucket');


# --- multipart: a failed part aborts the upload, the retry completes -------

my $blob = random_text(8 * 1024 * 1024);
my $mark = $s3->mark;
$s3->fault(match => 'PUT .*partNumber=2&', action => 'status',
           status => 500, count => 3);

is(send_json('/blob', 'big1', blob => $blob), 202, '8 MB body acknowledged');
ok(wait_rids('the large segment', 'big1'), 'the large segment arrived');

my @reqs = $s3->requests(since => $mark);
my @init = grep { $_->{method} eq 'POST' && $_->{url} =~ /\?uploads=$/ }
           @reqs;
my @parts = grep { $_->{method} eq 'PUT' && $_->{url} =~ /partNumber=/ }
            @reqs;
my @complete = grep { $_->{method} eq 'POST' && $_->{url} =~ /\?uploadId=/ }
               @reqs;
my @aborts = grep { $_->{method} eq 'DELETE' } @reqs;

is(scalar @init, 2, 'two multipart uploads started');
my ($first) = $init[0]{url} =~ m{^(/archive/[^?]+)};
is(scalar(grep { $_->{fault} } @parts), 3, 'part 2 failed three times');
is(scalar @aborts, 1, 'the failed upload was aborted');
like($aborts[0]{url}, qr/\?uploadId=[0-9a-f]+$/, '... by its UploadId');
is($aborts[0]{status}, 204, '... and s3rver removed it');
is(scalar @complete, 1, 'one upload completed');
is($complete[0]{status}, 200, '... accepted');
is($complete[0]{headers}{'if-none-match'}, '*',
   '... conditional on nothing there');
like($complete[0]{headers}{'content-type'}, qr{^application/xml},
     '... with an XML part list');

my ($done_id) = $complete[0]{url} =~ /uploadId=([0-9a-f]+)/;
my @ok_parts = grep { !$_->{fault} && $_->{status} == 200 } @parts;
my $big = (grep { $_->{records}[0]{body}{rid} eq 'big1' }
           values %{ objects() })[0];
my $part_bytes = 0;
$part_bytes += $_->{len} for grep { $_->{url} =~ /uploadId=$done_id$/ }
                             @ok_parts;
ok($big->{size} > 5 * 1024 * 1024, "the object is $big->{size} bytes, "
   . 'above the 5m threshold');
is($part_bytes, $big->{size}, 'the last upload\'s parts make the object');
ok(!grep({ $_->{len} > 5 * 1024 * 1024 } @parts), 'no part above 5m');
for my $p (@ok_parts) {
    is($p->{headers}{'x-amz-content-sha256'}, $p->{sha256},
       "part: x-amz-content-sha256 of the part");
    is($p->{headers}{'content-md5'}, $p->{md5}, 'part: Content-MD5');
    ok(!exists $p->{headers}{'content-type'}, 'part: no object headers');
}
is($big->{records}[0]{body}{blob}, $blob, 'the 8 MB body, byte for byte');
is_deeply([ glob("$uploads_dir/*") ], [], 'no multipart upload left');
ok(metric('reductrai_storage_upload_errors_total') >= 1,
   'the failed attempt counted as an upload error');


# --- a crash during a multipart upload: aborted at the next start ----------

$mark = $s3->mark;
$s3->fault(match => 'PUT .*partNumber=2&', action => 'hang');

is(send_json('/blob', 'big2', blob => random_text(8 * 1024 * 1024)), 202,
   'another 8 MB body acknowledged');
ok(wait_for(sub { $s3->hung == 1 }, 20, 'part 2 in flight'),
   'the upload hangs in part 2');
my ($stale) = map { $_->{url} =~ /uploadId=([0-9a-f]+)/ }
              grep { $_->{fault} } $s3->requests(since => $mark);
ok(-d "$uploads_dir/$stale", "upload $stale pending in s3rver");

$t->kill_master9;
$s3->clear;
$mark = $s3->mark;
$t->start;

ok(wait_rids('the interrupted segment', 'big2'),
   'the interrupted segment arrived after the restart');
@reqs = $s3->requests(since => $mark);
my ($listing) = grep { $_->{method} eq 'GET' && $_->{url} =~ /&uploads=$/ }
                @reqs;
ok($listing, 'the restarted worker listed the uploads of the key');
like($listing->{url}, qr{^/archive\?prefix=pfx%2Fstream%3Dblobs%2F},
     '... by its prefix');
my ($abort) = grep { $_->{method} eq 'DELETE' } @reqs;
ok($abort && $abort->{url} =~ /uploadId=$stale$/,
   'the stale upload was aborted');
is($abort->{status}, 204, '... and is gone');
is_deeply([ glob("$uploads_dir/*") ], [], 'no multipart upload left behind');


# --- the store goes away for a while ---------------------------------------

my $log_mark = $t->log_mark;
my $errors = metric('reductrai_storage_upload_errors_total');
$s3->down;

@rids = ();
for my $i (1 .. 6) {
    is(send_json('/api/v2/series', "d$i"), 202, "d$i acknowledged while the "
       . 'store is down');
    push @rids, "d$i";
}

ok(wait_for(sub { ($t->health)[1]{storage} eq 'disconnected' }, 10,
            'disconnected'), '/health storage "disconnected"');
is((($t->health)[0]), 200, '/health stays 200: the instance is ready');
is(metric('reductrai_storage_connected'), 0, 'storage_connected 0');
ok(wait_for(sub { metric('reductrai_storage_upload_errors_total')
                  >= $errors + 3 }, 15, 'retries'),
   'failed uploads are retried and counted');
ok(spool_segments() >= 1, 'the data waits in the spool');
ok(metric('reductrai_archive_lag_seconds') > 0, 'archive lag grows');

my @failed = $t->grep_log(qr/reductrai storage .* failed/, since => $log_mark);
is(scalar @failed, 1, 'one log line for the failure, not one per retry');
like($failed[0] // '', qr/failed: .*(refused|connect)/i,
     '... naming the reason');

$s3->up;
ok(wait_rids('the records kept while down', @rids),
   'everything arrives once the store is back');
ok(wait_for(sub { metric('reductrai_storage_connected') == 1 }, 10,
            'connected'), 'storage_connected 1 again');
is(($t->health)[1]{storage}, 'connected', '/health storage connected');
wait_for(sub { spool_segments() == 0 }, 10, 'spool empty');
is(spool_segments(), 0, 'the spool is empty');
ok(wait_for(sub { metric('reductrai_archive_lag_seconds') == 0 }, 10,
            'lag 0'), 'archive lag back to 0');
is(scalar($t->grep_log(qr/reductrai storage .* is reachable/,
                       since => $log_mark)), 1,
   'one log line for the recovery');


# --- a wrong secret: 403, data kept, the reason logged once ----------------

# the new workers probe at once: the mark goes before the reload
$log_mark = $t->log_mark;
$t->write_file('secret', "$WRONG\n");
$t->reload;
$errors = metric('reductrai_storage_upload_errors_total');
$mark = $s3->mark;

@rids = ();
for my $i (1 .. 4) {
    is(send_json('/api/v2/series', "w$i"), 202, "w$i acknowledged");
    push @rids, "w$i";
}

ok(wait_for(sub { metric('reductrai_storage_upload_errors_total')
                  >= $errors + 2 }, 15, 'refused uploads'),
   'refused uploads are counted as errors');
my @refused = grep { $_->{method} eq 'PUT' } $s3->requests(since => $mark);
ok(@refused >= 2 && !grep({ $_->{status} != 403 } @refused),
   'every PUT refused with 403');
is($refused[0]{code}, 'SignatureDoesNotMatch', '... SignatureDoesNotMatch');
ok(spool_segments() >= 1, 'the data stays in the spool');
my %have = map { ($_->{body}{rid} // '') => 1 } records();
ok(!grep({ $have{$_} } @rids), 'nothing of it in the store');

@failed = $t->grep_log(qr/reductrai storage .* failed/, since => $log_mark);
is(scalar @failed, 1, 'one log line for the state change');
like($failed[0] // '', qr/HTTP 403 SignatureDoesNotMatch/,
     '... with the reason');
my $log = $t->error_log;
ok(index($log, $WRONG) < 0 && index($log, $SK) < 0,
   'no secret in error.log');

$t->write_file('secret', "$SK\n");
$t->reload;
ok(wait_rids('the records kept during the bad secret', @rids),
   'with the right secret everything arrives');


# --- credentials and a session token from the environment ------------------

config(creds => '', main => "env AWS_ACCESS_KEY_ID=$AK;\n"
                            . "env AWS_SECRET_ACCESS_KEY=$SK;\n"
                            . "env AWS_SESSION_TOKEN=FwoGZXIvYXdzEXAMPLE;");
$t->reload;
$mark = $s3->mark;

is(send_json('/api/v2/series', 'e1'), 202, 'e1 acknowledged');
ok(wait_rids('the record signed with environment credentials', 'e1'),
   'uploaded with credentials from the environment');
@puts = grep { $_->{method} eq 'PUT' } $s3->requests(since => $mark);
ok(@puts >= 1, 'PUT seen');
for my $p (@puts) {
    my $sig = RdxStorage::sigv4_parts($p->{headers}{authorization});
    is($p->{headers}{'x-amz-security-token'}, 'FwoGZXIvYXdzEXAMPLE',
       'the session token is sent');
    like($sig->{SignedHeaders}, qr/;x-amz-security-token(;|$)/,
         '... and signed');
    like($sig->{Credential}, qr{^\Q$AK\E/}, '... with the key from the env');
}
ok(index($t->error_log, 'FwoGZXIvYXdzEXAMPLE') < 0, 'no token in error.log');


# --- temporary credentials: a container endpoint, instance metadata ------
#
# The same nginx serves both endpoints on another port, and refuses any
# request without the right Authorization or IMDSv2 session token: an
# upload that succeeds fetched its keys the way ECS, EKS Pod Identity and
# EC2 hand them out.

my $TMP_TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLEtemporary';
my $creds_json = qq({"AccessKeyId":"$AK","SecretAccessKey":"$SK",)
               . qq("Token":"$TMP_TOKEN","Expiration":"2099-01-01T00:00:00Z"});
(my $creds_conf = $creds_json) =~ s/"/\\"/g;

my $creds_server = <<"EOT";
    server {
        listen 127.0.0.1:%%PORT_creds%%;

        location = /v1/credentials {
            if (\$http_authorization != "rdx-pod-identity-token") {
                return 401;
            }
            default_type application/json;
            return 200 "$creds_conf";
        }

        location = /latest/api/token {
            if (\$request_method != PUT) {
                return 405;
            }
            if (\$http_x_aws_ec2_metadata_token_ttl_seconds = "") {
                return 400;
            }
            return 200 "rdx-imds-session";
        }

        location = /latest/meta-data/iam/security-credentials/ {
            if (\$http_x_aws_ec2_metadata_token != "rdx-imds-session") {
                return 401;
            }
            return 200 "rdx-role\n";
        }

        location = /latest/meta-data/iam/security-credentials/rdx-role {
            if (\$http_x_aws_ec2_metadata_token != "rdx-imds-session") {
                return 401;
            }
            default_type application/json;
            return 200 "$creds_conf";
        }
    }
EOT

$t->write_file('pod-token', "rdx-pod-identity-token\n");

my @temporary = (
    [ 'the container endpoint',
      "env AWS_CONTAINER_CREDENTIALS_FULL_URI="
      . "http://127.0.0.1:%%PORT_creds%%/v1/credentials;\n"
      . "env AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%%DIR%%/pod-token;" ],
    [ 'instance metadata (IMDSv2)',
      "env AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:%%PORT_creds%%;" ],
);

for my $case (@temporary) {
    my ($what, $env) = @$case;

    config(creds => '', main => $env, http => $creds_server);
    $t->reload;
    $mark = $s3->mark;

    my $rid = "tmp-$what";
    $rid =~ s/\W+/-/g;
    is(send_json('/api/v2/series', $rid), 202, "$what: acknowledged");
    ok(wait_rids("the record signed with keys from $what", $rid),
       "$what: uploaded with temporary keys");
    @puts = grep { $_->{method} eq 'PUT' } $s3->requests(since => $mark);
    ok(@puts >= 1, "$what: PUT seen");
    for my $p (@puts) {
        my $sig = RdxStorage::sigv4_parts($p->{headers}{authorization});
        is($p->{headers}{'x-amz-security-token'}, $TMP_TOKEN,
           "$what: the temporary session token is sent");
        like($sig->{SignedHeaders}, qr/;x-amz-security-token(;|$)/,
             '... and signed');
    }
    my $log = $t->error_log;
    ok(index($log, $TMP_TOKEN) < 0 && index($log, $SK) < 0,
       "$what: no key or token in error.log");
}

# an endpoint that refuses us: the data waits in the spool, the log says why

$t->write_file('pod-token', "not-the-token\n");
config(creds => '', main => $temporary[0][1], http => $creds_server);
$log_mark = $t->log_mark;
$t->reload;

is(send_json('/api/v2/series', 'tmp-refused'), 202,
   'refused credentials: still acknowledged');
ok(wait_for(sub {
       $t->grep_log(qr/credentials: HTTP 401/, since => $log_mark)
   }, 20, 'the refusal logged'),
   'the log names the credentials endpoint and its answer');
ok(wait_for(sub { $t->grep_log(qr/credentials: HTTP 401/, since => $log_mark)
                  >= 1 && spool_segments() >= 1 }, 10, 'a segment'),
   'the segment waits in the spool');
sleep 2;    # sealed after 1 s, and refused again
ok(!grep({ ($_->{body}{rid} // '') eq 'tmp-refused' } records()),
   '... and is not in the store');

$t->write_file('pod-token', "rdx-pod-identity-token\n");
ok(wait_rids('the record kept while the endpoint refused us', 'tmp-refused'),
   'the keys are fetched again and the record arrives');

# a plain http:// endpoint elsewhere than this host or the ECS/EKS
# link-local addresses never gets the token (as the AWS SDKs refuse it)

config(creds => '', http => $creds_server,
       main => "env AWS_CONTAINER_CREDENTIALS_FULL_URI="
               . "http://127.0.0.1.nip.example:%%PORT_creds%%/v1/credentials;\n"
               . "env AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%%DIR%%/pod-token;");
$log_mark = $t->log_mark;
$t->reload;

is(send_json('/api/v2/series', 'tmp-untrusted'), 202,
   'untrusted endpoint: still acknowledged');
ok(wait_for(sub {
       $t->grep_log(qr/credentials: an http:\/\/ container endpoint must be on a loopback/,
                    since => $log_mark)
   }, 20, 'the untrusted endpoint refused'),
   'an http:// endpoint on another host is refused, with the reason');

config(creds => '', main => $temporary[0][1], http => $creds_server);
$t->reload;
ok(wait_rids('the record kept while the endpoint was untrusted',
             'tmp-untrusted'),
   '... and the record arrives once the endpoint is a trusted one');


# --- a complete object is never written again ------------------------------

config();
$t->reload;

# a sealed segment under the name of an object already stored, with other
# content (as if an upload had completed and the spool removal was lost)
my ($target) = grep { parse_key($_)->{stream} eq 'metrics' } @keys;
my ($other) = grep { $_ ne $target } @keys;
my $k = parse_key($target);
my $original = RdxStorage::_slurp("$bucket_dir/$target._S3rver_object");
my $name = "$k->{stream},$k->{dt},$k->{hour},$k->{instance}-$k->{pid}-"
         . "$k->{startms}-$k->{seq},1000.zst";
$t->write_file("spool/$name",
               RdxStorage::_slurp("$bucket_dir/$other._S3rver_object"));
$mark = $s3->mark;

ok(wait_for(sub { !-e "$spool/$name" }, 15, 'shipped'),
   'the segment leaves the spool');
@reqs = grep { $_->{url} =~ /\Q$k->{instance}-$k->{pid}-$k->{startms}-$k->{seq}\E/ }
        $s3->requests(since => $mark);
is_deeply([ map { "$_->{method} $_->{status}" } @reqs ], [ 'HEAD 200' ],
          'a HEAD found the object complete: no PUT');
is(RdxStorage::_slurp("$bucket_dir/$target._S3rver_object"), $original,
   'the stored object is unchanged');


# --- throughput of one 8 MiB segment, for the record -----------------------

my $seg = $t->write_file('seg8m', random_text(8 * 1024 * 1024));
($rc, $out, $err) = RdxStorage::tool($t, "s3://archive/pfx", [
    "endpoint=http://127.0.0.1:" . $s3->ready->{backend},
    "access_key=$AK", "secret_key=$SK" ], 'put', 'pfx/bench/seg8m', $seg);
is($rc, 0, '8 MiB PUT straight to s3rver') or diag $err;
my ($n, $secs, $mbps) = split ' ', $out;
is($n, 8 * 1024 * 1024, '... all of it');
diag(sprintf "8 MiB segment to s3rver: %.3f s, %.1f MiB/s (SHA-256 and "
     . "MD5 included)", $secs // 0, $mbps // 0);


$t->check_error_log;
done_testing;
