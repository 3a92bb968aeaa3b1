package RdxStorage;

# Protocol servers for the storage tests (t/5x-storage-*.t), started from
# t/node by the test itself: s3rver, Azurite, the fake GCS, each behind the
# recording proxy of t/node/rdx-proxy.js. Also a runner for
# objs/rdx-storage-tool (the storage interface on the command line).
#
#   my $s3 = RdxStorage->start($t, 's3rver.js', name => 's3',
#       args => [ bucket => 'archive', ... ]);
#   $s3->port, $s3->ready->{...}, $s3->data_dir
#   $s3->down, $s3->up, $s3->fault(match => 'partNumber=2',
#       action => 'hang'|'status'|'reset', status => 500, count => 1),
#   $s3->clear, $s3->hung
#   $s3->requests(since => $mark)      recorded requests, oldest first
#   $s3->mark                          a position in the request log
#   ($rc, $out, $err) = RdxStorage::tool($t, $uri, \@params, @command)
#
# For the tests' own checks:
#   RdxStorage::stored_objects($dir, suffix => '._S3rver_object',
#       cache => \%cache)            { key => read_archive_object } of a store
#   RdxStorage::wait_rids(\&records, $what, @rids)  records with these rids
#   RdxStorage::send_json($t, $path, $rid, %fields)  POST, returns the status
#   RdxStorage::refuses($t, $storage_args, qr/why/)  nginx -t fails, says why
#   RdxStorage::names_source($t, $storage_args, \%env, qr/source/)
#                                    nginx -t passes, names the credentials
#   $server->identity                counters of t/node/identity.js
#   RdxStorage::source_outage($t, what => ..., rid => ..., break => sub,
#       heal => sub, why => qr//, records => \&records)
#                                    a credential source fails, then heals
#   RdxStorage::tool_objects($t, $uri, \@params, $prefix, \%cache)
#                                    objects read back with the storage tool

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

use File::Find ();
use Test::More ();

use RdxTest qw(wait_for);

my $REPO = abs_path(dirname(__FILE__) . '/../..');
my %LIVE;


sub node_dir { "$REPO/t/node" }


sub start {
    my ($class, $t, $script, %opt) = @_;
    my $name = $opt{name} // $script;
    my $dir = $t->dir;

    croak "t/node/node_modules is missing: run make node"
        unless -d node_dir() . '/node_modules';

    my $self = bless {
        t       => $t,
        name    => $name,
        script  => $script,
        port    => $t->port($name),
        control => $t->port("${name}_ctl"),
        log     => "$dir/$name.requests",
        ready_f => "$dir/$name.ready",
        out     => "$dir/$name.out",
        data    => "$dir/$name-data",
        args    => $opt{args} // [],
    }, $class;

    $self->_spawn;

    return $self;
}


sub _spawn {
    my ($self) = @_;

    unlink $self->{ready_f};

    my @cmd = ('node', node_dir() . "/$self->{script}",
               '--port', $self->{port}, '--control', $self->{control},
               '--dir', $self->{data}, '--log', $self->{log},
               '--ready', $self->{ready_f}, @{ $self->{args} });

    my $pid = fork // croak "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->{out};
        open STDERR, '>&', \*STDOUT;
        chdir node_dir();
        exec @cmd or POSIX::_exit(127);
    }

    $self->{pid} = $pid;
    $LIVE{$pid} = 1;

    wait_for(sub {
        die "$self->{name} exited:\n" . (_slurp($self->{out}) // '')
            if waitpid($pid, WNOHANG) == $pid;
        return -f $self->{ready_f};
    }, 30) or die "$self->{name} is not ready:\n"
                  . (_slurp($self->{out}) // '');

    $self->{ready} = JSON::PP->new->decode(_slurp($self->{ready_f}));

    return $self;
}


sub port     { $_[0]{port} }
sub ready    { $_[0]{ready} }
sub data_dir { $_[0]{data} }
sub url      { "http://127.0.0.1:$_[0]{port}" }


sub _control {
    my ($self, $path, $body) = @_;
    my $r = $self->{t}->http(port => $self->{control}, method => 'POST',
                             path => $path, body => $body // '');
    croak "$self->{name} control $path: $r->{status} $r->{body}"
        unless $r->{status} == 200;
    return $r->{body};
}


sub down  { $_[0]->_control('/down') }
sub up    { $_[0]->_control('/up') }
sub clear { $_[0]->_control('/clear') }
sub hung  { $_[0]->_control('/hung') }


sub fault {
    my ($self, %f) = @_;
    $f{count} //= 1;
    return $self->_control('/fault', JSON::PP->new->encode(\%f));
}


sub mark {
    my ($self) = @_;
    return -s $self->{log} // 0;
}


sub requests {
    my ($self, %opt) = @_;
    my $text = _slurp($self->{log}) // '';
    my $json = JSON::PP->new;

    $text = substr($text, $opt{since}) if $opt{since};

    return map { $json->decode($_) } grep { length } split /\n/, $text;
}


sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;

    # called from DESTROY and END too: the test's exit status stays
    local ($?, $!, $@);

    kill 'TERM', $pid;
    wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 10)
        or do { kill 'KILL', $pid; waitpid($pid, 0) };
    delete $LIVE{$pid};
}


