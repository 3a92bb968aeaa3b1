#!/usr/bin/perl
# No credential reaches the archive, the spool or the error log, wherever
# the request carries it (issue 13, item 2): Datadog's logs intake v1 key in
# the path (/v1/input/<KEY>), percent-encoded parameter names, parameters
# separated by ';'.  api_key_fp comes from the path key when it is the only
# credential.

use strict;
use warnings;
use Test::More;
use File::Find ();
use Digest::SHA qw(sha256_hex);
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
$t->start_upstream(name => 'vendor', status => 202);

# Long enough that the records are still in the spool when nginx stops.
$t->reductrai_config(directives => { segment_age => '60s' });
$t->start;

my @secrets = map { sprintf 'k%02d-0123456789abcdef0123456789abcd', $_ } 1 .. 8;

my @cases = (
    [ "/v1/input/$secrets[0]", '/v1/input/REDACTED' ],
    [ "/v1/input/$secrets[1]?ddsource=nginx&service=web",
      '/v1/input/REDACTED?ddsource=nginx&service=web' ],
    [ "/api/v1%2Finput%2F$secrets[2]", '/api/v1%2Finput%2FREDACTED' ],
    [ "/v1//input/./$secrets[3]", '/v1//input/./REDACTED' ],
    [ "/api/v2/logs?api%5Fkey=$secrets[4]",
      '/api/v2/logs?api%5Fkey=REDACTED' ],
    [ "/api/v2/logs?x=1;dd-api-key=$secrets[5];y=2",
      '/api/v2/logs?x=1;dd-api-key=REDACTED;y=2' ],
    [ "/api/v2/logs?%64d%2Dapi%2Dkey=$secrets[6]",
      '/api/v2/logs?%64d%2Dapi%2Dkey=REDACTED' ],
    [ "/api/v2/logs?a=1;token=$secrets[7]", '/api/v2/logs?a=1;token=REDACTED' ],
);

for my $i (0 .. $#cases) {
    my $r = $t->http(path => $cases[$i][0], body => qq({"n":$i}),
                     headers => [ 'Content-Type' => 'application/json' ]);
    is($r->{status}, 202, "request $i forwarded");
}

my @got = $t->upstream('vendor')->requests;
is(scalar @got, scalar @cases, 'the vendor got every request');

# kill -TERM leaves the open segments in the spool for the next start
$t->stop_fast;

my @spool;
File::Find::find({ no_chdir => 1, wanted => sub {
    push @spool, $File::Find::name if -f $File::Find::name;
} }, $t->path('spool'));
ok(@spool > 0, 'records wait in the spool after a fast stop');

my $spool_text = '';
for my $f (@spool) {
    my $bytes = RdxTest::_slurp($f) // '';
    $spool_text .= $bytes;
    if (substr($bytes, 0, 4) eq "\x28\xb5\x2f\xfd") {
        $spool_text .= `zstd -dcq -- '$f' 2>/dev/null`;
    }
}

for my $s (@secrets) {
    unlike($spool_text, qr/\Q$s\E/, "no $s in the spool");
}

$t->start;

my @records = $t->wait_archived(scalar @cases, 30);
is(scalar @records, scalar @cases, 'every record archived after restart');

my %by_n = map { $_->{body}{n} => $_ } grep { ref $_->{body} } @records;

for my $i (0 .. $#cases) {
    is($by_n{$i}{uri}, $cases[$i][1], "record $i: uri $cases[$i][1]");
}

is($by_n{0}{api_key_fp}, substr(sha256_hex($secrets[0]), 0, 8),
   'api_key_fp comes from the key in the path');
is($by_n{4}{api_key_fp}, substr(sha256_hex($secrets[4]), 0, 8),
   'api_key_fp comes from a percent-encoded api_key parameter');
is($by_n{5}{api_key_fp}, substr(sha256_hex($secrets[5]), 0, 8),
   'api_key_fp comes from a parameter after ";"');
is($by_n{7}{api_key_fp}, undef, 'a token is redacted but not fingerprinted');

my $archive = join '', map { `zstd -dcq -- '$_->{path}'` }
    $t->archive_objects($t->archive_dir, decode => 0);
ok(length $archive > 0, 'the archive decompresses');

for my $s (@secrets) {
    unlike($archive, qr/\Q$s\E/, "no $s in the archive");
}

$t->stop;

my $log = $t->error_log;
for my $s (@secrets) {
    unlike($log, qr/\Q$s\E/, "no $s in error.log");
}

$t->check_error_log;
done_testing;
