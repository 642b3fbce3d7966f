package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/store"
)

// runDurable runs a write script like run and, when Config.WaitReplicas is
// positive, then WAIT, and returns the script's reply and how many replicas
// acknowledged the write (-1 when not waiting). The WAIT error, if any, is
// returned with the script's reply, which is then valid.
//
// WAIT waits for the replication offset of its own connection's last write,
// so it must follow the script on the same connection: the two go in one
// pipeline, which go-redis writes on one connection. Script.Run's fallback
// from EVALSHA to EVAL on NOSCRIPT (a promoted replica starts with an empty
// script cache: scripts are replicated by effect) cannot work inside a
// pipeline, whose errors come with the replies, so it is done here: a second
// pipeline with EVAL. NOSCRIPT writes nothing, so the first WAIT waited for
// an earlier write of that connection at most.
func (s *Store) runDurable(ctx context.Context, sc *redis.Script, args ...any) (reply any, acks int64, waitErr, err error) {
	if s.cfg.WaitReplicas == 0 {
		reply, err = s.run(ctx, sc, args...).Result()
		return reply, -1, nil, err
	}
	argv := append([]any{s.kvp, s.maxLen}, args...)
	var (
		script *redis.Cmd
		wait   *redis.IntCmd
	)
	pipe := func(eval func(p redis.Pipeliner) *redis.Cmd) {
		// The errors are the commands' own, read below.
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			script = eval(p)
			// Pipeliner lacks Wait (Cmdable does not list it).
			wait = redis.NewIntCmd(ctx, "wait", s.cfg.WaitReplicas, s.cfg.WaitTimeout.Milliseconds())
			return p.Process(ctx, wait)
		})
	}
	pipe(func(p redis.Pipeliner) *redis.Cmd { return sc.EvalSha(ctx, p, s.keys, argv...) })
	if redis.HasErrorPrefix(script.Err(), "NOSCRIPT") {
		pipe(func(p redis.Pipeliner) *redis.Cmd { return sc.Eval(ctx, p, s.keys, argv...) })
	}
	if reply, err = script.Result(); err != nil {
		return nil, 0, nil, err
	}
	acks, waitErr = wait.Result()
	return reply, acks, waitErr, nil
}

// replicated returns nil if a durable write reached the replicas
// Config.WaitReplicas asks for, and otherwise an error wrapping
// store.ErrNotReplicated that says how many did within what time.
func (s *Store) replicated(ctx context.Context, acks int64, waitErr error) error {
	switch {
	case waitErr != nil:
		return fmt.Errorf("%w: waiting for %d replicas: %w", store.ErrNotReplicated, s.cfg.WaitReplicas, s.mapErr(ctx, waitErr))
	case acks >= 0 && acks < int64(s.cfg.WaitReplicas):
		return fmt.Errorf("%w: %d of %d replicas acknowledged within %v", store.ErrNotReplicated, acks, s.cfg.WaitReplicas, s.cfg.WaitTimeout)
	}
	return nil
}
