package RdxDeploy;

# Helpers for the deployment tests (t/70-74): files operators use as they
# are (conf/, packaging/, Dockerfile) are checked with the tools that read
# them, on this machine, without touching it.
#
#   use RdxDeploy qw(slurp);
#   my $sb = RdxDeploy::Sandbox->new(dir => $t->dir,
#       hosts => [ 'metrics.agent.datadoghq.com' ],
#       tmpfs => [ '/var/spool', '/var/log' ],
#       mkdir => [ '/var/log/nginx' ],
#       overlay => [ '/usr/lib' ],   # writes land in the test dir
#       files => { '/etc/nginx/reductrai/key' => "secret\n" },   # mode 0600
#       binds => [ [ "$dir/etc-nginx", '/etc/nginx' ] ]);
#   my ($rc, $out) = $sb->run('/usr/sbin/nginx', '-t', ...);
#   local $ENV{TEST_NGINX_BINARY} = $sb->wrap($t->binary);  # for nginx_t
#
# The sandbox is a private mount namespace (unshare --mount, root only):
# /etc/hosts there maps the given names to 127.0.0.1, because nginx and
# HAProxy resolve upstream names when they load a configuration and this
# machine has no DNS for public names; absolute paths a configuration
# writes to (/var/spool/nginx, /var/log/nginx, ...) are tmpfs or overlays,
# so "nginx -t" creates nothing on the machine.  Order: tmpfs, overlay,
# mkdir, binds, files.  Nothing in it listens or connects.
#
#   RdxDeploy::repo                 the repository's top directory
#   slurp($file)                    its content; dies when it cannot be read
#   RdxDeploy::run(@cmd)            (exit code, stdout+stderr)
#   RdxDeploy::yaml_docs($file)     the YAML documents of a file (python3-yaml,
#                                   yamllint's own dependency, as JSON)
#   RdxDeploy::upstream_hosts(@files)  host names of "server NAME:PORT" lines
#   RdxDeploy::self_signed($dir, $name, $cn)  $dir/$name.crt and .key

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempfile);
use JSON::PP ();

our @EXPORT_OK = qw(slurp);

my $REPO = abs_path(dirname(__FILE__) . '/../..');

sub repo { $REPO }


# A file the test reads must be there: a missing one is a failure, not an
# empty string that a negative check would pass on.
sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or croak "$f: $!";
    local $/;
    return scalar <$fh>;
}


sub quote {
    my ($s) = @_;
    return "''" if $s eq '';
    return $s if $s =~ m{^[A-Za-z0-9_./:=,+\@%-]+$};
    $s =~ s/'/'\\''/g;
    return "'$s'";
}


sub run {
    my (@cmd) = @_;
    my %opt = ref $cmd[0] eq 'HASH' ? %{ shift @cmd } : ();

    my ($fh, $file) = tempfile('rdx-deploy-XXXXXX', TMPDIR => 1,
                               UNLINK => 1);
    my $pid = fork // croak "fork: $!";

    if ($pid == 0) {
        open STDOUT, '>&', $fh or die "dup: $!";
        open STDERR, '>&', $fh or die "dup: $!";
        open STDIN, '<', '/dev/null' or die "stdin: $!";
        chdir $opt{cwd} or die "chdir $opt{cwd}: $!" if defined $opt{cwd};
        @ENV{ keys %{ $opt{env} } } = values %{ $opt{env} } if $opt{env};
        exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!\n";
    }

    # $? must not leak: RdxTest's END reads it as the test's exit status
    local $?;
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;

    open my $in, '<', $file or croak "$file: $!";
    local $/;
    my $out = <$in> // '';
    close $in;

    return ($rc, $out);
}


sub yaml_docs {
    my ($file) = @_;
    my ($rc, $out) = run('python3', '-c',
        'import json, sys, yaml; '
        . 'json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), '
        . 'sys.stdout)', $file);
    croak "cannot parse $file as YAML:\n$out" if $rc != 0;
    return @{ JSON::PP->new->decode($out) };
}


