#!/usr/bin/perl
# Forwarding is byte-identical and every accepted body is archived once,
# with the right fields and no credential: Content-Length, chunked, gzip,
# a body in nginx's temporary file, HTTP/2, PUT and PATCH, an empty body.

use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Compress::Gzip qw(gzip);
use JSON::PP;
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202,
                            body => '{"errors":[]}');

$t->reductrai_config(
    buffer => '16k',
    http => <<'EOT',
    log_format ids '$request_uri $reductrai_record_id $request_id';
EOT
    server => <<'EOT',
        listen 127.0.0.1:%%PORT_http2%% http2;
        access_log %%DIR%%/ids.log ids;
EOT
);
$t->start;

my $secret = 'dd-secret-0123456789abcdef';
my $json = JSON::PP->new->canonical;
my $payload = '{"series": [ {"metric":"system.load.1", "points":[{"timestamp":'
    . '1764100000, "value": 0.7}], "tags": ["env:prod", "a b"]} ]}';
my $minified = '{"series":[{"metric":"system.load.1","points":[{"timestamp":'
    . '1764100000,"value":0.7}],"tags":["env:prod","a b"]}]}';

my @sent;    # [uri, sha256 of the body as sent]

sub post {
    my (%o) = @_;
    my $r = $o{http2} ? $t->http2(%o) : $t->http(%o);
    is($r->{status}, 202, "$o{what}: the vendor's answer comes back");
    push @sent, [ $o{path}, sha256_hex($o{body} // '') ];
    return $r;
}

post(what => 'content-length', path => '/api/v2/series?api_key=' . $secret
     . '&x=1', body => $payload,
     headers => [ 'Content-Type' => 'application/json',
                  'DD-API-KEY' => $secret,
                  'X-Request-ID' => 'req-42',
                  'User-Agent' => 'datadog-agent/7.50.0' ]);

gzip(\$payload => \my $gz) or die;
post(what => 'gzip', path => '/api/v1/series', body => $gz,
     headers => [ 'Content-Type' => 'application/json',
                  'Content-Encoding' => 'gzip',
                  'Authorization' => "Bearer $secret" ]);

post(what => 'chunked', path => '/chunked', body => $payload, chunked => 7,
     headers => [ 'Content-Type' => 'application/json',
                  'X-Api-Key' => $secret ]);

# larger than client_body_buffer_size (16k): nginx keeps it in a file
my $big = '{"logs":['
    . join(',', map { sprintf '{"message":"line %d %s","n":%d}', $_,
                              'x' x 100, $_ } 1 .. 2000)
    . ']}';
post(what => 'temp file', path => '/api/v2/logs', body => $big,
     headers => [ 'Content-Type' => 'application/json' ]);

post(what => 'http2', http2 => 1, port => $t->port('http2'),
     path => '/v1/metrics', body => $payload,
     headers => [ 'Content-Type' => 'application/json' ]);

post(what => 'put', method => 'PUT', path => '/put', body => 'plain text');
post(what => 'patch', method => 'PATCH', path => '/patch', body => '[1, 2]');
post(what => 'empty', path => '/empty', body => '');

my $get = $t->http(method => 'GET', path => '/get');
is($get->{status}, 202, 'a GET passes through');

# --- the vendor got exactly what the clients sent

my @got = grep { $_->{method} ne 'GET' } $up->requests;
is(scalar @got, scalar @sent, 'the vendor got every tapped request');

for my $s (@sent) {
    my ($r) = grep { $_->{uri} eq $s->[0] } @got;
    ok($r, "vendor got $s->[0]") or next;
    is($r->{sha256}, $s->[1], "$s->[0]: byte-identical body");
}

my ($gzr) = grep { $_->{uri} eq '/api/v1/series' } @got;
is($gzr->{headers}{'content-encoding'}, 'gzip',
   'the vendor gets the gzip body with its Content-Encoding');
is($gzr->{headers}{authorization}, "Bearer $secret",
   'credentials are forwarded to the vendor');

# --- the archive holds each tapped request once

my @records = $t->wait_archived(scalar @sent);
is(scalar @records, scalar @sent, 'one record per tapped request');

my %by_uri = map { $_->{uri} => $_ } @records;
my $fp = substr(sha256_hex($secret), 0, 8);

my $r = $by_uri{"/api/v2/series?api_key=REDACTED&x=1"};
ok($r, 'the api_key query parameter is redacted in the uri');
like($r->{id}, qr/^[A-Za-z0-9._-]+-\d+-\d{13}-\d+$/,
     'id is INSTANCE-PID-STARTMS-N');
like($r->{ts}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/,
     'ts is RFC 3339 UTC with milliseconds');
is($r->{stream}, 'default', 'stream defaults to "default"');
is($r->{method}, 'POST', 'method');
is($r->{host}, 'localhost', 'host as the client sent it');
is($r->{client}, '127.0.0.1', 'client');
is($r->{request_id}, 'req-42', 'request_id from X-Request-ID');
is($r->{content_type}, 'application/json', 'content_type');
is($r->{content_encoding}, undef, 'content_encoding null when none');
is($r->{user_agent}, 'datadog-agent/7.50.0', 'user_agent');
is($r->{api_key_fp}, $fp, 'api_key_fp is the first 8 hex of SHA-256');
ok($r->{forwarded}, 'forwarded');
is($r->{size}, length $payload, 'size is the body size');
is_deeply($r->{body}, $json->decode($payload), 'body is the JSON value');

my ($obj) = grep { grep { (($_ // {})->{request_id} // '') eq 'req-42' }
                   @{ $_->{records} } } $t->archive_objects($t->archive_dir);
my ($line) = grep { /req-42/ } @{ $obj->{lines} };
like($line, qr/"body":\Q$minified\E\}$/,
     'the body is minified JSON, bytes otherwise as sent');
my $order = '^\{"id":"[^"]+","ts":"[^"]+","stream":"default","method":'
    . '"POST","uri":"[^"]+","host":"[^"]+","client":"[^"]+",'
    . '"request_id":"req-42","content_type":"application/json",'
    . '"content_encoding":null,"user_agent":"[^"]+","api_key_fp":'
    . "\"$fp\",\"forwarded\":true,\"size\":\\d+,\"body\":";
like($line, qr/$order/, 'fields in the archive order');

$r = $by_uri{'/api/v1/series'};
is($r->{content_encoding}, 'gzip', 'content_encoding as received');
is($r->{size}, length $payload, 'size is the decoded size');
is_deeply($r->{body}, $json->decode($payload), 'gzip body decoded');
is($r->{api_key_fp}, $fp, 'api_key_fp from Authorization: Bearer');
like($r->{request_id}, qr/^[0-9a-f]{32}$/,
     'request_id falls back to $request_id');

is($by_uri{'/chunked'}{api_key_fp}, $fp, 'api_key_fp from X-Api-Key');
is_deeply($by_uri{'/chunked'}{body}, $json->decode($payload),
          'chunked body archived whole');

is($by_uri{'/api/v2/logs'}{size}, length $big, 'temp-file body size');
is(scalar @{ $by_uri{'/api/v2/logs'}{body}{logs} }, 2000,
   'temp-file body archived whole');

is_deeply($by_uri{'/v1/metrics'}{body}, $json->decode($payload),
          'HTTP/2 body archived');

is($by_uri{'/put'}{method}, 'PUT', 'PUT archived');
is($by_uri{'/put'}{body_b64}, 'cGxhaW4gdGV4dA==', 'non-JSON body in base64');
ok(!exists $by_uri{'/put'}{body}, 'no "body" for non-JSON');
is($by_uri{'/patch'}{method}, 'PATCH', 'PATCH archived');
is_deeply($by_uri{'/patch'}{body}, [1, 2], 'PATCH JSON body');
is($by_uri{'/empty'}{size}, 0, 'empty body: size 0');
is($by_uri{'/empty'}{body_b64}, '', 'empty body: body_b64 ""');
ok(!exists $by_uri{'/get'}, 'GET is not archived');

# --- no credential anywhere in the archive

my $raw = join '', map { join "\n", @{ $_->{lines} } }
                   $t->archive_objects($t->archive_dir);
unlike($raw, qr/\Q$secret\E/, 'no credential in the archive');
unlike($raw, qr/dd-api-key|authorization|x-api-key/i,
       'no credential header in the archive');

# --- trailers and ids

for my $o ($t->archive_objects($t->archive_dir)) {
    is($o->{trailer}{count}, scalar @{ $o->{records} },
       "$o->{key}: trailer count");
    # version 2: zstd's frame checksum (checked by the read) covers the
    # content, so the module no longer hashes it
    is($o->{trailer}{v}, 2, "$o->{key}: trailer version 2");
    ok(!exists $o->{trailer}{sha256}, "$o->{key}: no sha256 in the trailer");
    ok(!$o->{error}, "$o->{key}: zstd checksum verified");
    is($o->{trailer}{raw_bytes}, $o->{raw_bytes}, "$o->{key}: raw_bytes");
}

my %ids = map { $_->{id} => 1 } @records;
is(scalar keys %ids, scalar @records, 'record ids are unique');

my @log = map { [ split ' ' ] } split /\n/, $t->read_file('ids.log');
my %logged = map { $_->[0] => $_->[1] } @log;
my %logged_rid = map { $_->[0] => $_->[2] } @log;
is($logged_rid{'/api/v1/series'}, $by_uri{'/api/v1/series'}{request_id},
   'the module\'s request_id is the $request_id of the access log');
my @rids = grep { $_ ne '-' } map { $_->[2] } @log;
my %distinct = map { $_ => 1 } @rids;
is(scalar keys %distinct, scalar @rids,
   scalar(@rids) . ' requests, as many distinct $request_id');
is($logged{'/put'}, $by_uri{'/put'}{id},
   '$reductrai_record_id in the access log matches the archive');

$t->check_error_log;

done_testing;
