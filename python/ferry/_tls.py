# SPDX-License-Identifier: MIT
"""ferry._tls — tls:// options and the peer's certificate (docs/cluster.md, ferry.h
"tls://"; docs/python.md "TLS").

Rules: a TLS object only holds what the caller gave; ferry.open / ferry.listen turn it
into a ferry_tls_opts whose strings live as long as the options record of that call
(the library reads them during the call only). Files are read by the library then, not
here. A library built without OpenSSL 3 refuses tls:// URLs with EPROTONOSUPPORT
(ferry.Error, errno EPROTONOSUPPORT).
"""

import collections
import ctypes
import os

from . import _lib, _check
from ._lib import lib as _c

__all__ = ["TLS", "PeerCert"]

_CLIENT = {None: 0, "none": 0, "optional": 1, "required": 2}
_NO_KTLS = 1 << 0
_VERIFIED = 1 << 0
_TRUNCATED = 1 << 1
_KTLS_TX = 1 << 2
_KTLS_RX = 1 << 3

PeerCert = collections.namedtuple(
    "PeerCert", "verified sha256 cn subject sans truncated ktls_tx ktls_rx")
PeerCert.__doc__ = """The peer's certificate (ch.peer_cert()): verified (it showed one and
it verified), sha256 (bytes, 32: of the DER certificate, a pin), cn, subject (RFC 2253),
sans (a tuple of "DNS:name", "IP:addr", "email:addr", "URI:uri"), truncated (the library's
sans field did not hold every name), ktls_tx / ktls_rx (the kernel does the crypto of that
direction). All empty and verified False: the peer showed no certificate."""


def _b(s):
    return None if s is None else os.fsencode(s)


def _pem(s):
    return None if s is None else (s.encode() if isinstance(s, str) else bytes(s))


class TLS:
    """Options of a tls:// listen or open. cert / key / ca are PEM files; cert_pem /
    key_pem / ca_pem the PEM text itself (str or bytes; one of the two per item). host:
    the name the server's certificate must carry (default: the URL's host).
    client_cert (listen): None / "none", "optional" or "required". ktls=False: never use
    kernel TLS. handshake_timeout: seconds (None: the library's 10 s)."""

    __slots__ = ("cert", "key", "ca", "cert_pem", "key_pem", "ca_pem", "host",
                 "client_cert", "ktls", "handshake_timeout")

    def __init__(self, cert=None, key=None, ca=None, cert_pem=None, key_pem=None,
                 ca_pem=None, host=None, client_cert=None, ktls=True, handshake_timeout=None):
        if client_cert not in _CLIENT:
            raise ValueError("client_cert must be None, 'none', 'optional' or 'required'")
        if handshake_timeout is not None and handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be None or > 0")
        self.cert, self.key, self.ca = cert, key, ca
        self.cert_pem, self.key_pem, self.ca_pem = cert_pem, key_pem, ca_pem
        self.host, self.client_cert = host, client_cert
        self.ktls, self.handshake_timeout = ktls, handshake_timeout

    def _struct(self):
        t = _lib.TlsOpts()
        _c.ferry_tls_opts_init_sized(ctypes.byref(t), ctypes.sizeof(t))
        # c_char_p fields keep their bytes objects alive in t._objects.
        t.cert, t.key, t.ca = _b(self.cert), _b(self.key), _b(self.ca)
        t.cert_pem, t.key_pem = _pem(self.cert_pem), _pem(self.key_pem)
        t.ca_pem = _pem(self.ca_pem)
        t.host = None if self.host is None else self.host.encode()
        t.client_cert = _CLIENT[self.client_cert]
        if not self.ktls:
            t.flags |= _NO_KTLS
        if self.handshake_timeout is not None:
            t.handshake_timeout_ns = max(1, int(self.handshake_timeout * 1e9))
        return t

    def __repr__(self):
        items = ("%s=%r" % (k, getattr(self, k)) for k in ("cert", "key", "ca", "host",
                                                           "client_cert")
                 if getattr(self, k) is not None)
        return "ferry.TLS(%s)" % ", ".join(items)


def _str(field):
    return bytes(field).split(b"\0", 1)[0].decode("ascii", "replace")


def peer_cert(h):
    """The PeerCert of channel handle h (ferry_chan_peer_cert)."""
    pc = _lib.PeerCert()
    pc.size = ctypes.sizeof(pc)
    _check(_c.ferry_chan_peer_cert(h, ctypes.byref(pc)), "peer_cert")
    if pc.size > ctypes.sizeof(pc):  # the library never writes more than we gave
        raise RuntimeError("ferry_chan_peer_cert wrote %d bytes into %d" % (
            pc.size, ctypes.sizeof(pc)))
    f = pc.flags
    sans = tuple(x for x in _str(pc.sans).split("\n") if x)
    return PeerCert(bool(f & _VERIFIED), bytes(pc.sha256), _str(pc.cn), _str(pc.subject),
                    sans, bool(f & _TRUNCATED), bool(f & _KTLS_TX), bool(f & _KTLS_RX))
