#!/usr/bin/perl
# azure:// without a key or SAS: OAuth2 tokens for https://storage.azure.com/
# sent as "Authorization: Bearer" with x-ms-version, from AKS workload
# identity (the projected token in AZURE_FEDERATED_TOKEN_FILE, read at each
# fetch, as a client assertion to AZURE_AUTHORITY_HOST), App Service's
# managed identity (IDENTITY_ENDPOINT, IDENTITY_HEADER) and the instance
# metadata service (AZURE_POD_IDENTITY_AUTHORITY_HOST).  The identity
# endpoints of t/node/identity.js answer on Azurite's proxy, which lets a
# bearer token through only when it issued it and it has not expired.
# Tokens are fetched again before they expire; an endpoint that refuses or
# hangs keeps the data in the spool until it answers.

use strict;
use warnings;
use Test::More;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep);
use lib 't/lib';
use RdxTest qw(wait_for);
use RdxStorage;

my $ACCOUNT = 'rdxacct';
my $KEY = encode_base64(join('', map { chr(($_ * 7 + 3) % 256) } 1 .. 64),
                        '');
my $TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
my $CLIENT = '5a3c8ea2-0f0e-4b4e-9d43-0c6f1e1b2d11';
my $ASSERTION = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImFrcyJ9.federated-one.c2ln';
my $ASSERTION2 = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImFrcyJ9.federated-two.c2ln';
my $HEADER = 'rdx-identity-header-4711';
my $LIFETIME = 4;

my $t = RdxTest->new;

# what the pod's token file holds, and what Entra ID takes
$t->write_file('azure-token', "$ASSERTION\n");
$t->write_file('aad-accepts', "$ASSERTION\n");

my $az = RdxStorage->start($t, 'azurite.js', name => 'azure',
    args => [ '--account', $ACCOUNT, '--key', $KEY,
              '--container', 'archive', '--tenant', $TENANT,
              '--client-id', $CLIENT,
              '--federated-token-file', $t->path('aad-accepts'),
              '--identity-header', $HEADER, '--lifetime', $LIFETIME ]);
my $origin = $az->url;
my $common = "endpoint=$origin/$ACCOUNT connect_timeout=1s timeout=10s";

my %sources = (
    workload => {
        AZURE_FEDERATED_TOKEN_FILE => $t->path('azure-token'),
        AZURE_CLIENT_ID            => $CLIENT,
        AZURE_TENANT_ID            => $TENANT,
        AZURE_AUTHORITY_HOST       => "$origin/",
    },
    app_service => {
        IDENTITY_ENDPOINT => "$origin/msi/token",
        IDENTITY_HEADER   => $HEADER,
    },
    imds => {
        AZURE_POD_IDENTITY_AUTHORITY_HOST => $origin,
        AZURE_CLIENT_ID                   => $CLIENT,
    },
);

sub env_lines {
    my ($env) = @_;
    return join '', map { "env $_=$env->{$_};\n" } sort keys %$env;
}

sub config {
    my ($env) = @_;
    $t->reductrai_config(
        main => env_lines($env),
        directives => {
            storage  => "azure://$ACCOUNT/archive/pfx $common",
            instance => 'inst-aks',
        },
        location => "            reductrai_forward off;\n",
    );
}

my %cache;
sub records {
    my $objs = RdxStorage::tool_objects($t, "azure://$ACCOUNT/archive",
                                        [ split ' ', "$common key=$KEY" ],
                                        'pfx/', \%cache);
    return map { @{ $_->{records} } } values %$objs;
}
sub wait_rids { RdxStorage::wait_rids(\&records, @_) }
sub send_json { RdxStorage::send_json($t, @_) }
sub blob_puts {
    grep { $_->{method} eq 'PUT' && $_->{url} =~ m{/pfx/} }
         $az->requests(@_);
}


# --- nginx -t names each source ---------------------------------------------

RdxStorage::names_source($t, "azure://$ACCOUNT/archive $common",
                         $sources{workload},
                         qr/workload identity \(AZURE_FEDERATED_TOKEN_FILE\)/);
RdxStorage::names_source($t, "azure://$ACCOUNT/archive $common",
                         $sources{app_service},
                         qr/managed identity \(IDENTITY_ENDPOINT\)/);
RdxStorage::names_source($t, "azure://$ACCOUNT/archive $common",
                         $sources{imds},
                         qr/managed identity \(instance metadata\)/);
RdxStorage::names_source($t, "azure://$ACCOUNT/archive $common", {},
                         qr/none/);


# --- each source: its token request, then a blob PUT with its token --------