sub DESTROY { $_[0]->stop }

END {
    local ($?, $!);
    for my $pid (keys %LIVE) {
        kill 'TERM', $pid;
        waitpid($pid, 0);
    }
}


# Runs objs/rdx-storage-tool; returns (exit code, stdout, stderr).
sub tool {
    my ($t, $uri, $params, @command) = @_;
    my $dir = $t->dir;
    my $bin = $ENV{TEST_STORAGE_TOOL} // "$REPO/objs/rdx-storage-tool";

    croak "$bin is missing: run make $bin" unless -x $bin;

    my $pid = fork // croak "fork: $!";

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/tool.out";
        open STDERR, '>', "$dir/tool.err";
        exec $bin, $uri, @$params, '--', @command or POSIX::_exit(127);
    }

    waitpid($pid, 0);
    my $rc = $? >> 8;

    return ($rc, _slurp("$dir/tool.out") // '', _slurp("$dir/tool.err") // '');
}


# The archive objects a protocol server keeps as files below $dir:
# { key => read_archive_object }.  suffix: what the server appends to the
# key (s3rver: "._S3rver_object").  Objects never change once stored, so
# with a cache each is read once.
sub stored_objects {
    my ($dir, %opt) = @_;
    my $suffix = $opt{suffix} // '';
    my $cache = $opt{cache} // {};
    my %o;

    return \%o unless -d $dir;

    File::Find::find({ no_chdir => 1, wanted => sub {
        return unless /\.ndjson\.zst\Q$suffix\E\z/ && -f;
        my $path = $File::Find::name;
        (my $key = $path) =~ s{^\Q$dir\E/+}{};
        $key =~ s/\Q$suffix\E\z//;
        my $size = -s $path;
        $cache->{$key} = RdxTest::read_archive_object($path, key => $key)
            unless $cache->{$key} && $cache->{$key}{size} == $size;
        $o{$key} = $cache->{$key};
    } }, $dir);

    return \%o;
}


