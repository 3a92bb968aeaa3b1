package RdxClients;

# Bodies as real senders make them, and DuckDB over the archive, for the
# tests of the archive's queryability (t/17-protobuf.t, t/64-*.t) and of
# replay (t/63-cli-replay-protobuf.t):
#
#   use RdxClients qw(protoc_encode snappy_block duckdb);
#   my $pb = protoc_encode($t, 'prometheus.WriteRequest',
#                          'prometheus_remote.proto', $text_format);
#   my $body = snappy_block($pb);        # Content-Encoding: snappy
#   my $pb = snappy_uncompress($body);   # what libsnappy made; undef if bad
#   my @rows = duckdb($t, $sql, ...);    # one array of rows per statement
#
# protoc_encode runs "protoc --encode" against the module's own .proto
# files (ngx_http_reductrai_module/proto).  duckdb runs t/node/
# duckdb-query.js (@duckdb/node-api, "make node"): all statements in one
# connection, so a view made by one is there for the next; BIGINT and
# DECIMAL values come back as strings.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use JSON::PP ();
use POSIX ();
use Test::More ();

our @EXPORT_OK = qw(protoc_encode snappy_block snappy_uncompress duckdb
                    duckdb_ready);

my $REPO = abs_path(dirname(__FILE__) . '/../..');
my $PROTO = "$REPO/ngx_http_reductrai_module/proto";
my $NODE = "$REPO/t/node";
my $SEQ = 0;


# The binary encoding of a message given in protobuf text format.
sub protoc_encode {
    my ($t, $message, $file, $text) = @_;
    my $in = $t->write_file('protoc-' . ++$SEQ . '.txt', $text);

    my $pb = `protoc -I$PROTO --encode=$message $PROTO/$file < $in`;
    croak "protoc --encode=$message failed" if $? != 0;

    return $pb;
}


# Snappy's block format with literals only: valid input for any snappy
# decoder (libsnappy among them), only not compressed.
sub snappy_block {
    my ($bytes) = @_;
    my $n = length $bytes;
    my $out = '';

    # the uncompressed length as a varint
    for ( ;; ) {
        $out .= chr(($n & 0x7f) | ($n > 0x7f ? 0x80 : 0));
        $n >>= 7;
        last if $n == 0;
    }

    # literals of at most 65536 bytes: tag 61 << 2, then length - 1 in two
    # little-endian bytes
    for (my $off = 0; $off < length $bytes; $off += 65536) {
        my $chunk = substr $bytes, $off, 65536;
        $out .= chr(61 << 2) . pack('v', length($chunk) - 1) . $chunk;
    }

    return $out;
}


# The bytes of one snappy block (literals and the three kinds of copy), or
# undef when it is not one: to read what libsnappy compressed.
sub snappy_uncompress {
    my ($in) = @_;
    my ($pos, $len, $shift) = (0, 0, 0);
    for (;;) {
        return undef if $pos >= length $in;
        my $b = ord substr($in, $pos++, 1);
        $len |= ($b & 0x7f) << $shift;
        last if $b < 0x80;
        $shift += 7;
    }
    my $out = '';
    while ($pos < length $in) {
        my $tag = ord substr($in, $pos++, 1);
        my $type = $tag & 3;
        if ($type == 0) {
            my $n = $tag >> 2;
            if ($n >= 60) {
                my $bytes = $n - 59;
                $n = 0;
                $n |= ord(substr($in, $pos + $_, 1)) << (8 * $_)
                    for 0 .. $bytes - 1;
                $pos += $bytes;
            }
            $out .= substr($in, $pos, $n + 1);
            $pos += $n + 1;
            next;
        }
        my ($n, $off);
        if ($type == 1) {
            $n = (($tag >> 2) & 7) + 4;
            $off = (($tag >> 5) << 8) | ord substr($in, $pos++, 1);
        } elsif ($type == 2) {
            $n = ($tag >> 2) + 1;
            $off = unpack 'v', substr($in, $pos, 2);
            $pos += 2;
        } else {
            $n = ($tag >> 2) + 1;
            $off = unpack 'V', substr($in, $pos, 4);
            $pos += 4;
        }
        return undef if $off == 0 || $off > length $out;
        $out .= substr($out, length($out) - $off, 1) for 1 .. $n;
    }
    return length($out) == $len ? $out : undef;
}


sub duckdb_ready {
    return -d "$NODE/node_modules/\@duckdb/node-api";
}


# Runs the statements in one DuckDB connection; a failure fails a test
# with DuckDB's message.
sub duckdb {
    my ($t, @sql) = @_;
    my $out = $t->path('duckdb-' . ++$SEQ . '.out');
    my $err = "$out.err";

    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        chdir $NODE;
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        exec 'node', 'duckdb-query.js', @sql or POSIX::_exit(127);
    }
    waitpid $pid, 0;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($? >> 8, 0, 'node duckdb-query.js ran')
        or Test::More::diag($t->read_file($err));

    my $json = JSON::PP->new->utf8;
    return map { $json->decode($_) } split /\n/, $t->read_file($out) // '';
}


1;
