#!/usr/bin/perl
# Secrets handling (issue 13, item 7): a secret file must be a regular file
# (a FIFO fails at once instead of hanging nginx -t, a directory is not an
# empty key), a link only within its own directory (as Kubernetes mounts
# secrets), a warning when group or others may read it; an Azure SAS or a
# GCS token never goes to a non-loopback http:// endpoint without
# insecure_http=on; file:// objects are 0640 and directories 0750 unless
# mode= says otherwise.

use strict;
use warnings;
use Test::More;
use POSIX qw(mkfifo);
use Time::HiRes qw(time);
use lib 't/lib';
use RdxTest;

my $t = RdxTest->new;
my $dir = $t->dir;

sub check {
    my ($storage) = @_;
    my $conf = $t->write_config(file => 'check.conf', http => <<"EOT");
    reductrai_storage $storage;
    reductrai_spool %%DIR%%/spool;
    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { reductrai on; reductrai_forward off; }
    }
EOT
    my $start = time;
    my ($rc, $out) = $t->nginx_t(conf => $conf);
    return ($rc, $out, time - $start);
}

mkdir "$dir/secrets" or die;
$t->write_file('secrets/key', "s3cr3t\n");
chmod 0600, "$dir/secrets/key";

my $s3 = 's3://bucket region=us-east-1 access_key=AKID';

my ($rc, $out) = check("$s3 secret_key_file=$dir/secrets/key");
is($rc, 0, 'a 0600 regular file is read');
unlike($out, qr/readable|may be read/, 'no warning for a 0600 file');

chmod 0644, "$dir/secrets/key";
($rc, $out) = check("$s3 secret_key_file=$dir/secrets/key");
is($rc, 0, 'a 0644 file is still read');
like($out, qr/\[warn\].*"\Q$dir\E\/secrets\/key" may be read by anyone/,
     'with a warning naming the file');
chmod 0600, "$dir/secrets/key";

# A FIFO without a writer: a writer turns up after 4 s, so that nginx -t
# ends even where open() waits for one.
mkfifo("$dir/secrets/fifo", 0600) or die "mkfifo: $!";
my $pid = fork // die;
if (!$pid) {
    sleep 4;
    open my $fh, '>', "$dir/secrets/fifo";
    POSIX::_exit(0);
}
my $secs;
($rc, $out, $secs) = check("$s3 secret_key_file=$dir/secrets/fifo");
kill 'KILL', $pid;
waitpid $pid, 0;
isnt($rc, 0, 'a FIFO is refused');
ok($secs < 3, sprintf('at once (%.1f s), not waiting for a writer', $secs));
like($out, qr/fifo" is not a small regular file/, 'the message says why');

($rc, $out) = check("$s3 secret_key_file=$dir/secrets");
isnt($rc, 0, 'a directory is refused');
like($out, qr/secrets" is not a small regular file/, 'the message says why');

# Kubernetes: key -> ..data/key, ..data -> ..2026_12_05
mkdir "$dir/secrets/..2026_12_05" or die;
$t->write_file('secrets/..2026_12_05/k8s', "s3cr3t\n");
chmod 0600, "$dir/secrets/..2026_12_05/k8s";
symlink '..2026_12_05', "$dir/secrets/..data" or die;
symlink '..data/k8s', "$dir/secrets/k8s" or die;
($rc, $out) = check("$s3 secret_key_file=$dir/secrets/k8s");
is($rc, 0, 'a link within its directory (Kubernetes) is read') or diag $out;

$t->write_file('outside', "not a secret\n");
chmod 0600, "$dir/outside";
symlink "$dir/outside", "$dir/secrets/escape" or die;
($rc, $out) = check("$s3 secret_key_file=$dir/secrets/escape");
isnt($rc, 0, 'a link out of its directory is refused');
like($out, qr/is a symbolic link out of its directory/, 'the message says why');

# tokens in clear text
my $sas = 'sas=sv=2022-11-02&sig=abc';
($rc, $out) = check("azure://acct/cont endpoint=http://storage.example $sas");
isnt($rc, 0, 'an Azure SAS to a remote http:// endpoint is refused');
like($out, qr/an Azure SAS would be sent in clear text/, 'the message says why');

($rc, $out) = check("azure://acct/cont endpoint=http://storage.example $sas "
                    . 'insecure_http=on');
is($rc, 0, 'unless insecure_http=on') or diag $out;

($rc, $out) = check("azure://acct/cont endpoint=http://127.0.0.1:10000 $sas");
is($rc, 0, 'loopback is allowed') or diag $out;

($rc, $out) = check("azure://acct/cont endpoint=https://storage.example $sas");
is($rc, 0, 'https:// is allowed') or diag $out;

# file:// modes
$t->start_upstream(name => 'vendor', status => 202);
$t->reductrai_config(location => '            reductrai_forward off;');
$t->start;
is($t->http(path => '/x', body => '{"a":1}')->{status}, 202, 'request stored');
my ($obj) = $t->wait_archived(1, 20) && $t->archive_objects($t->archive_dir);
ok($obj, 'an object is archived');
my $mode = (stat $obj->{path})[2] & 07777;
is(sprintf('%04o', $mode), '0640', 'the object is 0640');
(my $parent = $obj->{path}) =~ s{/[^/]+$}{};
is(sprintf('%04o', (stat $parent)[2] & 07777), '0750',
   'its directory is 0750');

$t->check_error_log;
done_testing;
