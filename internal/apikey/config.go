package apikey

import (
	"fmt"
	"time"
)

// Default retry bounds of Index.Run.
const (
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
)

// Config tunes a Manager and an Index; give both the same Config. The zero
// value is usable: generated keys work, imported keys do not (see Secret).
type Config struct {
	// Secret keys the HMAC of imported keys. The Manager cannot import a key
	// without it and the Index cannot check an imported key without the
	// same secret; generated keys need none. When set it must be at least
	// MinSecretLen bytes. Changing it makes every imported key unknown.
	Secret []byte
	// Now is the Manager's clock for CreatedAt, RevokedAt and the check that
	// a new key does not expire in the past. Nil means time.Now. The Index
	// takes the time from its caller instead.
	Now func() time.Time
	// RetryMin is the Index's first wait after a failure to read or watch
	// the store; the wait doubles up to RetryMax. Zero means 100ms.
	RetryMin time.Duration
	// RetryMax bounds the Index's wait between attempts. Zero means 30s.
	RetryMax time.Duration
}

// Validate reports a secret that is too short or a bad retry bound.
func (c Config) Validate() error {
	if len(c.Secret) > 0 && len(c.Secret) < MinSecretLen {
		return fmt.Errorf("apikey config: Secret is %d bytes; use at least %d random bytes, or none to disable imported keys", len(c.Secret), MinSecretLen)
	}
	if c.RetryMin < 0 || c.RetryMax < 0 {
		return fmt.Errorf("apikey config: RetryMin %s and RetryMax %s must not be negative; use 0 for the defaults", c.RetryMin, c.RetryMax)
	}
	d := c.withDefaults()
	if d.RetryMin > d.RetryMax {
		return fmt.Errorf("apikey config: RetryMin %s is above RetryMax %s", d.RetryMin, d.RetryMax)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	return c
}
