#!/usr/bin/perl
# azure:// against Azurite (Shared Key and SAS verified), behind the
# recording proxy, which refuses a Content-MD5 that does not match: Put
# Blob for a segment, Put Block and Put Block List above the threshold,
# objects read back through the storage interface (list with markers,
# ranged get, head), a store that goes away and comes back, a wrong key
# (403, data kept, one log line, no key in the log), SAS tokens (a
# write-only one too) and the key from the environment.

use strict;
use warnings;
use Test::More;
use Digest::MD5 qw(md5_base64);
use MIME::Base64 qw(encode_base64 decode_base64);
use lib 't/lib';
use RdxTest qw(wait_for parse_key random_text);
use RdxStorage;

my $ACCOUNT = 'rdxacct';
my $KEY = encode_base64(join('', map { chr(($_ * 7 + 3) % 256) } 1 .. 64),
                        '');
my $WRONG = encode_base64('w' x 64, '');

my $t = RdxTest->new;
my $az = RdxStorage->start($t, 'azurite.js', name => 'azure',
    args => [ '--account', $ACCOUNT, '--key', $KEY,
              '--container', 'archive' ]);
my $endpoint = $az->url . "/$ACCOUNT";
my $common = "endpoint=$endpoint multipart_threshold=5m part_size=5m "
           . "connect_timeout=1s timeout=10s";

$t->write_file('key', "$KEY\n");

sub config {
    my (%o) = @_;
    my $creds = $o{creds} // 'key_file=%%DIR%%/key';

    $t->reductrai_config(
        main => $o{main} // '',
        directives => {
            storage      => "azure://$ACCOUNT/archive/pfx $common $creds",
            instance     => 'inst-z',
            segment_size => '32m',
        },
        location => <<'EOT',
            reductrai_forward off;
            reductrai_stream $arg_s;
EOT
    );
}

my @tool = split ' ', "$common key=$KEY";

sub tool { RdxStorage::tool($t, "azure://$ACCOUNT/archive", @_) }

# objects read back through the storage interface, each once
my %cache;

sub objects {
    return RdxStorage::tool_objects($t, "azure://$ACCOUNT/archive", \@tool,
                                    'pfx/', \%cache);
}

sub records { map { @{ $_->{records} } } values %{ objects() } }

sub wait_rids { RdxStorage::wait_rids(\&records, @_) }

sub send_json {
    my ($s, @rid) = @_;
    return RdxStorage::send_json($t, "/x?s=$s", @rid);
}

sub spool_segments { $t->spool_segments }

sub metric { $t->metric(@_) }


# --- nginx -t refuses what cannot work ------------------------------------

