#!/usr/bin/perl
# reductrai ls, cat, verify and replay on azure:// (Azurite, Shared Key and
# SAS verified, behind the recording proxy of t/node): an archive the
# module wrote to the container; the key from AZURE_STORAGE_KEY as in
# nginx, or a SAS token parameter; one ranged GET per object for ls; a
# wrong key gives exit 3, one line, no secret.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;

use RdxTest qw(wait_for);
use RdxStorage;
use RdxCli qw(cli module_archive);

my $ACCOUNT = 'rdxcli';
my $KEY = encode_base64(join('', map { chr(($_ * 37 + 11) % 256) } 1 .. 64),
                        '');

my $t = RdxTest->new;
my $az = RdxStorage->start($t, 'azurite.js', name => 'azure',
    args => [ '--account', $ACCOUNT, '--key', $KEY,
              '--container', 'archive' ]);

$t->write_file('azkey', "$KEY\n");

my $endpoint = 'http://127.0.0.1:' . $az->port . "/$ACCOUNT";
my @params = ("endpoint=$endpoint", 'connect_timeout=1s', 'timeout=10s');
my $env = { AZURE_STORAGE_KEY => $KEY };
my $uri = "azure://$ACCOUNT/archive/pfx";

my @requests = (
    (map { { path => "/api/v1/series?n=$_",
             body => qq({"series":[{"metric":"az.$_"}]}),
             headers => [ 'Content-Type' => 'application/json' ] } } 1 .. 6),
    (map { { path => "/api/v2/logs?n=$_", body => qq([{"m":"$_"}]) } } 1 .. 3),
);

# the module empties its spool once every segment is in the container
my $spool = $t->path('spool');
my $shipped = 0;
module_archive($t, requests => \@requests, workers => 2,
               storage => "$uri " . join(' ', @params)
                        . ' key_file=%%DIR%%/azkey',
               count => sub {
                   return $shipped unless -d $spool && !$t->master_pid;
                   my @left = glob("$spool/*.zst $spool/*.open");
                   $shipped = @left ? 0 : scalar @requests;
                   return $shipped;
               });

my $puts = grep { $_->{method} eq 'PUT' && $_->{url} =~ m{/pfx/stream(=|%3D)} }
           $az->requests;
ok($puts >= 2, "the module put $puts objects");


# --- ls ------------------------------------------------------------------

my $mark = $az->mark;
my $r = cli({ env => $env }, 'ls', $uri, @params, '--json');
is($r->{rc}, 0, 'ls azure:// exits 0') or diag($r->{err});
my @j = map { JSON::PP->new->decode($_) } split /\n/, $r->{out};
is(scalar @j, $puts, 'every object listed');
my $sum = 0;
$sum += $_->{records} for @j;
is($sum, 9, 'records from the trailers: 9');
ok(!grep({ $_->{key} !~ m{^pfx/stream=(metrics|logs)/dt=} } @j),
   'keys under the prefix');

my @gets = grep { $_->{method} eq 'GET' } $az->requests(since => $mark);
my @ranged = grep { ($_->{headers}{'x-ms-range'} // $_->{headers}{range}
                     // '') =~ /bytes=/ } @gets;
is(scalar @ranged, $puts, 'one ranged GET per object');


# --- cat, verify, replay ------------------------------------------------

$r = cli({ env => $env }, 'cat', $uri, @params, '--stream', 'metrics',
         '--body');
is($r->{rc}, 0, 'cat azure:// exits 0') or diag($r->{err});
is_deeply([ sort split /\n/, $r->{out} ],
          [ sort map { qq({"series":[{"metric":"az.$_"}]}) } 1 .. 6 ],
          'cat --body: the six series');

$r = cli({ env => $env }, 'verify', $uri, @params);
is($r->{rc}, 0, 'verify azure:// exits 0') or diag($r->{out}, $r->{err});
like($r->{out}, qr/^verify: $puts objects, 9 records, \d+ bytes: OK$/m,
     'verify: OK');

my $up = $t->start_upstream(name => 'intake', status => 202);
$r = cli({ env => $env }, 'replay', $uri, @params, '--to', $up->url,
         '-H', 'DD-API-KEY: k');
is($r->{rc}, 0, 'replay from azure:// exits 0') or diag($r->{err});
like($r->{err}, qr/^replay: 9 sent, 9 ok, 0 failed/m, '9 replayed');

# a SAS token instead of the key
$r = cli('ls', $uri, @params, 'sas=' . $az->ready->{sas});
like($r->{out}, qr/^total: $puts objects, 9 records/m, 'ls with a SAS token');


# --- a wrong key ------------------------------------------------------------

my $wrong = encode_base64('x' x 64, '');
$r = cli({ env => { AZURE_STORAGE_KEY => $wrong } }, 'ls', $uri, @params);
is($r->{rc}, 3, 'a wrong key: exit 3');
like($r->{err}, qr/^reductrai: ls: storage azure:\/\/\Q$ACCOUNT\E\/archive\/pfx: listing failed: .*403/,
     'one line with the status') or diag($r->{err});
is(scalar(split /\n/, $r->{err}), 1, 'one line');
unlike($r->{err}, qr/\Q$wrong\E|\Q$KEY\E/, 'no key in it');

$t->check_error_log;
done_testing;
