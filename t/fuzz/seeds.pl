#!/usr/bin/perl
# Seed corpora for the libFuzzer targets (t/fuzz/fuzz_*.c), from the
# payloads the test suite sends (t/10-forward.t, t/11-decode.t,
# bench/corpus.pl's shapes) and the answers its storage servers give
# (t/node: s3rver, azurite, fake-gcs).  Usage: seeds.pl OUTDIR; writes
# OUTDIR/<target>/<name> for the targets it knows.  A target may also keep
# hand-made seeds in t/fuzz/corpus/<target>/ (the Makefile copies them).

use strict;
use warnings;
use Compress::Zlib ();
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use IO::Compress::Gzip qw(gzip);
use IO::Compress::Deflate qw(deflate);
use IO::Compress::RawDeflate qw(rawdeflate);

my $out = shift or die "usage: $0 OUTDIR\n";

my @json = (
    '{"series": [ {"metric":"system.load.1", "points":[{"timestamp":'
    . '1764100000, "value": 0.7}], "tags": ["env:prod", "a b"]} ]}',
    '{"series":[{"metric":"m","points":[[1764100000,1.5e3]],"type":"gauge",'
    . '"host":"web-1","tags":["k:v"],"interval":10}]}',
    '[{"check":"datadog.agent.up","host_name":"web-1","status":0,'
    . '"timestamp":1764100000,"message":"","tags":[]}]',
    '[{"message":"GET /x 200 \u00e9\ud83d\ude00","status":"info",'
    . '"timestamp":1764100000123,"hostname":"h","service":"web",'
    . '"ddsource":"nginx","ddtags":"env:prod"}]',
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",'
    . '"value":{"stringValue":"web"}}]},"scopeSpans":[{"spans":[{'
    . '"traceId":"5b8efff798038103d269b633813fc60c","spanId":'
    . '"eee19b7ec3c1b174","name":"GET","kind":2,"startTimeUnixNano":'
    . '"1764100000000000000"}]}]}]}',
    '"just a string \\" \\\\ \\/ \\b\\f\\n\\r\\t"', '-0.0e+00', 'true',
    'null', '[]', '{}', " \t\r\n[ 1 , 2 ] ", '{"a":{"b":{"c":[[[[1]]]]}}}',
);

sub put {
    my ($target, $name, $bytes) = @_;
    make_path("$out/$target");
    open my $fh, '>:raw', "$out/$target/$name" or die "$out/$target/$name: $!";
    print $fh $bytes;
    close $fh or die "$!";
}

sub zstd {
    my ($bytes) = @_;
    my $tmp = "$out/.zstd-in";
    open my $fh, '>:raw', $tmp or die "$tmp: $!";
    print $fh $bytes;
    close $fh;
    my $z = `zstd -q -c -- '$tmp'`;
    unlink $tmp;
    die "zstd failed\n" if $? != 0;
    return $z;
}

# fuzz_json: the bodies themselves
for my $i (0 .. $#json) {
    put('fuzz_json', "json-$i", $json[$i]);
}

# fuzz_decode: byte 0 = coding (% 5: identity gzip deflate zstd other) and
# cap; 0x80 sets a 1 MiB cap
for my $i (0 .. $#json) {
    my $j = $json[$i];
    gzip(\$j => \my $gz) or die;
    deflate(\$j => \my $zl) or die;
    rawdeflate(\$j => \my $raw) or die;
    put('fuzz_decode', "identity-$i", chr(0x80) . $j);
    put('fuzz_decode', "gzip-$i", chr(0x81) . $gz);
    put('fuzz_decode', "deflate-$i", chr(0x82) . $zl);
    put('fuzz_decode', "rawdeflate-$i", chr(0x82) . $raw);
    put('fuzz_decode', "zstd-$i", chr(0x83) . zstd($j));
    put('fuzz_decode', "capped-$i", chr(0x09) . $gz);
}
put('fuzz_decode', 'bomb', chr(0x09) . zstd("\0" x 100000));

