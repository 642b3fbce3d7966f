package apikey

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// Run loads every key from the store, then follows changes through a watch
// from the revision of that listing, applying each put and delete on its
// own (one change never rebuilds the Index). When the watch ends (the
// consumer fell behind, or the history was compacted) it lists again and
// reconciles: keys missing from the listing are removed, others replaced
// when newer. When the store cannot be reached, Run logs, marks the Index
// Degraded and retries with a doubling wait bounded by Config.RetryMax,
// while Check keeps answering from the keys already held.
//
// Run returns nil when ctx ends, and an error only if the Index has no
// store.
func (x *Index) Run(ctx context.Context) error {
	if x.st == nil {
		return errors.New("apikey: index has no store to run against")
	}
	wait := x.cfg.RetryMin
	for {
		rev, err := x.load(ctx)
		if err == nil {
			x.degraded.Store(false)
			wait = x.cfg.RetryMin
			err = x.follow(ctx, rev)
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			x.log.Info("api key watch ended; listing again", "keys", x.Len())
			continue
		case errors.Is(err, store.ErrCompacted):
			x.log.Info("api key watch fell behind the store's history; listing again", "error", err)
			continue
		}
		x.degraded.Store(true)
		x.log.Warn("cannot read api keys from the store; checking against the keys already loaded",
			"keys", x.Len(), "ready", x.Ready(), "retry_in", wait, "error", err)
		if !pause(ctx, wait) {
			return nil
		}
		wait = min(2*wait, x.cfg.RetryMax)
	}
}

// pause waits about d (between d/2 and d, so that many instances that lost
// the same store do not retry in step) or until ctx ends, reporting whether
// ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// load lists every key and reconciles the Index with the listing,
// returning its revision. Decoding happens before the writers' lock is
// taken, so local Apply calls wait only for the map updates.
func (x *Index) load(ctx context.Context) (int64, error) {
	kvs, rev, err := x.st.List(ctx, Prefix)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", Prefix, err)
	}
	type item struct {
		id  string
		rev int64
		e   *Entry
	}
	items := make([]item, 0, len(kvs))
	for _, kv := range kvs {
		id := strings.TrimPrefix(kv.Key, Prefix)
		e, err := x.entryOf(id, kv)
		if err != nil {
			x.log.Warn("ignoring an unreadable api key record", "key_id", id, "revision", kv.Revision, "error", err)
		}
		items = append(items, item{id: id, rev: kv.Revision, e: e})
	}

	x.wmu.Lock()
	x.reserve(len(items))
	listed := make(map[string]struct{}, len(items))
	for _, it := range items {
		listed[it.id] = struct{}{}
		if it.e == nil {
			x.removeLocked(it.id, it.rev)
			continue
		}
		x.applyLocked(it.e)
	}
	removed := 0
	for id, e := range x.byID {
		// An entry newer than the listing was applied locally after it
		// was taken; the watch will confirm it.
		if _, ok := listed[id]; !ok && e.rev <= rev {
			x.removeLocked(id, 0)
			removed++
		}
	}
	for id, t := range x.gone {
		if t <= rev {
			delete(x.gone, id)
		}
	}
	x.maxRev = max(x.maxRev, rev)
	x.wmu.Unlock()

	first := !x.ready.Swap(true)
	x.log.Info("api keys loaded", "keys", x.Len(), "removed", removed, "revision", rev, "first", first)
	if n := x.macKeys.Load(); n > 0 && x.mac == nil {
		x.log.Warn("imported api keys cannot be checked without the server secret; set GATEHOUSE_KEY_SECRET to the secret they were imported with", "keys", n)
	}
	return rev, nil
}

// follow applies the changes after rev until the watch ends or ctx does.
// It returns nil when the watch channel closes, or the error of Watch.
func (x *Index) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := x.st.Watch(wctx, Prefix, rev)
	if err != nil {
		return fmt.Errorf("watch %s from revision %d: %w", Prefix, rev, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			x.event(ev)
		}
	}
}

// event applies one watched change.
func (x *Index) event(ev store.Event) {
	id := strings.TrimPrefix(ev.KV.Key, Prefix)
	switch ev.Type {
	case store.EventPut:
		e, err := x.entryOf(id, ev.KV)
		x.wmu.Lock()
		defer x.wmu.Unlock()
		if err != nil {
			x.log.Warn("ignoring an unreadable api key record", "key_id", id, "revision", ev.KV.Revision, "error", err)
			x.removeLocked(id, ev.KV.Revision)
			return
		}
		x.applyLocked(e)
	case store.EventDelete:
		x.wmu.Lock()
		defer x.wmu.Unlock()
		x.removeLocked(id, ev.KV.Revision)
		// The watch delivers in order: no put of id older than this can
		// follow, so a tombstone left by a local Remove is no longer needed.
		delete(x.gone, id)
	}
}

// entryOf decodes and compiles one stored record.
func (x *Index) entryOf(id string, kv store.KV) (*Entry, error) {
	if !validID(id) {
		return nil, fmt.Errorf("store key %q is not %s followed by a key id", kv.Key, Prefix)
	}
	k, err := decode(id, kv.Value, kv.Revision)
	if err != nil {
		return nil, err
	}
	return compile(k)
}
