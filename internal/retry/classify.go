// Package retry decides when a failed upstream attempt may be tried again
// and how much retrying a service may do: it classifies failures, holds the
// per-route retry Policy, limits retries per service with a sliding-window
// Budget, and buffers request bodies so that they can be sent again.
//
// Everything here is safe for the request path: Classify, Policy methods,
// Budget and Budgets lookups do not allocate and take no lock.
package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
)

// Failure is the kind of a failed attempt, as far as retrying is concerned.
// The zero value is Other, the most conservative kind.
type Failure int

const (
	// Other is any failure after the request may have reached the replica:
	// a connection reset or EOF after sending, a malformed response.
	Other Failure = iota
	// NotSent means the request never reached the replica: connection
	// refused, DNS error, dial timeout, TLS handshake failure. Retrying is
	// always safe.
	NotSent
	// Timeout means the request was sent but no response headers came back
	// in time (per-try timeout or response-header timeout).
	Timeout
	// Status means the replica answered with a status the policy retries.
	// Classify never returns it; the caller uses it for responses.
	Status
)

// String returns the lowercase name of f, for logs and metrics labels.
func (f Failure) String() string {
	switch f {
	case NotSent:
		return "not_sent"
	case Timeout:
		return "timeout"
	case Status:
		return "status"
	default:
		return "other"
	}
}

// errTLSHandshakeTimeout is the text of net/http's unexported
// tlsHandshakeTimeoutError (net/http/transport.go), returned when
// Transport.TLSHandshakeTimeout expires. It has no exported type or value to
// match, and it implements Timeout() == true, so without this comparison a
// handshake that never completed would be classified as Timeout instead of
// NotSent. TestClassifyRealFailures fails if the text ever changes.
const errTLSHandshakeTimeout = "net/http: TLS handshake timeout"

// Classify tells what kind of failure err, returned by an upstream round
// trip, is. Errors from dialing (*net.OpError with Op "dial" or
// "proxyconnect"), name resolution (*net.DNSError) and the TLS handshake
// (record header, certificate verification, alerts, handshake timeout) are
// NotSent, even if they are timeouts. Deadline errors (context.DeadlineExceeded,
// os.ErrDeadlineExceeded, any net.Error whose Timeout() is true) are Timeout.
// Everything else, including context.Canceled and nil, is Other.
//
// A per-try context deadline that expires during the TLS handshake surfaces
// as context.DeadlineExceeded and is therefore classified as Timeout: the
// error does not say how far the attempt got, and Timeout is the safe
// answer. Classify does not allocate for the errors net/http returns.
func Classify(err error) Failure {
	if err == nil {
		return Other
	}
	if notSent(err) {
		return NotSent
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return Timeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return Timeout
	}
	return Other
}

// notSent reports whether err proves that the request never left the proxy.
func notSent(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok {
		switch op.Op {
		case "dial", "proxyconnect":
			return true
		case "remote error":
			// crypto/tls reports an alert received from the peer this way
			// (crypto/tls/conn.go): the peer's TLS layer refused the
			// connection, so no HTTP request was processed.
			return true
		}
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.ECHRejectionError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return true
	}
	return isHandshakeTimeout(err)
}

// isHandshakeTimeout reports whether err wraps net/http's TLS handshake
// timeout. Only leaf errors that are timeouts are compared by text, so that
// wrappers whose Error() formats (and allocates) are never asked.
func isHandshakeTimeout(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t, ok := e.(interface{ Timeout() bool })
		if !ok || !t.Timeout() || errors.Unwrap(e) != nil {
			continue
		}
		if e.Error() == errTLSHandshakeTimeout {
			return true
		}
	}
	return false
}