sub upstream_hosts {
    my (@files) = @_;
    my %h;

    for my $f (@files) {
        open my $fh, '<', $f or croak "$f: $!";
        while (<$fh>) {
            next if /^\s*#/;
            $h{$1} = 1 if /^\s*server\s+([A-Za-z][A-Za-z0-9.-]*):\d+/;
        }
    }

    return sort keys %h;
}


sub self_signed {
    my ($dir, $name, $cn) = @_;
    my ($rc, $out) = run('openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                         '-nodes', '-days', '2', '-subj', "/CN=$cn",
                         '-keyout', "$dir/$name.key",
                         '-out', "$dir/$name.crt");
    croak "openssl req failed:\n$out" if $rc != 0;
    return ("$dir/$name.crt", "$dir/$name.key");
}


package RdxDeploy::Sandbox;

use Carp qw(croak);
use File::Basename ();

my $SEQ = 0;

sub new {
    my ($class, %opt) = @_;
    my $dir = $opt{dir} // croak 'dir required';
    my $n = ++$SEQ;
    my $self = bless { %opt, n => $n }, $class;

    my $hosts = "$dir/sandbox-$n.hosts";
    open my $h, '>', $hosts or croak "$hosts: $!";
    print $h "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
    print $h "127.0.0.1 $_\n" for @{ $opt{hosts} // [] };
    close $h;

    my $q = \&RdxDeploy::quote;
    my $sh = "#!/bin/sh\n# written by t/lib/RdxDeploy.pm\nset -e\n"
           . "mount --bind " . $q->($hosts) . " /etc/hosts\n";

    for my $d (@{ $opt{tmpfs} // [] }) {
        $sh .= "mount -t tmpfs -o mode=0755 tmpfs " . $q->($d) . "\n";
    }

    # an overlay keeps what is written below $d in the test dir
    my $o = 0;
    for my $d (@{ $opt{overlay} // [] }) {
        my ($up, $work) = map { "$dir/sandbox-$n.overlay$o.$_" } qw(up work);
        $o++;
        mkdir $_ or croak "mkdir $_: $!" for $up, $work;
        $sh .= "mount -t overlay overlay -o "
             . $q->("lowerdir=$d,upperdir=$up,workdir=$work") . ' '
             . $q->($d) . "\n";
    }

    for my $d (@{ $opt{mkdir} // [] }) {
        $sh .= "mkdir -p " . $q->($d) . "\n";
    }
    for my $b (@{ $opt{binds} // [] }) {
        $sh .= "mount --bind " . $q->($b->[0]) . ' ' . $q->($b->[1]) . "\n";
    }

    my $i = 0;
    for my $path (sort keys %{ $opt{files} // {} }) {
        my $src = "$dir/sandbox-$n.file" . $i++;
        open my $f, '>', $src or croak "$src: $!";
        print $f $opt{files}{$path};
        close $f;
        $sh .= "mkdir -p " . $q->(File::Basename::dirname($path)) . "\n"
             . "install -m 0600 " . $q->($src) . ' ' . $q->($path) . "\n";
    }

    $sh .= "exec \"\$@\"\n";

    $self->{script} = "$dir/sandbox-$n.sh";
    open my $s, '>', $self->{script} or croak "$self->{script}: $!";
    print $s $sh;
    close $s;
    chmod 0755, $self->{script};

    return $self;
}


sub command {
    my ($self, @cmd) = @_;
    return ('unshare', '--mount', '--', '/bin/sh', $self->{script}, @cmd);
}


sub run {
    my ($self, @cmd) = @_;
    my $opt = ref $cmd[0] eq 'HASH' ? shift @cmd : {};
    return RdxDeploy::run($opt, $self->command(@cmd));
}


# A script that runs $binary inside the sandbox, for TEST_NGINX_BINARY.
sub wrap {
    my ($self, $binary) = @_;
    my $path = "$self->{dir}/sandbox-$self->{n}-nginx";
    open my $w, '>', $path or croak "$path: $!";
    print $w "#!/bin/sh\nexec "
           . join(' ', map { RdxDeploy::quote($_) } $self->command($binary))
           . " \"\$@\"\n";
    close $w;
    chmod 0755, $path;
    return $path;
}


1;
