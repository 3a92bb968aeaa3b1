#!/usr/bin/perl
# Bad input never crashes or hangs: aborted and slow bodies, pipelined
# requests, bodies over client_max_body_size, broken chunked encoding,
# Expect: 100-continue, HTTP/1.0, HEAD and GET to a tapped location.
# What nginx accepts is archived; what it refuses is not.

use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use MIME::Base64 ();
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

$t->reductrai_config(
    buffer => '8k',
    http => '    client_body_timeout 2s;',
    server => <<'EOT',
        location /small/ {
            reductrai on;
            client_max_body_size 1k;
            proxy_pass http://vendor;
        }

        # a failed body read sent by error_page into tapped locations
        location /limited/ {
            reductrai on;
            client_max_body_size 1k;
            error_page 413 /acked/too_big;
            proxy_pass http://vendor;
        }

        location /limited_fwd/ {
            reductrai on;
            client_max_body_size 1k;
            error_page 413 /small/too_big;
            proxy_pass http://vendor;
        }

        location /acked/ {
            reductrai on;
            reductrai_forward off;
        }
EOT
);
$t->start;

my $body = '{"k":"' . ('v' x 20_000) . '"}';

# aborted in the middle of the body: not accepted, not archived
$t->http(path => '/aborted', body => $body, abort_after => 5000);

# a slow body, in pieces
my $r = $t->http(path => '/slow', body => $body, split => [100, 5000, 9000],
                 delay => 0.3);
is($r->{status}, 202, 'a slow body is accepted');

# a body that stops coming: client_body_timeout
$r = $t->http(raw => "POST /stalled HTTP/1.1\r\nHost: x\r\n"
              . "Content-Length: 100\r\n\r\n{\"a\":", timeout => 10);
is($r->{status}, 0, 'a stalled body times out: nginx closes the connection');

# pipelined requests on one connection
my @res = $t->pipeline(requests => [
    map { { path => "/pipe/$_", body => qq({"p":$_}) } } 1 .. 5 ]);
is_deeply([ map { $_->{status} } @res ], [ (202) x 5 ],
          'pipelined requests are all answered');

# over client_max_body_size: refused by nginx
$r = $t->http(path => '/small/big', body => 'x' x 5000);
is($r->{status}, 413, 'a body over client_max_body_size gets 413');

# over client_max_body_size in chunks, error_page into tapped locations: the
# limit shows only while the body is read, after the tap took the request,
# and the redirected request must still be answered
$r = $t->http(path => '/limited/big', body => 'x' x 5000, chunked => 500,
              timeout => 5);
is($r->{status}, 413,
   'a chunked body over the limit, error_page to a location that answers '
   . 'itself: 413, not a hang');
$r = $t->http(path => '/limited_fwd/big', body => 'x' x 5000,
              chunked => 500, timeout => 5);
is($r->{status}, 413,
   'the same, error_page to a forwarding location: 413, the cut body is '
   . 'not forwarded');

# broken chunked encoding
$r = $t->http(raw => "POST /badchunk HTTP/1.1\r\nHost: x\r\n"
              . "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
is($r->{status}, 400, 'broken chunked encoding gets 400');

# Expect: 100-continue
$r = $t->http(path => '/expect', body => '{"e":1}',
              headers => [ 'Expect' => '100-continue' ]);
is($r->{status}, 202, 'Expect: 100-continue works');

# HTTP/1.0
$r = $t->http(path => '/http10', body => '{"h":10}', http10 => 1);
is($r->{status}, 202, 'HTTP/1.0 POST works');

# methods without a body pass untouched
$r = $t->http(method => 'HEAD', path => '/head');
is($r->{status}, 202, 'HEAD passes');
$r = $t->http(method => 'DELETE', path => '/delete');
is($r->{status}, 202, 'DELETE passes');

# a binary body with NUL bytes and a bogus content type
my $bin = join '', map { chr } 0 .. 255;
$r = $t->http(path => '/binary', body => $bin,
              headers => [ 'Content-Type' => "text/\x01weird" ]);
is($r->{status}, 202, 'a binary body is accepted');

# header values with bytes that are not UTF-8
$r = $t->http(path => '/latin1', body => '{}',
              headers => [ 'User-Agent' => "agent \xe9\xff",
                           'X-Request-ID' => "id\"with\\quotes" ]);
is($r->{status}, 202, 'odd header bytes are accepted');

my @records = $t->wait_archived(10);
my %rec = map { $_->{uri} => $_ } @records;
is(scalar @records, 10, 'ten records: the requests that were accepted');

ok(!$rec{'/aborted'}, 'the aborted request is not archived');
ok(!$rec{'/stalled'}, 'the stalled request is not archived');
ok(!$rec{'/small/big'}, 'the refused request is not archived');
ok(!grep({ m{^/(limited|limited_fwd|acked|small)/.*big} } keys %rec),
   'nor those sent on by error_page');
ok(!$rec{'/badchunk'}, 'the broken request is not archived');
is(length $rec{'/slow'}{body}{k}, 20_000, 'the slow body is whole');
is(scalar(grep { m{^/pipe/} } keys %rec), 5, 'pipelined: 5 records');
ok($rec{'/expect'} && $rec{'/http10'}, '100-continue and HTTP/1.0 archived');
ok(!$rec{'/head'} && !$rec{'/delete'}, 'HEAD and DELETE are not archived');
is($rec{'/binary'}{body_b64}, MIME::Base64::encode_base64($bin, ''),
   'the binary body is kept exactly');
is($rec{'/binary'}{content_type}, "text/\x01weird",
   'a control character in a header survives as an escape');
is($rec{'/latin1'}{user_agent}, "agent \xe9\xff",
   'bytes that are not UTF-8 are escaped, not lost');
is($rec{'/latin1'}{request_id}, "id\"with\\quotes", 'quotes are escaped');

my %vendor = map { $_->{uri} => $_ } $up->requests;
is($vendor{'/binary'}{sha256}, sha256_hex($bin),
   'the vendor got the binary body unchanged');

$t->check_error_log;

done_testing;