for my $bad (
    [ "azure://$ACCOUNT/archive key=not*base64", qr/account key is not base64/ ],
    [ "azure://$ACCOUNT/archive key=$KEY sas=sv=x",
      qr/key= \(or key_file=\) and sas= exclude each other/ ],
    [ 'azure://Bad_Account/archive', qr/invalid storage account name/ ],
    [ "azure://$ACCOUNT/Arch!ve", qr/invalid container name/ ],
    [ "azure://$ACCOUNT/archive endpoint=127.0.0.1:1",
      qr/must be http:\/\/ or https:\/\// ],
    [ "azure://$ACCOUNT/archive sse=AES256", qr/"sse" does not apply/ ],
    [ "azure://$ACCOUNT", qr/must be azure:\/\/account\/container/ ],
) {
    RdxStorage::refuses($t, @$bad);
}


# --- Put Blob: objects under the right keys, with the right records -------

config();
$t->start;

ok(wait_for(sub { ($t->health)[1]{storage} eq 'connected' }, 10,
            'probe'), 'the idle probe reaches Azurite (List Blobs)');

my @rids;
for my $i (1 .. 9) {
    my $s = $i % 2 ? 'metrics' : 'logs';
    is(send_json($s, "a$i", n => $i), 202, "request a$i acknowledged");
    push @rids, "a$i";
}
ok(wait_rids('the records in Azurite', @rids), 'all records arrived');
ok(wait_for(sub { spool_segments() == 0 }, 10, 'spool empty'),
   'the spool is empty once they are stored');

my $objs = objects();
my @keys = sort keys %$objs;
ok(@keys >= 2, scalar(@keys) . ' blobs');
for my $key (@keys) {
    my $k = parse_key($key);
    ok($k && $k->{prefix} eq 'pfx' && $k->{instance} eq 'inst-z',
       "$key has the archive layout");
    is($objs->{$key}{trailer}{count}, scalar @{ $objs->{$key}{records} },
       "$key is whole (its trailer counts its records)");
}
my %seen = map { $_->{body}{rid} => $_->{body}{n} } records();
is_deeply(\%seen, { map { ("a$_" => $_) } 1 .. 9 },
          'every body archived once, as sent');

my @puts = grep { $_->{method} eq 'PUT' } $az->requests;
is(scalar @puts, scalar @keys, 'one Put Blob per blob');
for my $p (@puts) {
    my $h = $p->{headers};
    is($p->{status}, 201, "Put Blob $p->{url} accepted (Shared Key "
       . 'verified)');
    like($h->{authorization}, qr/^SharedKey \Q$ACCOUNT\E:[A-Za-z0-9+\/]{43}=$/,
         '... signed with Shared Key');
    is($h->{'x-ms-blob-type'}, 'BlockBlob', '... a block blob');
    is($h->{'content-md5'}, $p->{md5}, '... Content-MD5 of the body');
    is($h->{'if-none-match'}, '*', '... never over an existing blob');
    is($h->{'x-ms-version'}, '2021-08-06', '... x-ms-version');
}

my $m = $t->metrics;
is($m->{reductrai_storage_uploads_total}, scalar @keys, 'uploads_total');
is($m->{reductrai_storage_upload_errors_total}, 0, 'no upload errors');
my $stored = 0;
$stored += $_->{size} for values %$objs;
is($m->{reductrai_storage_bytes_total}, $stored, 'storage_bytes_total');

# the storage interface on these blobs

my $key = $keys[0];
my ($rc, $whole) = tool(\@tool, 'get', $key);
is($whole, RdxStorage::_slurp($objs->{$key}{path}), 'get: the whole blob');
my ($rc2, $tail) = tool(\@tool, 'get', $key, -16);
is($tail, substr($whole, -16), 'get: the last 16 bytes (size by HEAD, then '
   . 'x-ms-range)');
is(substr($tail, -4), 'RDX1', '... the trailer footer');
my ($rc3, $mid) = tool(\@tool, 'get', $key, 3, 9);
is($mid, substr($whole, 3, 9), 'get: a middle range');
my ($rc4, $size) = tool(\@tool, 'head', $key);
is($size, length($whole) . "\n", 'head: the size');
my ($rc5) = tool(\@tool, 'head', 'pfx/none');
is($rc5, 3, 'head of a missing blob: not found');
my @ranged = grep { $_->{headers}{'x-ms-range'} } $az->requests;
ok(@ranged >= 2, 'ranges went as x-ms-range');
my ($rc6, undef, $err6) = tool([ split ' ', "$common key=$KEY" ], 'probe');
is($rc6, 0, 'probe');
my ($rc7, undef, $err7) = RdxStorage::tool($t, "azure://$ACCOUNT/nothere",
                                           \@tool, 'probe');
is($rc7, 2, 'probe of a missing container fails for good');
like($err7, qr/HTTP 404 ContainerNotFound/, '... ContainerNotFound');


# --- a large segment: Put Block, then Put Block List ----------------------

my $blob = random_text(8 * 1024 * 1024);
my $mark = $az->mark;

is(send_json('blobs', 'big1', blob => $blob), 202, '8 MB body acknowledged');
ok(wait_rids('the large segment', 'big1'), 'the large segment arrived');

my @reqs = $az->requests(since => $mark);
my @blocks = grep { $_->{method} eq 'PUT' && $_->{url} =~ /comp=block$/ }
             @reqs;
my ($commit) = grep { $_->{url} =~ /comp=blocklist$/ } @reqs;
my ($big) = grep { $_->{records}[0]{body}{rid} eq 'big1' }
            values %{ objects() };

ok($big->{size} > 5 * 1024 * 1024, "the blob is $big->{size} bytes, above "
   . 'the 5m threshold');
is(scalar @blocks, 2, 'two blocks');
my @ids = map { $_->{url} =~ /blockid=([^&]+)/ ? $1 : "" } @blocks;
is_deeply(\@ids, [ 'MDAwMDAwMDE%3D', 'MDAwMDAwMDI%3D' ],
          'block ids: fixed length, URL-encoded base64');
my $sum = 0;
for my $b (@blocks) {
    $sum += $b->{len};
    is($b->{status}, 201, 'Put Block accepted');
    is($b->{headers}{'content-md5'}, $b->{md5}, '... with its Content-MD5');
}
is($sum, $big->{size}, 'the blocks make the blob');
ok($commit, 'Put Block List');
is($commit->{status}, 201, '... accepted');
is($commit->{headers}{'x-ms-blob-content-md5'},
   md5_base64(RdxStorage::_slurp($big->{path})) . '==',
   '... with the MD5 of the whole blob');
is($commit->{headers}{'if-none-match'}, '*', '... conditional');
is($big->{records}[0]{body}{blob}, $blob, 'the 8 MB body, byte for byte');


# --- the store goes away for a while ---------------------------------------

my $log_mark = $t->log_mark;
my $errors = metric('reductrai_storage_upload_errors_total');
$az->down;

@rids = ();
for my $i (1 .. 4) {
    is(send_json('metrics', "d$i"), 202, "d$i acknowledged while down");
    push @rids, "d$i";
}
ok(wait_for(sub { ($t->health)[1]{storage} eq 'disconnected' }, 10,
            'disconnected'), '/health storage "disconnected"');
is(metric('reductrai_storage_connected'), 0, 'storage_connected 0');
ok(wait_for(sub { metric('reductrai_storage_upload_errors_total')
                  >= $errors + 2 }, 15, 'retries'),
   'failed uploads are retried and counted');
ok(spool_segments() >= 1, 'the data waits in the spool');
is(scalar($t->grep_log(qr/reductrai storage .* failed/, since => $log_mark)),
   1, 'one log line for the failure');

$az->up;
ok(wait_rids('the records kept while down', @rids),
   'everything arrives once the store is back');
ok(wait_for(sub { metric('reductrai_storage_connected') == 1 }, 10,
            'connected'), 'storage_connected 1 again');
wait_for(sub { spool_segments() == 0 }, 10, 'spool empty');
is(spool_segments(), 0, 'the spool is empty');


# --- a wrong key: 403, data kept, one log line, no key in the log ---------

$log_mark = $t->log_mark;
$t->write_file('key', "$WRONG\n");
$t->reload;
$errors = metric('reductrai_storage_upload_errors_total');
$mark = $az->mark;

@rids = ();
for my $i (1 .. 3) {
    is(send_json('metrics', "w$i"), 202, "w$i acknowledged");
    push @rids, "w$i";
}
ok(wait_for(sub { metric('reductrai_storage_upload_errors_total')
                  >= $errors + 2 }, 15, 'refused uploads'),
   'refused uploads are counted');
my @refused = grep { $_->{method} eq 'PUT' } $az->requests(since => $mark);
ok(@refused >= 2 && !grep({ $_->{status} != 403 } @refused),
   'every Put Blob refused with 403');
ok(spool_segments() >= 1, 'the data stays in the spool');
my @failed = $t->grep_log(qr/reductrai storage .* failed/,
                          since => $log_mark);
is(scalar @failed, 1, 'one log line for the state change');
like($failed[0] // '', qr/HTTP 403 AuthorizationFailure/, '... the reason');
my $log = $t->error_log;
ok(index($log, $WRONG) < 0 && index($log, $KEY) < 0, 'no key in error.log');

$t->write_file('key', "$KEY\n");
$t->reload;
ok(wait_rids('the records kept during the wrong key', @rids),
   'with the right key everything arrives');


# --- a SAS token instead of the key ----------------------------------------

my $sas = $az->ready->{sas};
config(creds => "sas=$sas");
$t->reload;
$mark = $az->mark;

is(send_json('metrics', 's1'), 202, 's1 acknowledged');
ok(wait_rids('the record sent with a SAS', 's1'), 'uploaded with a SAS');
@puts = grep { $_->{method} eq 'PUT' } $az->requests(since => $mark);
ok(@puts >= 1 && !grep({ $_->{headers}{authorization} } @puts),
   'no Authorization header with a SAS');
ok(!grep({ $_->{url} !~ /[?&]sig=/ } @puts), 'the SAS rides in the URL');
ok(index($t->error_log, $sas) < 0, 'no SAS in error.log');

# a SAS that may only write: it may not list (the probe) nor read (the
# HEAD before a Put Blob), and uploads still work
my @wtool = split ' ', "$common sas=" . $az->ready->{sas_write};
my $seg = $t->write_file('seg', 'x' x 1000);
my ($wrc, undef, $werr) = RdxStorage::tool($t, "azure://$ACCOUNT/archive",
                                           \@wtool, 'probe');
is($wrc, 0, 'write-only SAS: the probe counts a permission refusal as '
   . 'reachable') or diag $werr;
($wrc, undef, $werr) = RdxStorage::tool($t, "azure://$ACCOUNT/archive",
                                        \@wtool, 'put', 'pfx/wsas/obj', $seg);
is($wrc, 0, 'write-only SAS: put works') or diag $werr;
my ($grc, $got) = tool(\@tool, 'get', 'pfx/wsas/obj');
is($got, 'x' x 1000, '... and the blob is there');


# --- the key from the environment ------------------------------------------

config(creds => '', main => "env AZURE_STORAGE_KEY=$KEY;");
$t->reload;
is(send_json('metrics', 'e1'), 202, 'e1 acknowledged');
ok(wait_rids('the record signed with AZURE_STORAGE_KEY', 'e1'),
   'uploaded with the key from the environment');


$t->check_error_log;
done_testing;
