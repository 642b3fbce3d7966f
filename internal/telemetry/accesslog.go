package telemetry

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Entry is what the access log records of one proxied request. Its zero
// value is a valid entry with empty fields; a zero Time is replaced by the
// time of the Log call.
type Entry struct {
	// Time is when the request arrived.
	Time time.Time
	// Method, Host and Path are the client request's. Path must be the path
	// only; anything from a '?' on is cut off anyway, because query strings
	// can carry API keys (?api_key=...).
	Method, Host, Path string
	// Route and Service are the names of the matched route and the chosen
	// service, "" when there were none; Replica is the ID of the replica
	// that answered last.
	Route, Service, Replica string
	// Status is the status sent to the client.
	Status int
	// Bytes is the number of response body bytes sent to the client.
	Bytes int64
	// Duration is the time from arrival to the end of the response.
	Duration time.Duration
	// Attempts is the number of upstream attempts, retries included.
	Attempts int
	// ClientIP is the client's address, without port.
	ClientIP string
	// KeyID is the ID of the API key used, never the key itself.
	KeyID string
	// TraceID is the request's trace ID (Span.TraceID), "" when it has none.
	TraceID string
	// UserAgent is the client's User-Agent header.
	UserAgent string
}

// AccessLog writes one JSON object per line for each request logged. It is
// safe for concurrent use: each line is encoded into a pooled buffer without
// reflection and written with a single Write call, under a mutex so that
// lines never interleave even on a writer that is not safe for concurrent
// use. A slow writer therefore slows the requests that log; give it a file,
// stdout, or a buffered writer that you flush.
type AccessLog struct {
	w       io.Writer
	enabled bool
	mu      sync.Mutex // serializes w.Write
	bufs    sync.Pool  // *[]byte
}

// maxPooledBuf is the capacity above which a line buffer is not put back in
// the pool, so that one huge line does not pin memory for good.
const maxPooledBuf = 64 << 10

// NewAccessLog returns an access log writing to w. When enabled is false,
// Log does nothing and w is never used (it may be nil).
func NewAccessLog(w io.Writer, enabled bool) *AccessLog {
	l := &AccessLog{w: w, enabled: enabled && w != nil}
	l.bufs.New = func() any {
		b := make([]byte, 0, 1024)
		return &b
	}
	return l
}

// Enabled reports whether Log writes anything, so that a caller can skip
// gathering an Entry's fields. A nil *AccessLog is disabled.
func (l *AccessLog) Enabled() bool { return l != nil && l.enabled }

// Log writes e as one JSON line with the fields time (RFC 3339, UTC, with
// nanoseconds), method, host, path, route, service, replica, status, bytes,
// duration_ms, attempts, client_ip, key_id, trace_id and user_agent. Strings
// are escaped as JSON requires; invalid UTF-8 becomes U+FFFD. A write error
// is dropped: losing a log line must not fail a request. Hot path: no
// allocation once the buffer pool is warm; nothing at all when disabled.
func (l *AccessLog) Log(e Entry) {
	// Small enough to inline, so that a disabled log does not even copy e.
	if l.Enabled() {
		l.write(&e)
	}
}

func (l *AccessLog) write(e *Entry) {
	bp := l.bufs.Get().(*[]byte)
	b := appendEntry((*bp)[:0], e)
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	if cap(b) <= maxPooledBuf {
		*bp = b
		l.bufs.Put(bp)
	}
}

func appendEntry(b []byte, e *Entry) []byte {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	path := e.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	b = append(b, `{"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.Host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.Route)
	b = append(b, `,"service":`...)
	b = appendJSONString(b, e.Service)
	b = append(b, `,"replica":`...)
	b = appendJSONString(b, e.Replica)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	// Microsecond resolution is plenty for a log line and keeps it short.
	b = strconv.AppendFloat(b, float64(e.Duration)/float64(time.Millisecond), 'f', 3, 64)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(e.Attempts), 10)
	b = append(b, `,"client_ip":`...)
	b = appendJSONString(b, e.ClientIP)
	b = append(b, `,"key_id":`...)
	b = appendJSONString(b, e.KeyID)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, e.TraceID)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, e.UserAgent)
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// plain[c] reports whether the byte c is copied into a JSON string as it is:
// printable ASCII other than '"' and '\\'. A table lookup per byte is what
// keeps the common, all-plain string fast.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s to b as a quoted JSON string (RFC 8259 section
// 7). Like encoding/json it replaces invalid UTF-8 with U+FFFD and escapes
// U+2028 and U+2029, which JavaScript treats as line ends; unlike it, it
// leaves <, > and & alone since the log is not embedded in HTML.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