# Waits until $records->() holds a record for each of these rids (the
# "rid" field of the bodies send_json sends); true when it does.
sub wait_rids {
    my ($records, $what, @rids) = @_;
    my %want = map { $_ => 1 } @rids;

    return wait_for(sub {
        my %have = map { ($_->{body}{rid} // '') => 1 } $records->();
        return !grep { !$have{$_} } keys %want;
    }, 20, $what);
}


sub send_json {
    my ($t, $path, $rid, %fields) = @_;
    my $body = JSON::PP->new->canonical->encode({ rid => $rid, %fields });
    my $r = $t->http(path => $path, body => $body,
                     headers => [ 'Content-Type' => 'application/json' ]);
    return $r->{status};
}


# nginx -t of "reductrai_storage $args;" fails, with a message matching
# $why; returns the output.
sub refuses {
    my ($t, $args, $why) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    my ($rc, $out) = _storage_t($t, 'bad.conf', $args);
    Test::More::isnt($rc, 0, "nginx -t refuses $args");
    Test::More::like($out, $why, '... and says why');

    return $out;
}


# nginx -t of "reductrai_storage $args;" with these variables in its
# environment passes and names the credential source; returns the output.
sub names_source {
    my ($t, $args, $env, $source) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    local @ENV{ keys %$env } = values %$env;

    my ($rc, $out) = _storage_t($t, 'source.conf', $args);
    Test::More::is($rc, 0, "nginx -t passes $args");
    Test::More::like($out, qr/"reductrai_storage": credentials: $source/,
                     '... and names the credential source');

    return $out;
}


# nginx -t of a configuration with "reductrai_storage $args;"
sub _storage_t {
    my ($t, $file, $args) = @_;
    my $conf = $t->write_config(file => $file, http => <<"EOT");
    reductrai_storage $args;
    server {
        listen 127.0.0.1:%%PORT_bad%%;
        location / { reductrai on; reductrai_forward off; }
    }
EOT
    return $t->nginx_t(conf => $conf);
}


# what t/node/identity.js counted: tokens issued, refused (and why), expired
sub identity {
    my ($self) = @_;
    my $text = _slurp("$self->{data}/identity.json") // '{}';
    return JSON::PP->new->decode($text);
}


# A credential source that fails (break->()): a record sent meanwhile is
# acknowledged and waits in the spool, the error log and /health say why;
# once heal->() it arrives and /health forgets the failure.  Returns the
# seconds until the failure was logged.
sub source_outage {
    my ($t, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $what = $o{what};

    $o{break}->();
    my $mark = $t->log_mark;
    my $t0 = Time::HiRes::time();

    Test::More::is(send_json($t, '/api/v2/series', $o{rid}), 202,
                   "$what: acknowledged");
    Test::More::ok(wait_for(sub { $t->grep_log($o{why}, since => $mark) },
                            $o{timeout} // 30, "$what logged"),
                   "$what: the error log says why");
    my $logged = Time::HiRes::time() - $t0;
    my (undef, $h) = $t->health;
    Test::More::like($h->{credentials}{error} // '', $o{why},
                     "$what: /health says why");
    Test::More::ok(wait_for(sub { $t->spool_segments >= 1 }, 10, 'segment'),
                   "$what: the data waits in the spool");
    Test::More::ok(!grep({ ($_->{body}{rid} // '') eq $o{rid} }
                         $o{records}->()), "$what: not in the store");

    $o{heal}->();
    Test::More::ok(wait_rids($o{records}, "the record kept while $what",
                             $o{rid}), "$what: it arrives once healed");
    Test::More::ok(wait_for(sub {
                       !exists(($t->health)[1]{credentials}{error})
                   }, 10, 'error cleared'),
                   "$what: /health forgets the failure");

    return $logged;
}


# The objects under $prefix, read back with the storage tool, each once:
# { key => read_archive_object }
sub tool_objects {
    my ($t, $uri, $params, $prefix, $cache) = @_;
    my ($rc, $out) = tool($t, $uri, $params, 'list', $prefix);
    return {} if $rc != 0;

    my %o;
    for my $line (split /\n/, $out) {
        my ($key, $size) = split / /, $line;
        unless ($cache->{$key} && $cache->{$key}{size} == $size) {
            my ($grc, $bytes) = tool($t, $uri, $params, 'get', $key);
            next if $grc != 0;
            (my $file = $key) =~ s{/}{_}g;
            my $path = $t->write_file("fetched-$file", $bytes);
            $cache->{$key} = RdxTest::read_archive_object($path,
                                                          key => $key);
        }
        $o{$key} = $cache->{$key};
    }
    return \%o;
}


# "a=1, b=2" style SigV4 Authorization header into its parts
sub sigv4_parts {
    my ($auth) = @_;
    my %p;
    return \%p unless defined $auth && $auth =~ s/^AWS4-HMAC-SHA256\s+//;
    for my $kv (split /,\s*/, $auth) {
        my ($k, $v) = split /=/, $kv, 2;
        $p{$k} = $v;
    }
    return \%p;
}


sub _slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return;
    local $/;
    return scalar <$fh>;
}


1;