# archive records, as the encoder writes them
my @records;
for my $i (0 .. $#json) {
    my $body = $i % 3 ? qq("body_b64":"eyJhIjoxfQ==") : qq("body":$json[0]);
    push @records, qq({"id":"web-1-4711-1764100000123-$i","ts":)
        . qq("2026-11-25T19:38:08.486Z","stream":"metrics","method":"POST",)
        . qq("uri":"/api/v2/series?api_key=REDACTED","host":"h",)
        . qq("client":"127.0.0.1","request_id":"r\\u0001\\ud83d\\ude00",)
        . qq("content_type":"application/json","content_encoding":"gzip",)
        . qq("user_agent":"datadog-agent/7.50.0","api_key_fp":"9f86d081",)
        . qq("forwarded":true,"size":7,$body)
        . ($i % 4 ? '' : ',"decode_error":"too_large"') . '}';
}
my $ndjson = join('', map { "$_\n" } @records);

my $index = qq({"v":1,"count":) . scalar(@records)
    . qq(,"first_ts":"2026-11-25T19:38:08.486Z","last_ts":)
    . qq("2026-11-25T19:38:09.001Z","raw_bytes":) . length($ndjson)
    . qq(,"sha256":") . sha256_hex($ndjson) . '"}';
my $frame_len = 8 + length($index) + 8;
my $trailer = pack('VV', 0x184D2A50, $frame_len - 8) . $index
    . pack('V', $frame_len) . 'RDX1';

# fuzz_trailer: an object's last bytes
put('fuzz_trailer', 'trailer', $trailer);
put('fuzz_trailer', 'tail', substr(zstd($ndjson), -40) . $trailer);

# fuzz_reader: byte 0 = piece size - 1, then the object
my $object = zstd($ndjson) . $trailer;
put('fuzz_reader', 'object-whole', chr(255) . $object);
put('fuzz_reader', 'object-pieces', chr(7) . $object);
put('fuzz_reader', 'no-trailer', chr(0) . zstd($ndjson));
put('fuzz_reader', 'partial-line', chr(31) . zstd($records[0]));

# fuzz_storage_xml: byte 0 = backend (% 3: s3 azure gcs), then a body
my %xml = (
    's3-error' => '<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
        . 'SignatureDoesNotMatch</Code><Message>The request signature we '
        . 'calculated does not match &amp; &#60;x&#x3e;</Message><RequestId>'
        . '4442587FB7D0A2F9</RequestId></Error>',
    's3-list' => '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
        . 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name>'
        . '<Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>'
        . '<IsTruncated>true</IsTruncated><Contents><Key>p/stream=metrics/'
        . 'dt=2026-11-25/hour=19/web-1-4711-1764100000123-00000001.ndjson.zst'
        . '</Key><LastModified>2026-11-25T19:39:00.000Z</LastModified><ETag>'
        . '&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1234'
        . '</Size><StorageClass>STANDARD</StorageClass></Contents><Contents>'
        . '<Key>p/a&amp;b</Key><Size>0</Size></Contents>'
        . '<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM='
        . '</NextContinuationToken></ListBucketResult>',
    'azure-error' => "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
        . '<Error><Code>AuthenticationFailed</Code><Message>Server failed to '
        . "authenticate the request.\nRequestId:8b1c\nTime:2026-11-25T19:38:08"
        . '.4868763Z</Message><AuthenticationErrorDetail>Signature did not '
        . 'match</AuthenticationErrorDetail></Error>',
    'azure-list' => "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
        . '<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/acct/" '
        . 'ContainerName="cont"><Prefix>p/</Prefix><Blobs><Blob><Name>p/x.'
        . 'ndjson.zst</Name><Properties><Content-Length>42</Content-Length>'
        . '<BlobType>BlockBlob</BlobType></Properties></Blob><Blob><Name>p/y'
        . '</Name><Properties><Content-Length>0</Content-Length></Properties>'
        . '</Blob></Blobs><NextMarker>2!84!MDAwMDE2IXAveS5uZGpzb24uenN0</'
        . 'NextMarker></EnumerationResults>',
    'gcs-list' => '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
        . '<Contents><Key>p/x</Key><Size>1</Size></Contents><IsTruncated>'
        . 'false</IsTruncated></ListBucketResult>',
);
my %backend = (s3 => 0, azure => 1, gcs => 2);
for my $name (sort keys %xml) {
    my ($b) = $name =~ /^(\w+)-/;
    put('fuzz_storage_xml', $name, chr($backend{$b}) . $xml{$name});
}

# fuzz_storage_answers: byte 0 = operation, byte 1 = status, then a body
my @token = (
    '{"access_token":"ya29.c.b0AXv0zTO","expires_in":3599,'
    . '"token_type":"Bearer"}',
    '{"error":"invalid_grant","error_description":"Invalid JWT Signature."}',
);
put('fuzz_storage_answers', 'gcs-token', chr(4) . chr(200) . $token[0]);
put('fuzz_storage_answers', 'gcs-token-error', chr(4) . chr(144) . $token[1]);
my $op = 0;
for my $name (sort keys %xml) {
    put('fuzz_storage_answers', $name, chr($op++ % 4)
        . chr($name =~ /error/ ? 147 : 200) . $xml{$name});
}
