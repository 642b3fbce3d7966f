//go:build tools

package main

import (
	_ "github.com/coder/websocket"
	_ "github.com/mccutchen/go-httpbin/v2/httpbin"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sync/errgroup"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/health/grpc_health_v1"
	_ "sigs.k8s.io/yaml"
)
