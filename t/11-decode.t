#!/usr/bin/perl
# Bodies sent gzip-, deflate- or zstd-encoded are archived decoded; the
# vendor still gets them as sent.  An invalid or unknown encoding and a body
# over reductrai_max_decoded_size are archived raw with decode_error.

use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha256_hex);
use IO::Compress::Gzip qw(gzip);
use IO::Compress::Deflate qw(deflate);
use IO::Compress::RawDeflate qw(rawdeflate);
use MIME::Base64 qw(decode_base64);
use JSON::PP;
use lib 't/lib';
use RdxTest qw(wait_for zstd_compress);

my $t = RdxTest->new;
my $up = $t->start_upstream(name => 'vendor', status => 202);

$t->reductrai_config(directives => { max_decoded_size => '64k' });
$t->start;

my $json = '{"series":[{"metric":"m","points":[[1764100000,1.5]]}]}';

gzip(\$json => \my $gz) or die;
deflate(\$json => \my $zlib) or die;
rawdeflate(\$json => \my $raw) or die;
gzip(\ '{"a":' => \my $gz1) or die;
gzip(\ '1}' => \my $gz2) or die;

# a bomb: 1 MiB of spaces around a JSON value decodes past the 64k cap
my $bomb_plain = '[' . (' ' x (1024 * 1024)) . ']';
gzip(\$bomb_plain => \my $bomb) or die;

my @cases = (
    [ gzip        => 'gzip',    $gz,   { body => $json } ],
    [ xgzip       => 'x-gzip',  $gz,   { body => $json } ],
    [ multimember => 'gzip',    $gz1 . $gz2, { body => '{"a":1}' } ],
    [ zlib        => 'deflate', $zlib, { body => $json } ],
    [ rawdeflate  => 'deflate', $raw,  { body => $json } ],
    [ zstd        => 'zstd',    zstd_compress($json), { body => $json } ],
    [ zstd1       => 'zstd1',   zstd_compress($json), { body => $json } ],
    [ badgzip     => 'gzip',    "not gzip at all",
      { raw => 1, error => 'invalid_gzip' } ],
    [ truncated   => 'gzip',    substr($gz, 0, length($gz) - 6),
      { raw => 1, error => 'invalid_gzip' } ],
    [ badzstd     => 'zstd',    "\x28\xb5\x2f\xfd garbage",
      { raw => 1, error => 'invalid_zstd' } ],
    [ baddeflate  => 'deflate', "\xff\xfe\xfd",
      { raw => 1, error => 'invalid_deflate' } ],
    [ brotli      => 'br',      "\x0b\x02\x80",
      { raw => 1, error => 'unsupported_encoding' } ],
    [ bomb        => 'gzip',    $bomb, { raw => 1, error => 'too_large' } ],
    [ notjson     => undef,     "metric.name 42 1764100000\n",
      { b64 => "metric.name 42 1764100000\n" } ],
    [ gzipnotjson => 'gzip',    do { gzip(\ "plain\x00bytes" => \my $g); $g },
      { b64 => "plain\x00bytes" } ],
    [ badutf8     => undef,     "{\"a\":\"\xff\"}",
      { b64 => "{\"a\":\"\xff\"}" } ],
);

for my $c (@cases) {
    my ($name, $enc, $body) = @$c;
    my $r = $t->http(path => "/$name", body => $body,
                     headers => [ 'Content-Type' => 'application/json',
                                  defined $enc
                                  ? ('Content-Encoding' => $enc) : () ]);
    is($r->{status}, 202, "$name: accepted and forwarded");
}

my %vendor = map { $_->{uri} => $_ } $up->requests;
my %rec = map { $_->{uri} => $_ } $t->wait_archived(scalar @cases);

for my $c (@cases) {
    my ($name, $enc, $body, $want) = @$c;
    my $v = $vendor{"/$name"};
    my $r = $rec{"/$name"};

    is($v->{sha256}, sha256_hex($body), "$name: vendor got the bytes sent");
    is($v->{headers}{'content-encoding'}, $enc,
       "$name: vendor got the same Content-Encoding");
    ok($r, "$name: archived") or next;
    is($r->{content_encoding}, $enc, "$name: content_encoding as received");

    if (defined $want->{body}) {
        is(JSON::PP->new->canonical->encode($r->{body}),
           JSON::PP->new->canonical->encode(decode_json($want->{body})),
           "$name: decoded JSON body");
        is($r->{size}, length $want->{body}, "$name: size is decoded size");
        ok(!exists $r->{decode_error}, "$name: no decode_error");

    } elsif ($want->{raw}) {
        is($r->{decode_error}, $want->{error}, "$name: decode_error");
        is(decode_base64($r->{body_b64}), $body,
           "$name: the raw bytes are kept");
        is($r->{size}, length $body, "$name: size is the raw size");

    } else {
        is(decode_base64($r->{body_b64}), $want->{b64},
           "$name: non-JSON body in body_b64");
        ok(!exists $r->{decode_error}, "$name: no decode_error");
    }
}

$t->check_error_log;

done_testing;
