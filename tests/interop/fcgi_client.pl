#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# Requests through Perl's FCGI::Client (Debian libfcgi-client-perl), for the interop tests.
#
#   fcgi_client.pl HOST:PORT request OUT QUERY [BODY_FILE]
#       one request; its FCGI_STDOUT stream goes to the file OUT
#   fcgi_client.pl HOST:PORT parallel N OUT_PREFIX QUERY
#       N requests at once, each on its own connection: request I asks for "client=I&QUERY"
#       and its FCGI_STDOUT goes to OUT_PREFIX.I
#   fcgi_client.pl HOST:PORT abort BYTES QUERY
#       sends a request, reads BYTES of the answer, and closes the connection
#
# Exits 0 when every request got its FCGI_END_REQUEST (or, for abort, its bytes).
use strict;
use warnings;
use FCGI::Client;
use FCGI::Client::RecordFactory;
use IO::Socket::INET;

my ($address, $mode, @args) = @ARGV;
die "usage: see the head of $0\n" unless defined $mode;

sub connection {
    my $sock = IO::Socket::INET->new(PeerAddr => $address, Proto => 'tcp')
        or die "connect $address: $!\n";
    return $sock;
}

sub params {
    my ($query, $length) = @_;
    return {
        REQUEST_METHOD => defined $length ? 'POST' : 'GET',
        QUERY_STRING   => $query,
        SCRIPT_NAME    => '/perl',
        defined $length ? (CONTENT_LENGTH => $length) : (),
    };
}

sub request {
    my ($out, $query, $body_file) = @_;
    my $body;
    if (defined $body_file) {
        open(my $in, '<:raw', $body_file) or die "$body_file: $!\n";
        local $/;
        $body = <$in>;
    }
    my $client = FCGI::Client::Connection->new(sock => connection(), timeout => 120);
    my ($stdout, $stderr, $status) =
        $client->request(params($query, defined $body ? length $body : undef), $body);
    die "no FCGI_END_REQUEST\n" unless defined $status;
    open(my $file, '>:raw', $out) or die "$out: $!\n";
    print $file $stdout // '';
    close($file) or die "$out: $!\n";
}

if ($mode eq 'request') {
    request(@args);
} elsif ($mode eq 'parallel') {
    my ($count, $prefix, $query) = @args;
    # FCGI::Client's request() in its two halves, sending every request before reading any
    # answer, so that all are in flight at once from one process.
    my @clients;
    for my $i (0 .. $count - 1) {
        my $client = FCGI::Client::Connection->new(sock => connection(), timeout => 120);
        $client->_send_request(params("client=$i&$query"), '');
        push @clients, $client;
    }
    for my $i (0 .. $count - 1) {
        my ($stdout, $stderr, $status) = $clients[$i]->_receive_response($clients[$i]->sock);
        die "request $i: no FCGI_END_REQUEST\n" unless defined $status;
        open(my $file, '>:raw', "$prefix.$i") or die "$prefix.$i: $!\n";
        print $file $stdout // '';
        close($file) or die "$prefix.$i: $!\n";
    }
} elsif ($mode eq 'abort') {
    my ($bytes, $query) = @args;
    my $sock = connection();
    $sock->print(FCGI::Client::RecordFactory->create_request(1, params($query), ''));
    my $received = 0;
    while ($received < $bytes) {
        my $count = $sock->sysread(my $buffer, 65536);
        die "the answer ended after $received bytes\n" unless $count;
        $received += $count;
    }
    close($sock);
} else {
    die "unknown mode $mode\n";
}
