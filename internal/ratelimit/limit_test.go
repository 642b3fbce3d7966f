package ratelimit

import (
	"math"
	"testing"
	"time"
)

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		name    string
		limit   Limit
		wantErr bool
	}{
		{name: "per minute with burst", limit: Limit{Requests: 100, Per: time.Minute, Burst: 20}},
		{name: "burst zero means requests", limit: Limit{Requests: 100, Per: time.Minute}},
		{name: "burst above requests", limit: Limit{Requests: 12, Per: time.Second, Burst: 1000}},
		{name: "one per nanosecond", limit: Limit{Requests: 10, Per: 10 * time.Nanosecond}},
		{name: "zero value", limit: Limit{}, wantErr: true},
		{name: "zero requests", limit: Limit{Per: time.Second}, wantErr: true},
		{name: "negative requests", limit: Limit{Requests: -1, Per: time.Second}, wantErr: true},
		{name: "zero per", limit: Limit{Requests: 1}, wantErr: true},
		{name: "negative burst", limit: Limit{Requests: 1, Per: time.Second, Burst: -1}, wantErr: true},
		{name: "faster than a nanosecond", limit: Limit{Requests: 11, Per: 10 * time.Nanosecond}, wantErr: true},
		{name: "burst overflows", limit: Limit{Requests: 1, Per: time.Hour, Burst: math.MaxInt}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limit.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if got := tt.limit.valid(); got != !tt.wantErr {
				t.Errorf("valid() = %v, want %v", got, !tt.wantErr)
			}
		})
	}
}

func TestQuotaValidate(t *testing.T) {
	tests := []struct {
		name    string
		quota   Quota
		wantErr bool
	}{
		{name: "day", quota: Quota{Requests: 1000, Period: Day}},
		{name: "month", quota: Quota{Requests: 1, Period: Month}},
		{name: "zero value", quota: Quota{}, wantErr: true},
		{name: "zero requests", quota: Quota{Period: Day}, wantErr: true},
		{name: "unknown period", quota: Quota{Requests: 1, Period: "week"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.quota.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if got := tt.quota.valid(); got != !tt.wantErr {
				t.Errorf("valid() = %v, want %v", got, !tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{name: "local zero", err: LocalConfig{}.Validate()},
		{name: "local negative sweep", err: LocalConfig{SweepInterval: -1}.Validate(), wantErr: true},
		{name: "quota zero", err: QuotaConfig{}.Validate()},
		{name: "quota negative flush", err: QuotaConfig{FlushInterval: -1}.Validate(), wantErr: true},
		{name: "quota negative shutdown", err: QuotaConfig{ShutdownTimeout: -1}.Validate(), wantErr: true},
		{name: "quota negative load retry", err: QuotaConfig{LoadRetry: -1}.Validate(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", tt.err, tt.wantErr)
			}
		})
	}
}