my %token_request = (
    workload    => qr{^POST /$TENANT/oauth2/v2\.0/token$},
    app_service => qr{^GET /msi/token\?api-version=2019-08-01&resource=https%3A%2F%2Fstorage\.azure\.com%2F$},
    imds        => qr{^GET /metadata/identity/oauth2/token\?api-version=2018-02-01&resource=https%3A%2F%2Fstorage\.azure\.com%2F&client_id=$CLIENT$},
);
my %source_name = (
    workload    => 'workload identity (AZURE_FEDERATED_TOKEN_FILE)',
    app_service => 'managed identity (IDENTITY_ENDPOINT)',
    imds        => 'managed identity (instance metadata)',
);
my $started;

for my $name (qw(app_service imds workload)) {
    # the idle probe at start may fetch the token
    my $mark = $az->mark;
    config($sources{$name});
    if ($started++) { $t->reload } else { $t->start }

    is(send_json('/api/v2/series', "az-$name"), 202, "$name: acknowledged");
    ok(wait_rids("the record sent with a $name token", "az-$name"),
       "$name: uploaded with its token");

    my ($call) = grep { "$_->{method} $_->{url}" =~ $token_request{$name} }
                 $az->requests(since => $mark);
    ok($call, "$name: the token request has the right shape")
        or diag explain [ map { "$_->{method} $_->{url}" }
                          $az->requests(since => $mark) ];
    is($call && $call->{status}, 200, "$name: ... and was answered");
    is($call && $call->{headers}{'x-identity-header'},
       $name eq 'app_service' ? $HEADER : undef,
       "$name: X-IDENTITY-HEADER only for App Service");
    is($call && $call->{headers}{metadata}, $name eq 'imds' ? 'true' : undef,
       "$name: Metadata: true only for IMDS");

    my ($put) = blob_puts(since => $mark);
    like($put && $put->{headers}{authorization} // '',
         qr/^Bearer eyJ0eXAiOiJKV1Qi\./, "$name: the PUT carries the token");
    ok($put && $put->{headers}{'x-ms-version'} ge '2017-11-09',
       "$name: with an x-ms-version that takes bearer tokens");
    is($put && $put->{status}, 201, "$name: Azurite stored the blob");

    my (undef, $h) = $t->health;
    is($h->{credentials}{source}, $source_name{$name},
       "$name: /health names the source");
}
is(RdxStorage::identity($az)->{refused}, 0,
   'no token request and no bearer token was refused');


# --- workload identity: the file is read at each fetch, before expiry ------

my $issued = RdxStorage::identity($az)->{issued};
$t->write_file('azure-token', "$ASSERTION2\n");
$t->write_file('aad-accepts', "$ASSERTION2\n");
sleep $LIFETIME + 1;

my $mark = $az->mark;
is(send_json('/api/v2/series', 'az-rotated'), 202, 'acknowledged after expiry');
ok(wait_rids('the record after the token expired', 'az-rotated'),
   'uploaded with a new token');
ok(RdxStorage::identity($az)->{issued} > $issued,
   'a new token, for the rotated assertion');
is(scalar(grep { $_->{status} == 401 } $az->requests(since => $mark)), 0,
   'no request went with an expired token');


# --- Entra ID refuses the assertion, then hangs ---------------------------

sleep $LIFETIME + 1;
RdxStorage::source_outage($t,
    what    => 'Entra ID refuses the assertion',
    rid     => 'az-refused',
    # longer than the message keeps of a description: a cut-off piece of
    # it must not stay behind either
    break   => sub { $t->write_file('azure-token',
                                    'stale-assertion-' . 'x' x 300 . "\n") },
    heal    => sub { $t->write_file('azure-token', "$ASSERTION2\n") },
    why     => qr/workload identity: HTTP 401 invalid_client: AADSTS700024/,
    records => \&records);

sleep $LIFETIME + 1;
my $took = RdxStorage::source_outage($t,
    what    => 'Entra ID hangs',
    rid     => 'az-hung',
    break   => sub { $az->fault(match => "^POST /$TENANT/",
                                action => 'hang', count => 1) },
    heal    => sub { $az->clear },
    why     => qr/workload identity: .*timed out/i,
    records => \&records);
diag(sprintf 'hung token endpoint: given up on and logged after %.1f s',
     $took);

my $log = $t->error_log;
ok(index($log, $ASSERTION) < 0 && index($log, $ASSERTION2) < 0
   && index($log, $HEADER) < 0 && $log !~ /eyJ0eXAiOiJKV1Qi\./,
   'no assertion, identity header or token in error.log');
# Entra ID's refusal above quoted the assertion it was sent
ok(index($log, 'stale-assertion') < 0
   && $log =~ /AADSTS700024: Client assertion \*\*\* is not within/,
   'an assertion quoted by the token endpoint is scrubbed from its error');

$t->check_error_log;
done_testing;
