package balance

import (
	"sync"
	"sync/atomic"

	"github.com/gatehouse-gw/gatehouse/internal/snapshot"
)

// services holds per-service picker state keyed by service name, so that
// it carries on across snapshot swaps. The zero value is empty and ready to
// use; it is safe for concurrent use.
type services[T any] struct {
	m sync.Map // service name -> *serviceState[T]
}

// serviceState is the state of one service: a counter that survives
// snapshot swaps and a value derived from the *snapshot.Service.
type serviceState[T any] struct {
	next  atomic.Uint64
	built atomic.Pointer[generations[T]]
}

// generations holds the values built for the two most recently seen
// *snapshot.Service of a name. Two, because for a while after a swap
// requests on the old and on the new snapshot pick concurrently; keeping
// both stops them from rebuilding in turn.
type generations[T any] struct {
	cur, prev built[T]
}

type built[T any] struct {
	svc *snapshot.Service
	v   *T
}

// state returns the state of name, creating it on first use. Lookup of an
// existing service does not allocate.
func (s *services[T]) state(name string) *serviceState[T] {
	if v, ok := s.m.Load(name); ok {
		return v.(*serviceState[T])
	}
	v, _ := s.m.LoadOrStore(name, new(serviceState[T]))
	return v.(*serviceState[T])
}

// value returns the value built for svc, calling build (which must be a
// pure function of svc) the first time svc is seen. Concurrent first
// callers may each build; one result is kept.
func (st *serviceState[T]) value(svc *snapshot.Service, build func(*snapshot.Service) *T) *T {
	var v *T
	for {
		g := st.built.Load()
		if g != nil {
			if g.cur.svc == svc {
				return g.cur.v
			}
			if g.prev.svc == svc {
				return g.prev.v
			}
		}
		if v == nil {
			v = build(svc)
		}
		next := &generations[T]{cur: built[T]{svc: svc, v: v}}
		if g != nil {
			next.prev = g.cur
		}
		if st.built.CompareAndSwap(g, next) {
			return v
		}
	}
}

// prune forgets the services that are not in keep; nil keep forgets all.
func (s *services[T]) prune(keep *snapshot.Snapshot) {
	s.m.Range(func(k, _ any) bool {
		if keep == nil {
			s.m.Delete(k)
			return true
		}
		if _, ok := keep.Services[k.(string)]; !ok {
			s.m.Delete(k)
		}
		return true
	})
}
